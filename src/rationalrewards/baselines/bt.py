"""A scalar Bradley-Terry reward model: a small CNN on the image(s) plus a bag-of-words request embedding.

The classic baseline a reasoning reward model is compared with: no rationale, one number per image,
trained on preference pairs with the Bradley-Terry loss ``-log sigmoid(r_preferred - r_other)``
(tie labels: cross-entropy towards 0.5). CPU-fast by design (a few conv layers on images resized to
``image_size``; a hashed bag of words for the request; for edits the source image goes through the
same CNN and the head sees both).

    bt = BradleyTerryRewardModel(BTConfig(seed=0)).fit(train_pairs)
    bt.score(samples)          # -> list[float], one reward per Sample (higher is better)
    bt.compare(pairs)          # -> list["A" | "B"]
    bt.save("bt.pt"); BradleyTerryRewardModel.load("bt.pt")

``score`` is the API RL code uses (a reward per sample); it is deterministic for a given model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..images import load_image
from ..schema import PreferencePair, Sample

_WORD_RE = re.compile(r"[a-z0-9']+")


@dataclass
class BTConfig:
    """Model size and training settings of the Bradley-Terry baseline."""

    image_size: int = 64  # images are resized to image_size x image_size
    channels: tuple[int, ...] = (16, 32, 64)  # conv widths (each conv halves the resolution)
    text_buckets: int = 2048  # hashed bag-of-words vocabulary
    embed: int = 64  # request and image embedding width
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    threads: int = 0  # torch threads while training and scoring (0: leave as is)

    def __post_init__(self) -> None:
        self.channels = tuple(self.channels)
        if self.image_size < 8 or self.epochs < 1 or self.batch_size < 1 or self.embed < 1:
            raise ValueError("image_size >= 8, epochs >= 1, batch_size >= 1 and embed >= 1 are required")
        if not self.channels:
            raise ValueError("channels must name at least one conv layer")


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is a core dependency
        raise ImportError("the Bradley-Terry baseline needs torch: pip install 'rationalrewards'") from exc
    return torch


def words(text: str) -> list[str]:
    return _WORD_RE.findall(text.lower())


def _bucket(word: str, n: int) -> int:
    return int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "big") % n


def _network(cfg: BTConfig) -> Any:
    torch = _torch()
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layers: list[Any] = []
            c_in = 3
            for c in cfg.channels:
                layers += [nn.Conv2d(c_in, c, 3, stride=2, padding=1), nn.GELU()]
                c_in = c
            self.cnn = nn.Sequential(*layers)
            self.img = nn.Linear(2 * c_in, cfg.embed)  # mean and max pooled
            self.text = nn.EmbeddingBag(cfg.text_buckets, cfg.embed, mode="mean")
            self.head = nn.Sequential(nn.Linear(5 * cfg.embed, 2 * cfg.embed), nn.GELU(), nn.Linear(2 * cfg.embed, 1))

        def encode(self, x: Any) -> Any:
            h = self.cnn(x)
            return self.img(torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1))

        def forward(self, image: Any, source: Any, has_source: Any, tokens: Any, offsets: Any) -> Any:
            v = self.encode(image)
            s = self.encode(source) * has_source[:, None]
            t = self.text(tokens, offsets)
            return self.head(torch.cat([v, s, v - s, v * t, t], dim=1)).squeeze(1)

    return Net()


class BradleyTerryRewardModel:
    """A scalar reward model trained on preference pairs (see the module docs)."""

    def __init__(self, config: BTConfig | None = None):
        torch = _torch()
        self.config = config or BTConfig()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed)
            self.net = _network(self.config)
        self.net.eval()
        self.history: list[dict[str, float]] = []
        self.name = "bradley-terry"

    # -- inputs
    def _image(self, image: Any) -> Any:
        torch = _torch()
        import numpy as np

        size = self.config.image_size
        im = load_image(image).convert("RGB")
        if im.size != (size, size):
            from PIL import Image

            im = im.resize((size, size), Image.BILINEAR)
        arr = np.asarray(im, dtype=np.float32) / 127.5 - 1.0
        return torch.from_numpy(arr).permute(2, 0, 1)

    def _encode_samples(self, samples: Sequence[Sample]) -> dict[str, Any]:
        torch = _torch()
        size = self.config.image_size
        images = torch.stack([self._image(s.image) for s in samples]) if samples else torch.zeros(0, 3, size, size)
        sources = torch.zeros_like(images)
        has = torch.zeros(len(samples))
        for i, s in enumerate(samples):
            if s.source is not None:
                sources[i] = self._image(s.source)
                has[i] = 1.0
        tokens: list[int] = []
        offsets: list[int] = []
        for s in samples:
            offsets.append(len(tokens))
            ids = [_bucket(w, self.config.text_buckets) for w in words(s.request)] or [0]
            tokens += ids
        return {
            "image": images,
            "source": sources,
            "has_source": has,
            "tokens": torch.tensor(tokens, dtype=torch.long),
            "offsets": torch.tensor(offsets, dtype=torch.long),
        }

    @staticmethod
    def _slice(enc: dict[str, Any], idx: Any) -> dict[str, Any]:
        """Rows ``idx`` of an encoded batch (the bag-of-words offsets re-based)."""
        torch = _torch()
        offsets = enc["offsets"]
        ends = torch.cat([offsets[1:], torch.tensor([len(enc["tokens"])])])
        parts = [enc["tokens"][offsets[i] : ends[i]] for i in idx.tolist()]
        lens = torch.tensor([len(p) for p in parts], dtype=torch.long)
        return {
            "image": enc["image"][idx],
            "source": enc["source"][idx],
            "has_source": enc["has_source"][idx],
            "tokens": torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long),
            "offsets": torch.cat([torch.zeros(1, dtype=torch.long), lens.cumsum(0)[:-1]]),
        }

    # -- training
    def fit(self, pairs: Sequence[PreferencePair], log_every: int = 0) -> BradleyTerryRewardModel:
        """Train on labelled pairs (A, B or tie; unlabelled pairs are skipped). Returns self."""
        torch = _torch()
        cfg = self.config
        labelled = [p for p in pairs if p.label in ("A", "B", "tie")]
        if not labelled:
            raise ValueError("fit needs labelled pairs (label A, B or tie)")
        threads = torch.get_num_threads()
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        try:
            samples = [s for p in labelled for s in (p.sample_a(), p.sample_b())]
            enc = self._encode_samples(samples)
            target = torch.tensor([{"A": 1.0, "B": 0.0, "tie": 0.5}[p.label] for p in labelled])
            opt = torch.optim.AdamW(self.net.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
            n = len(labelled)
            steps = cfg.epochs * ((n + cfg.batch_size - 1) // cfg.batch_size)
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.learning_rate, total_steps=steps)
            gen = torch.Generator().manual_seed(cfg.seed)
            self.net.train()
            t0 = time.perf_counter()
            for epoch in range(cfg.epochs):
                order = torch.randperm(n, generator=gen)
                total, count = 0.0, 0
                for start in range(0, n, cfg.batch_size):
                    idx = order[start : start + cfg.batch_size]
                    rows = torch.stack([2 * idx, 2 * idx + 1], dim=1).reshape(-1)
                    r = self.net(**self._slice(enc, rows)).view(-1, 2)
                    loss = torch.nn.functional.binary_cross_entropy_with_logits(r[:, 0] - r[:, 1], target[idx])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    sched.step()
                    total += loss.item() * len(idx)
                    count += len(idx)
                self.history.append({"epoch": epoch + 1, "loss": total / count, "s": time.perf_counter() - t0})
                if log_every and (epoch + 1) % log_every == 0:
                    print(f"bt epoch {epoch + 1}: loss {total / count:.4f}", flush=True)
        finally:
            self.net.eval()
            torch.set_num_threads(threads)
        return self

    # -- inference
    def score(self, samples: Sequence[Sample], batch_size: int = 256) -> list[float]:
        """One scalar reward per sample (higher is better)."""
        torch = _torch()
        out: list[float] = []
        samples = list(samples)
        with torch.inference_mode():
            for start in range(0, len(samples), batch_size):
                enc = self._encode_samples(samples[start : start + batch_size])
                out += [float(x) for x in self.net(**enc)]
        return out

    def reward(self, samples: Sequence[Sample]) -> list[float]:
        """Alias of ``score`` (the reward-function naming of ``RationalRewardModel``)."""
        return self.score(samples)

    def compare(self, pairs: Sequence[PreferencePair]) -> list[str]:
        """The preferred side per pair: A or B by the higher reward (tie only on exactly equal rewards)."""
        pairs = list(pairs)
        r = self.score([s for p in pairs for s in (p.sample_a(), p.sample_b())])
        return ["A" if a > b else "B" if b > a else "tie" for a, b in zip(r[0::2], r[1::2], strict=True)]

    # -- persistence
    def save(self, path: str | Path) -> Path:
        torch = _torch()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        blob = {"config": dataclasses.asdict(self.config), "state": self.net.state_dict(), "history": self.history}
        tmp = path.with_name(path.name + ".tmp")
        torch.save(blob, tmp)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> BradleyTerryRewardModel:
        torch = _torch()
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no Bradley-Terry model at {path}")
        blob = torch.load(path, map_location="cpu", weights_only=True)
        model = cls(BTConfig(**blob["config"]))
        model.net.load_state_dict(blob["state"])
        model.net.eval()
        model.history = list(blob.get("history", []))
        return model


__all__ = ["BTConfig", "BradleyTerryRewardModel", "words"]
