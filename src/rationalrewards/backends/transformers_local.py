"""A local ``transformers`` backend: ``AutoModelForImageTextToText`` + ``AutoProcessor``, batched.

Each conversation is rendered once by the processor's chat template (with a
generation prompt) and its images are decoded in order. Prompts are batched
with left padding; every conversation's ``n`` samples are rows of the same
batch. Sampling draws per row from its own seeded ``torch.Generator`` (Gumbel-max
over the temperature- and top-p-shaped distribution), so a seeded sample depends
on the conversation, the seed and the sample index only, not on what else shares
its batch. Greedy decoding (temperature 0) is plain argmax. Sampling settings are
exactly those of ``GenerationConfig`` (temperature, top-p): the checkpoint's own
defaults (top-k, repetition penalty ...) are not applied unless passed in
``generate_kwargs``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..conversation import Conversation
from ..images import DEFAULT_MAX_PIXELS, load_image
from .base import Backend, Completion, GenerationConfig

logger = logging.getLogger(__name__)

_STOP_TOKENS = ("<|im_end|>", "<|endoftext|>")
_DTYPES = ("float32", "bfloat16", "float16")


def _import_torch_transformers() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise ImportError(
            "the transformers backend needs torch and transformers: pip install 'rationalrewards' "
            "(or pip install torch transformers)"
        ) from exc
    return torch, transformers


@dataclass
class _Item:
    """One conversation ready for the model: its rendered prompt, its images and a key for seeding."""

    index: int
    text: str
    images: list[Any]
    key: bytes


class TransformersBackend(Backend):
    """Generate with a local checkpoint folder (any ``AutoModelForImageTextToText`` model, e.g. Qwen3-VL).

    ``device``: "cpu", "cuda", "cuda:1" or "auto" (CUDA when available). ``dtype``: None (float32 on the CPU,
    the checkpoint's dtype on a GPU), "float32", "bfloat16" or "float16". ``batch_size``: sequences generated
    together (a conversation's ``n`` samples always share a batch). ``max_pixels`` / ``min_pixels`` override
    the image processor's resize bounds (pixels per image). ``generate_kwargs`` go to ``model.generate``.
    """

    def __init__(
        self,
        path: str | Path,
        device: str = "auto",
        dtype: str | None = None,
        batch_size: int = 8,
        max_pixels: int | None = None,
        min_pixels: int | None = None,
        trust_remote_code: bool = False,
        attn_implementation: str | None = None,
        generate_kwargs: dict[str, Any] | None = None,
    ) -> None:
        torch, transformers = _import_torch_transformers()
        from ..models.processor import load_processor

        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if dtype is not None and dtype not in _DTYPES:
            raise ValueError(f"dtype must be None or one of {', '.join(_DTYPES)}, got {dtype!r}")
        path = Path(path).expanduser()
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"no checkpoint at {path} (expected a folder with config.json)")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device {device!r} asked for, but CUDA is not available")
        self.device = torch.device(device)
        if dtype is None:
            torch_dtype: Any = torch.float32 if self.device.type == "cpu" else "auto"
        else:
            torch_dtype = getattr(torch, dtype)

        load_kwargs: dict[str, Any] = {"dtype": torch_dtype, "trust_remote_code": trust_remote_code}
        if attn_implementation:
            load_kwargs["attn_implementation"] = attn_implementation
        self.model = transformers.AutoModelForImageTextToText.from_pretrained(str(path), **load_kwargs)
        self.model.to(self.device).eval()
        self.processor = load_processor(path, trust_remote_code=trust_remote_code)
        tokenizer = self.processor.tokenizer
        tokenizer.padding_side = "left"
        self._set_pixel_bounds(min_pixels, max_pixels)

        vocab = tokenizer.get_vocab()
        stop = [vocab[t] for t in _STOP_TOKENS if t in vocab]
        gen_eos = self.model.generation_config.eos_token_id
        for extra in [tokenizer.eos_token_id, *(gen_eos if isinstance(gen_eos, list) else [gen_eos])]:
            if extra is not None and extra not in stop:
                stop.append(int(extra))
        if not stop:
            raise ValueError(f"{path}: the tokenizer has no end-of-turn or eos token to stop at")
        self.stop_ids = stop
        pad = tokenizer.pad_token_id
        self.pad_id = int(pad) if pad is not None else stop[0]
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token_id = self.pad_id

        self.path = path
        self.batch_size = batch_size
        self.generate_kwargs = dict(generate_kwargs or {})
        self.name = f"transformers:{path}"
        self._lock = threading.Lock()

    def _set_pixel_bounds(self, min_pixels: int | None, max_pixels: int | None) -> None:
        ip = getattr(self.processor, "image_processor", None)
        if ip is None or (min_pixels is None and max_pixels is None):
            return
        size = dict(ip.size)
        if min_pixels is not None:
            size["shortest_edge"] = int(min_pixels)
        if max_pixels is not None:
            size["longest_edge"] = int(max_pixels)
        if size.get("shortest_edge", 0) > size.get("longest_edge", float("inf")):
            raise ValueError(f"min_pixels ({size['shortest_edge']}) is above max_pixels ({size['longest_edge']})")
        ip.size = size

    # -- the contract ---------------------------------------------------------------------------

    async def agenerate(
        self, conversations: Sequence[Conversation], config: GenerationConfig | None = None
    ) -> list[Completion]:
        config = config or GenerationConfig()
        _check_config(config)
        if self.model is None:
            raise RuntimeError(f"{self.name} is closed")
        return await asyncio.to_thread(self._generate_blocking, list(conversations), config)

    def close(self) -> None:
        torch, _ = _import_torch_transformers()
        self.model = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # -- the work -------------------------------------------------------------------------------

    def _prepare(self, index: int, conv: Conversation) -> _Item:
        images = [load_image(im, max_pixels=DEFAULT_MAX_PIXELS) for im in conv.images()]
        text = self.processor.apply_chat_template(conv.to_hf(), add_generation_prompt=True, tokenize=False)
        h = hashlib.sha256(text.encode("utf-8"))
        for im in images:
            h.update(f"{im.size[0]}x{im.size[1]}".encode())
            h.update(im.tobytes())
        return _Item(index, text, images, h.digest())

    def _generate_blocking(self, conversations: list[Conversation], config: GenerationConfig) -> list[Completion]:
        results: list[Completion | None] = [None] * len(conversations)
        items: list[_Item] = []
        for i, conv in enumerate(conversations):
            try:
                items.append(self._prepare(i, conv))
            except Exception as exc:  # one bad item (unreadable image, template error) must not fail the batch
                results[i] = Completion(error=f"{type(exc).__name__}: {exc}")
        per_batch = max(1, self.batch_size // config.n)
        # similar lengths together: less padding (the outputs do not depend on the grouping)
        items.sort(key=lambda it: (len(it.text), len(it.images)))
        with self._lock:
            for start in range(0, len(items), per_batch):
                chunk = items[start : start + per_batch]
                for item, completion in zip(chunk, self._run_chunk(chunk, config), strict=True):
                    results[item.index] = completion
        return [r if r is not None else Completion(error="internal error: no result") for r in results]

    def _run_chunk(self, chunk: list[_Item], config: GenerationConfig) -> list[Completion]:
        try:
            return self._generate_rows(chunk, config)
        except Exception as exc:
            if len(chunk) == 1:
                logger.warning("generation failed for one conversation: %s: %s", type(exc).__name__, exc)
                return [Completion(error=f"{type(exc).__name__}: {exc}")]
            logger.warning("batched generation failed (%s); retrying its %d items one at a time", exc, len(chunk))
            return [self._run_chunk([item], config)[0] for item in chunk]

    def _generate_rows(self, chunk: list[_Item], config: GenerationConfig) -> list[Completion]:
        torch, transformers = _import_torch_transformers()
        n = config.n
        texts = [it.text for it in chunk for _ in range(n)]
        images = [im for it in chunk for _ in range(n) for im in it.images]
        enc = self.processor(text=texts, images=images or None, padding=True, return_tensors="pt")
        enc = enc.to(self.device)
        gen_config = transformers.GenerationConfig(
            max_new_tokens=config.max_tokens,
            do_sample=False,
            num_beams=1,
            repetition_penalty=1.0,
            eos_token_id=self.stop_ids,
            pad_token_id=self.pad_id,
        )
        kwargs: dict[str, Any] = {"generation_config": gen_config, **self.generate_kwargs}
        if config.temperature > 0:
            seeds = [_row_seed(config.seed, it.key, j) for it in chunk for j in range(n)]
            # the sampler goes last: processors given in generate_kwargs shape the scores it samples from
            processors = transformers.LogitsProcessorList(kwargs.get("logits_processor") or [])
            processors.append(_GumbelSampler(seeds, config.temperature, config.top_p, self.device))
            kwargs["logits_processor"] = processors
        with torch.inference_mode():
            out = self.model.generate(**enc, **kwargs)
        new = out[:, enc["input_ids"].shape[1] :].tolist()
        decoded = [self._decode(row) for row in new]
        return [Completion(texts=decoded[k * n : (k + 1) * n]) for k in range(len(chunk))]

    def _decode(self, ids: list[int]) -> str:
        stops = set(self.stop_ids)
        for k, tok in enumerate(ids):
            if tok in stops:
                ids = ids[:k]
                break
        return self.processor.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)


def _check_config(config: GenerationConfig) -> None:
    if config.n < 1:
        raise ValueError(f"n must be at least 1, got {config.n}")
    if config.max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {config.max_tokens}")
    if config.temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {config.temperature}")
    if not 0 < config.top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {config.top_p}")


def _row_seed(seed: int | None, key: bytes, sample: int) -> int:
    """A 63-bit seed for one sample of one conversation (random when no seed is given)."""
    if seed is None:
        return random.SystemRandom().getrandbits(63)
    h = hashlib.sha256(f"{seed}:{sample}:".encode() + key).digest()
    return int.from_bytes(h[:8], "big") >> 1


class _GumbelSampler:
    """A logits processor that turns greedy decoding into per-row seeded sampling.

    For each row: scores / temperature, log-softmax, mask outside the top-p nucleus, add Gumbel noise drawn
    from the row's own generator. The argmax that greedy decoding then takes is a sample from the nucleus.
    """

    def __init__(self, seeds: list[int], temperature: float, top_p: float, device: Any) -> None:
        import torch

        self.temperature = float(temperature)
        self.top_p = float(top_p)
        self.generators = []
        for s in seeds:
            g = torch.Generator(device=device)
            g.manual_seed(s)
            self.generators.append(g)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        logp = torch.log_softmax(scores.float() / self.temperature, dim=-1)
        if self.top_p < 1.0:
            sorted_logp, order = torch.sort(logp, dim=-1, descending=True)
            cum = sorted_logp.exp().cumsum(dim=-1)
            drop_sorted = (cum - sorted_logp.exp()) >= self.top_p  # the first token always stays
            drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
            logp = logp.masked_fill(drop, float("-inf"))
        vocab = logp.shape[-1]
        u = torch.stack([torch.rand(vocab, generator=g, device=logp.device) for g in self.generators])
        tiny = torch.finfo(torch.float32).tiny
        gumbel = -torch.log(-torch.log(u.clamp(min=tiny, max=1.0 - 1e-7)))
        return logp + gumbel


def from_spec(rest: str, **kwargs: Any) -> TransformersBackend:
    """``transformers:PATH`` -> ``TransformersBackend(PATH, **kwargs)``."""
    if not rest.strip():
        raise ValueError("the transformers backend needs a checkpoint folder: 'transformers:/path/to/checkpoint'")
    return TransformersBackend(rest.strip(), **kwargs)
