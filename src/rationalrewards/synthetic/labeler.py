"""Simulated human preference labels, labelled pair datasets (parquet) and pointwise benchmark sets (JSONL).

Labels follow a Bradley-Terry model over the hidden utility: when the two true
utilities differ by less than ``tie_margin`` the label is "tie" (people cannot
tell them apart); otherwise A is preferred with probability
``sigmoid((u_a - u_b) / temperature)``. The default temperature makes about
12% of the non-tie labels disagree with the utility on the default pair
distribution (measured: ``benchmarks/world_speed.py`` prints it; the tests check
the observed rate against the one the model predicts).

Each pair's ``meta`` has ``task``, ``subset``, ``pair_source`` ("two_seeds": the
same generator twice; "two_models": one image from a weaker generator) and, under
``EVAL_KEY``, the true utilities, scores, finding kinds and vividness of both
images. Only evaluation code may read ``meta[EVAL_KEY]``; strip it
(``strip_eval``) before anything reaches a model.
"""

from __future__ import annotations

import base64
import json
import math
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..images import to_png_bytes
from ..schema import PreferencePair, stable_id
from .world import SOURCE_VIVIDNESS, Registry, World, registry_path

EVAL_KEY = "eval_only_truth"
PAIR_VIVIDNESS = (0.15, 0.6)  # where more vividness is better for people (below truth.VIVID_PEAK)
TASKS = ("t2i", "edit", "both")


@dataclass
class LabelerConfig:
    """How simulated people label pairs and how pairs are drawn."""

    temperature: float = 0.11  # Bradley-Terry noise on the utility scale
    tie_margin: float = 0.02  # utilities closer than this are labelled "tie"
    vividness: tuple[float, float] = PAIR_VIVIDNESS  # each image's vividness is drawn uniformly from this range
    p_two_models: float = 0.3  # share of pairs where image B comes from a weaker generator
    weaker_scale: float = 2.0  # the weaker generator's failure rates are this many times higher

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.tie_margin < 0:
            raise ValueError(f"tie_margin must be >= 0, got {self.tie_margin}")
        lo, hi = self.vividness
        if not 0 <= lo <= hi <= 1:
            raise ValueError(f"vividness range must lie in [0, 1] and be ordered, got {self.vividness}")


def p_prefer_a(u_a: float, u_b: float, temperature: float) -> float:
    """Bradley-Terry probability that a person prefers A (temperature 0: always the better one)."""
    if temperature == 0:
        return 1.0 if u_a > u_b else (0.0 if u_a < u_b else 0.5)
    z = (u_a - u_b) / temperature
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))


def label(u_a: float, u_b: float, rng: random.Random, config: LabelerConfig) -> str:
    """A simulated human label for two true utilities: 'A', 'B' or 'tie'."""
    if abs(u_a - u_b) < config.tie_margin:
        return "tie"
    return "A" if rng.random() < p_prefer_a(u_a, u_b, config.temperature) else "B"


def _tasks(task: str, n: int) -> list[str]:
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    return [("t2i" if i % 2 == 0 else "edit") if task == "both" else task for i in range(n)]


def make_pair(world: World, seed: int, index: int, task: str, config: LabelerConfig | None = None) -> PreferencePair:
    """One labelled pair; fully determined by (seed, index, task, configs)."""
    cfg = config or LabelerConfig()
    key = f"{seed}|{index}"
    rng = random.Random(f"pair|{key}")
    source_img = None
    source = None
    if task == "edit":
        src = world.sample_source(f"{key}", SOURCE_VIVIDNESS)
        source, source_img = src.record, src.image
        req, text = world.sample_request(key, "edit", source=src.record.scene)
    else:
        req, text = world.sample_request(key, "t2i")
    two_models = rng.random() < cfg.p_two_models
    seeds = [rng.randrange(2**31), rng.randrange(2**31)]
    vivid = [round(rng.uniform(*cfg.vividness), 4) for _ in range(2)]
    gen_a = world.generate(text, seeds[0], vivid[0], source=source, task=task)
    if two_models:
        weak = World(world.config.scaled(cfg.weaker_scale), registry=world.registry)
        gen_b = weak.generate(text, seeds[1], vivid[1], source=source, task=task)
    else:
        gen_b = world.generate(text, seeds[1], vivid[1], source=source, task=task)
    if rng.random() < 0.5:  # the weaker model's image is not always B
        gen_a, gen_b = gen_b, gen_a
    t_a, t_b = world.truth(gen_a.record, req), world.truth(gen_b.record, req)
    lab = label(t_a.utility, t_b.utility, rng, cfg)
    png_a, png_b = to_png_bytes(gen_a.image), to_png_bytes(gen_b.image)
    png_src = to_png_bytes(source_img) if source_img is not None else None
    truth = {
        "utility_a": t_a.utility,
        "utility_b": t_b.utility,
        "scores_a": t_a.scores,
        "scores_b": t_b.scores,
        "findings_a": [f.kind for f in t_a.findings],
        "findings_b": [f.kind for f in t_b.findings],
        "vividness_a": gen_a.record.vividness,
        "vividness_b": gen_b.record.vividness,
        "request": req.to_dict(),
    }
    meta = {
        "task": task,
        "subset": task,
        "pair_source": "two_models" if two_models else "two_seeds",
        "world_seed": seed,
        "index": index,
        EVAL_KEY: truth,
    }
    pid = stable_id("world-pair", seed, index, task, text)
    return PreferencePair(request=text, image_a=png_a, image_b=png_b, source=png_src, label=lab, id=pid, meta=meta)


def make_pairs(
    n: int,
    seed: int = 0,
    task: str = "t2i",
    world: World | None = None,
    config: LabelerConfig | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[PreferencePair]:
    """``n`` labelled pairs (``task`` t2i, edit, or both alternating); every image is registered in ``world``."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    world = world or World()
    out = []
    for i, t in enumerate(_tasks(task, n)):
        out.append(make_pair(world, seed, i, t, config))
        if progress is not None:
            progress(1)
    return out


def strip_eval(pair: PreferencePair) -> PreferencePair:
    """The pair without its evaluation-only truth (what a model or a teacher prompt may see)."""
    return pair.model_copy(update={"meta": {k: v for k, v in pair.meta.items() if k != EVAL_KEY}})


# ---------------------------------------------------------------------------
# parquet


def _hf_features() -> str:
    img = {"_type": "Image"}
    feats = {
        "id": {"dtype": "string", "_type": "Value"},
        "request": {"dtype": "string", "_type": "Value"},
        "image_a": img,
        "image_b": img,
        "source": img,
        "label": {"dtype": "string", "_type": "Value"},
        "meta": {"dtype": "string", "_type": "Value"},
    }
    return json.dumps({"info": {"features": feats}}, sort_keys=True)


def save_pairs(pairs: list[PreferencePair], path: str | Path, registry: Registry | None = None) -> Path:
    """Write pairs as parquet (images as ``{bytes, path}`` structs, PNG bytes embedded; ``meta`` as JSON).

    The file is byte-identical for identical pairs. With ``registry``, the world records
    of the images are written next to it (``registry_path``).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img_t = pa.struct([("bytes", pa.binary()), ("path", pa.string())])

    def cell(x: Any) -> dict | None:
        return None if x is None else {"bytes": to_png_bytes(x), "path": None}

    schema = pa.schema(
        [
            ("id", pa.string()),
            ("request", pa.string()),
            ("image_a", img_t),
            ("image_b", img_t),
            ("source", img_t),
            ("label", pa.string()),
            ("meta", pa.string()),
        ],
        metadata={"huggingface": _hf_features()},
    )
    table = pa.Table.from_pydict(
        {
            "id": [p.key() for p in pairs],
            "request": [p.request for p in pairs],
            "image_a": [cell(p.image_a) for p in pairs],
            "image_b": [cell(p.image_b) for p in pairs],
            "source": [cell(p.source) for p in pairs],
            "label": [p.label for p in pairs],
            "meta": [json.dumps(p.meta, sort_keys=True) for p in pairs],
        },
        schema=schema,
    )
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp, compression="zstd")
    tmp.replace(path)
    if registry is not None:
        registry.save(registry_path(path))
    return path


def load_pairs(path: str | Path) -> list[PreferencePair]:
    """Read pairs written by ``save_pairs`` (images come back as PNG bytes)."""
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no pairs file at {path}")
    rows = pq.read_table(path).to_pylist()
    out = []
    for r in rows:
        src = r.get("source")
        out.append(
            PreferencePair(
                request=r["request"],
                image_a=r["image_a"]["bytes"],
                image_b=r["image_b"]["bytes"],
                source=src["bytes"] if src else None,
                label=r.get("label"),
                id=r.get("id"),
                meta=json.loads(r["meta"]) if r.get("meta") else {},
            )
        )
    return out


# ---------------------------------------------------------------------------
# pointwise benchmark sets (for Generate-Critique-Refine and RL)


@dataclass
class BenchItem:
    """One request to generate for (with its source image for edits); truth for evaluation under ``meta[EVAL_KEY]``."""

    id: str
    task: str
    request: str
    source: bytes | None = None
    seed: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        d = asdict(self)
        if self.source is not None:
            d["source"] = "data:image/png;base64," + base64.b64encode(self.source).decode("ascii")
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_json(cls, line: str) -> BenchItem:
        d = json.loads(line)
        src = d.get("source")
        if src:
            d["source"] = base64.b64decode(src.split(",", 1)[1])
        return cls(**d)


def make_bench(
    n: int,
    seed: int = 0,
    task: str = "t2i",
    world: World | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[BenchItem]:
    """``n`` requests (edit sources rendered and registered in ``world``); the structured request is kept for truth."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    world = world or World()
    out = []
    for i, t in enumerate(_tasks(task, n)):
        key = f"bench|{seed}|{i}"
        src_png = None
        if t == "edit":
            src = world.sample_source(key, SOURCE_VIVIDNESS)
            src_png = to_png_bytes(src.image)
            req, text = world.sample_request(key, "edit", source=src.record.scene)
        else:
            req, text = world.sample_request(key, "t2i")
        gen_seed = random.Random(key).randrange(2**31)
        out.append(
            BenchItem(
                id=stable_id("world-bench", seed, i, t, text),
                task=t,
                request=text,
                source=src_png,
                seed=gen_seed,
                meta={"task": t, "subset": t, "world_seed": seed, "index": i, EVAL_KEY: {"request": req.to_dict()}},
            )
        )
        if progress is not None:
            progress(1)
    return out


def save_bench(items: list[BenchItem], path: str | Path, registry: Registry | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w") as f:
        for it in items:
            f.write(it.to_json() + "\n")
    tmp.replace(path)
    if registry is not None:
        registry.save(registry_path(path))
    return path


def load_bench(path: str | Path) -> list[BenchItem]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no benchmark file at {path}")
    return [BenchItem.from_json(line) for line in path.read_text().splitlines() if line.strip()]
