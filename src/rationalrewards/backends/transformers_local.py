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

For Qwen3-VL checkpoints the backend decodes with its own loop (``engine="auto"``)
instead of ``model.generate``: the text prefix that every row of a batch shares
(the system message and rubric of a critique prompt) is run once and kept once,
each decode step attends to that one copy plus each row's own keys (no per-step
cache concatenation), and the prefix up to its last message boundary is kept
across calls (``prefix_cache`` entries). Greedy outputs equal ``model.generate``'s;
``engine="generate"`` uses ``model.generate`` throughout.
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
_ENGINES = ("auto", "generate")
#: architectures whose text decoder ``_PrefixDecoder`` runs step by step (layout checked in ``_supports_own_loop``)
_OWN_LOOP_MODELS = ("Qwen3VLForConditionalGeneration",)
#: ``generate_kwargs`` the own loop honours; any other key sends generation through ``model.generate``
_OWN_LOOP_KWARGS = frozenset({"logits_processor", "min_new_tokens"})


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
    the image processor's resize bounds (pixels per image). ``generate_kwargs`` go to ``model.generate``
    (``logits_processor`` and ``min_new_tokens`` are also honoured by the own decoding loop).
    ``engine``: "auto" (own shared-prefix decoding loop for Qwen3-VL, ``model.generate`` otherwise) or
    "generate". ``prefix_cache``: how many shared prompt prefixes (key/value tensors) to keep across calls
    (0: none). ``num_threads``: set torch's CPU threads (process-wide; one thread is often faster for small
    models on a busy machine).
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
        engine: str = "auto",
        prefix_cache: int = 4,
        num_threads: int | None = None,
    ) -> None:
        torch, transformers = _import_torch_transformers()
        from ..models.processor import load_processor

        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if engine not in _ENGINES:
            raise ValueError(f"engine must be one of {', '.join(_ENGINES)}, got {engine!r}")
        if prefix_cache < 0:
            raise ValueError(f"prefix_cache must be >= 0, got {prefix_cache}")
        if num_threads is not None:
            if num_threads < 1:
                raise ValueError(f"num_threads must be at least 1, got {num_threads}")
            torch.set_num_threads(num_threads)
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
        im_start = vocab.get("<|im_start|>")
        self._decoder = (
            _PrefixDecoder(self.model, self.stop_ids, self.pad_id, im_start, prefix_cache)
            if engine == "auto" and _supports_own_loop(self.model)
            else None
        )
        self.engine = "own-loop" if self._decoder is not None else "generate"

    def prefix_cache_info(self) -> dict[str, int]:
        """Shared-prefix counters of the own decoding loop (all zero under ``engine="generate"``): cache
        ``hits``/``misses``, ``entries`` kept, and ``last_shared_tokens`` (prefix length of the last batch)."""
        d = self._decoder
        if d is None:
            return {"hits": 0, "misses": 0, "entries": 0, "last_shared_tokens": 0}
        return {
            "hits": d.stats["prefix_hits"],
            "misses": d.stats["prefix_misses"],
            "entries": len(d.cache),
            "last_shared_tokens": d.stats["shared_tokens"],
        }

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
        processors = list(self.generate_kwargs.get("logits_processor") or [])
        if config.temperature > 0:
            seeds = [_row_seed(config.seed, it.key, j) for it in chunk for j in range(n)]
            # the sampler goes last: processors given in generate_kwargs shape the scores it samples from
            processors.append(_GumbelSampler(seeds, config.temperature, config.top_p, self.device))
        if self._decoder is not None and set(self.generate_kwargs) <= _OWN_LOOP_KWARGS:
            min_new = int(self.generate_kwargs.get("min_new_tokens") or 0)
            with torch.inference_mode():
                new = self._decoder.generate(enc, config.max_tokens, processors, min_new)
        else:
            gen_config = transformers.GenerationConfig(
                max_new_tokens=config.max_tokens,
                do_sample=False,
                num_beams=1,
                repetition_penalty=1.0,
                eos_token_id=self.stop_ids,
                pad_token_id=self.pad_id,
            )
            kwargs: dict[str, Any] = {"generation_config": gen_config, **self.generate_kwargs}
            kwargs["logits_processor"] = transformers.LogitsProcessorList(processors)
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


def _supports_own_loop(model: Any) -> bool:
    """Whether ``_PrefixDecoder`` can run this model's text decoder (Qwen3-VL layout, full attention)."""
    if type(model).__name__ not in _OWN_LOOP_MODELS:
        return False
    lm = getattr(getattr(model, "model", None), "language_model", None)
    layers = getattr(lm, "layers", None)
    if lm is None or not layers or not hasattr(model.model, "get_rope_index"):
        return False
    need = ("q_proj", "k_proj", "v_proj", "o_proj", "q_norm", "k_norm", "scaling")
    return all(all(hasattr(layer.self_attn, a) for a in need) for layer in layers) and all(
        t == "full_attention" for t in (getattr(lm.config, "layer_types", None) or ["full_attention"])
    )


class _PrefixDecoder:
    """Greedy/processor-driven decoding for Qwen3-VL that keeps the batch's shared prompt prefix once.

    Prefill: the shared text prefix (all rows agree on it, and it holds no image) runs once at batch 1, or
    comes from the cross-call cache; the per-row suffixes (left-padded, with the images) then run through the
    model's own forward against that prefix, with the M-RoPE positions ``get_rope_index`` gives for the whole
    rows. Decode: each step runs the text decoder layer by layer; attention scores against the prefix come
    from one matrix product for all rows, against each row's own keys from a preallocated buffer.
    """

    _GROW = 256  # per-row key/value buffer growth, in tokens

    def __init__(self, model: Any, stop_ids: list[int], pad_id: int, im_start: int | None, cache_size: int):
        import sys
        from collections import OrderedDict

        self.model = model
        self.lm = model.model.language_model
        self.rope = sys.modules[type(self.lm.layers[0].self_attn).__module__].apply_rotary_pos_emb
        self.stop_ids = stop_ids
        self.pad_id = pad_id
        self.im_start = im_start
        self.cache_size = cache_size
        self.cache: OrderedDict[bytes, list[tuple[Any, Any]]] = OrderedDict()
        self.stats = {"prefix_hits": 0, "prefix_misses": 0, "shared_tokens": 0}

    # -- prefill ----------------------------------------------------------------------------------

    def shared_length(self, rows: list[Any], mm_types: list[Any]) -> tuple[int, int]:
        """``(P, B)``: P tokens every row starts with (text only, each row keeps >= 1 token after it);
        B <= P: the part of it worth keeping across calls (whole messages only)."""
        first = rows[0]
        p = min(len(r) for r in rows) - 1
        for r in rows[1:]:
            diff = (r[:p] != first[:p]).nonzero()
            if len(diff):
                p = int(diff[0])
        media = mm_types[0][:p].nonzero()
        if len(media):
            p = int(media[0])
        if self.im_start is None:
            return max(p, 0), max(p, 0)
        # message starts inside the prefix, leaving out the row's last one (the generation prompt): B is where
        # the first per-request message starts, e.g. the end of the system message
        starts = (first == self.im_start).nonzero().view(-1)
        starts = starts[(starts > 0) & (starts <= p) & (starts < starts[-1])] if len(starts) else starts
        b = int(starts[-1]) if len(starts) else 0
        return max(p, 0), b

    def _forward_text(self, ids: Any, past: list[tuple[Any, Any]] | None) -> list[tuple[Any, Any]]:
        """Run text-only ``ids`` (1, L) after ``past`` (per-layer (1, kv, T, d)); the new per-layer keys/values."""
        torch, transformers = _import_torch_transformers()
        start = past[0][0].shape[2] if past else 0
        length = ids.shape[1]
        pos = torch.arange(start, start + length, device=ids.device).view(1, 1, -1).expand(4, 1, -1)
        cache = transformers.DynamicCache(ddp_cache_data=past) if past else transformers.DynamicCache()
        mask = torch.ones(1, start + length, dtype=torch.long, device=ids.device)
        self.model(input_ids=ids, attention_mask=mask, position_ids=pos, past_key_values=cache, logits_to_keep=1)
        return [(layer.keys[:, :, start:], layer.values[:, :, start:]) for layer in cache.layers]

    def prefix(self, ids: Any, p: int, b: int) -> list[tuple[Any, Any]]:
        """Per-layer keys/values (1, kv, p, d) of ``ids[:p]``; the first ``b`` tokens' come from / go to the cache."""
        torch = _import_torch_transformers()[0]
        key = ids[:b].cpu().numpy().tobytes() if b > 0 else b""
        kv = self.cache.get(key) if key else None
        if kv is not None:
            self.cache.move_to_end(key)
            self.stats["prefix_hits"] += 1
        elif b > 0:
            self.stats["prefix_misses"] += 1
            kv = self._forward_text(ids[None, :b], None)
            kv = [(k.contiguous(), v.contiguous()) for k, v in kv]
            if self.cache_size > 0:
                self.cache[key] = kv
                while len(self.cache) > self.cache_size:
                    self.cache.popitem(last=False)
        if p > b:
            more = self._forward_text(ids[None, b:p], kv)
            kv = (
                [(torch.cat([k0, k1], 2), torch.cat([v0, v1], 2)) for (k0, v0), (k1, v1) in zip(kv, more, strict=True)]
                if kv
                else more
            )
        return kv or []

    # -- generation -------------------------------------------------------------------------------

    def generate(
        self, enc: Any, max_new: int, processors: list[Any], min_new: int = 0, logits_out: list[Any] | None = None
    ) -> list[list[int]]:
        """New token ids per row of the left-padded processor output ``enc`` (stops included, then padding).

        ``logits_out``: when given, each step's raw logits (rows, vocab) are appended to it.
        """
        torch, transformers = _import_torch_transformers()
        ids, mask = enc["input_ids"], enc["attention_mask"]
        device = ids.device
        n_rows, width = ids.shape
        mm = enc.get("mm_token_type_ids")
        if mm is None:
            mm = torch.zeros_like(ids)
        grid = enc.get("image_grid_thw")
        lengths = mask.sum(1)
        rows = [ids[r, width - int(lengths[r]) :] for r in range(n_rows)]
        mm_rows = [mm[r, width - int(lengths[r]) :] for r in range(n_rows)]
        left_padded = torch.arange(width, device=device)[None, :] >= (width - lengths)[:, None]
        if not bool((left_padded == mask.bool()).all()):
            raise ValueError("the processor's padding must be on the left")
        p, b = self.shared_length(rows, mm_rows)
        prefix = self.prefix(rows[0], p, b)
        self.stats["shared_tokens"] = p

        # M-RoPE positions of whole rows; the prefix (text only) takes positions 0..p-1 in every row
        pos3, deltas = self.model.model.get_rope_index(
            ids, mm_token_type_ids=mm, image_grid_thw=grid, attention_mask=mask
        )
        suffix_len = lengths - p
        span = int(suffix_len.max())
        suf_ids = torch.full((n_rows, span), self.pad_id, dtype=ids.dtype, device=device)
        suf_mm = torch.zeros((n_rows, span), dtype=mm.dtype, device=device)
        suf_mask = torch.zeros((n_rows, span), dtype=mask.dtype, device=device)
        suf_pos = torch.ones((4, n_rows, span), dtype=pos3.dtype, device=device)
        for r in range(n_rows):
            k = int(suffix_len[r])
            suf_ids[r, span - k :] = rows[r][p:]
            suf_mm[r, span - k :] = mm_rows[r][p:]
            suf_mask[r, span - k :] = 1
            suf_pos[0, r, span - k :] = torch.arange(p, p + k, device=device)
            suf_pos[1:, r, span - k :] = pos3[:, r, width - k :]
        past = [
            (k.expand(n_rows, -1, -1, -1).contiguous(), v.expand(n_rows, -1, -1, -1).contiguous()) for k, v in prefix
        ]
        cache = transformers.DynamicCache(ddp_cache_data=past) if past else transformers.DynamicCache()
        full_mask = torch.cat([torch.ones((n_rows, p), dtype=mask.dtype, device=device), suf_mask], 1)
        extra = {k: enc[k] for k in ("pixel_values", "image_grid_thw") if enc.get(k) is not None}
        out = self.model(
            input_ids=suf_ids,
            attention_mask=full_mask,
            position_ids=suf_pos,
            past_key_values=cache,
            mm_token_type_ids=suf_mm,
            logits_to_keep=1,
            **extra,
        )
        logits = out.logits[:, -1].float()

        # per-row keys/values after the prefix, in buffers with room to grow
        cap = span + min(max_new, self._GROW)
        own_k, own_v = [], []
        for layer in cache.layers:
            kb = layer.keys.new_empty((n_rows, layer.keys.shape[1], cap, layer.keys.shape[3]))
            vb = layer.values.new_empty((n_rows, layer.values.shape[1], cap, layer.values.shape[3]))
            kb[:, :, :span] = layer.keys[:, :, p:]
            vb[:, :, :span] = layer.values[:, :, p:]
            own_k.append(kb)
            own_v.append(vb)
        del cache, out, past
        shared_k = [k[0] for k, _ in prefix]  # (kv, p, d)
        shared_v = [v[0] for _, v in prefix]
        dtype = own_k[0].dtype if own_k else torch.float32
        bias = torch.full((n_rows, cap), torch.finfo(dtype).min, dtype=dtype, device=device)
        bias[:, :span] = torch.where(suf_mask.bool(), 0.0, torch.finfo(dtype).min).to(dtype)
        next_pos = deltas.view(-1).to(device) + lengths  # M-RoPE position of the first new token

        stop = torch.tensor(self.stop_ids, device=device)
        finished = torch.zeros(n_rows, dtype=torch.bool, device=device)
        seq = ids
        generated: list[Any] = []
        t = span
        for step in range(max_new):
            if logits_out is not None:
                logits_out.append(logits)
            scores = logits
            if step < min_new:
                scores = scores.clone()
                scores[:, stop] = float("-inf")
            for proc in processors:
                scores = proc(seq, scores)
            tok = scores.argmax(-1)
            tok = torch.where(finished, torch.full_like(tok, self.pad_id), tok)
            generated.append(tok)
            finished |= torch.isin(tok, stop)
            if bool(finished.all()) or step == max_new - 1:
                break
            if processors:
                seq = torch.cat([seq, tok[:, None]], 1)
            if t == cap:
                cap += self._GROW
                own_k = [torch.cat([x, x.new_empty(x.shape[:2] + (self._GROW, x.shape[3]))], 2) for x in own_k]
                own_v = [torch.cat([x, x.new_empty(x.shape[:2] + (self._GROW, x.shape[3]))], 2) for x in own_v]
                bias = torch.cat([bias, bias.new_full((n_rows, self._GROW), torch.finfo(dtype).min)], 1)
            bias[:, t] = 0.0
            logits = self._step(tok, next_pos + step, t, shared_k, shared_v, own_k, own_v, bias[:, None, None, : t + 1])
            t += 1
        return torch.stack(generated, 1).tolist()

    def _step(self, tok, pos, t, shared_k, shared_v, own_k, own_v, bias) -> Any:
        """One decode step for all rows: token ``tok`` (rows,) at M-RoPE position ``pos`` (rows,), written at ``t``."""
        lm = self.lm
        n_rows = tok.shape[0]
        h = lm.embed_tokens(tok[:, None])
        cos, sin = lm.rotary_emb(h, pos.view(1, n_rows, 1).expand(3, n_rows, 1))
        for i, layer in enumerate(lm.layers):
            attn = layer.self_attn
            x = layer.input_layernorm(h)
            d = attn.head_dim
            q = attn.q_norm(attn.q_proj(x).view(n_rows, 1, -1, d)).transpose(1, 2)
            k = attn.k_norm(attn.k_proj(x).view(n_rows, 1, -1, d)).transpose(1, 2)
            v = attn.v_proj(x).view(n_rows, 1, -1, d).transpose(1, 2)
            q, k = self.rope(q, k, cos, sin)
            own_k[i][:, :, t] = k[:, :, 0]
            own_v[i][:, :, t] = v[:, :, 0]
            o = _shared_prefix_attention(
                q,
                shared_k[i] if shared_k else None,
                shared_v[i] if shared_v else None,
                own_k[i][:, :, : t + 1],
                own_v[i][:, :, : t + 1],
                bias,
                attn.scaling,
            )
            h = h + attn.o_proj(o.reshape(n_rows, 1, -1))
            h = h + layer.mlp(layer.post_attention_layernorm(h))
        return self.model.lm_head(lm.norm(h))[:, -1].float()


def _shared_prefix_attention(q, shared_k, shared_v, own_k, own_v, bias, scaling) -> Any:
    """Attention of one query per row over [shared prefix keys | the row's own keys], as one softmax.

    ``q`` (rows, heads, 1, d); ``shared_k/v`` (kv_heads, p, d) or None; ``own_k/v`` (rows, kv_heads, t, d);
    ``bias`` (rows, 1, 1, t): 0 where a row's own key counts, a large negative number where it is padding.
    Returns (rows, heads, d).
    """
    import torch

    n_rows, heads, _, d = q.shape
    kv = own_k.shape[1]
    g = heads // kv
    qg = q.reshape(n_rows, kv, g, d)
    own = torch.matmul(qg, own_k.transpose(-1, -2)) * scaling + bias.view(n_rows, 1, 1, -1)
    if shared_k is None:
        probs = torch.softmax(own.float(), -1).to(q.dtype)
        return torch.matmul(probs, own_v).reshape(n_rows, heads, d)
    p = shared_k.shape[1]
    qs = qg.permute(1, 0, 2, 3).reshape(kv, n_rows * g, d)
    shared = (torch.matmul(qs, shared_k.transpose(-1, -2)) * scaling).view(kv, n_rows, g, p).permute(1, 0, 2, 3)
    probs = torch.softmax(torch.cat([shared, own], -1).float(), -1).to(q.dtype)
    out = torch.matmul(probs[..., p:], own_v)
    ps = probs[..., :p].permute(1, 0, 2, 3).reshape(kv, n_rows * g, p)
    out = out + torch.matmul(ps, shared_v).view(kv, n_rows, g, d).permute(1, 0, 2, 3)
    return out.reshape(n_rows, heads, d)


def from_spec(rest: str, **kwargs: Any) -> TransformersBackend:
    """``transformers:PATH`` -> ``TransformersBackend(PATH, **kwargs)``."""
    if not rest.strip():
        raise ValueError("the transformers backend needs a checkpoint folder: 'transformers:/path/to/checkpoint'")
    return TransformersBackend(rest.strip(), **kwargs)
