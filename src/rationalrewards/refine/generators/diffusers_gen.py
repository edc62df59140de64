"""Diffusers pipelines as generators: text-to-image (Flux, SD3, Qwen-Image...) and edit (FluxKontext, QwenImageEdit...).

Loaded with ``DiffusionPipeline.from_pretrained`` from a local folder or a hub id; batched, with one
``torch.Generator`` per item so that item ``i`` with seed ``s`` gives the same image whatever batch
it is in; extra call kwargs (steps, guidance, height/width) are checked against the pipeline's signature.
"""

from __future__ import annotations

import inspect
from typing import Any

from PIL import Image

from ...images import load_image
from .base import Generator, coerce, parse_spec_query

_EDIT_HINTS = ("Edit", "Kontext", "InstructPix2Pix")
# edit pipelines known to also make an image from text alone (the rest need a source image)
_T2I_CAPABLE_EDITORS = ("Kontext",)


def _require_diffusers():
    try:
        import diffusers
        import torch  # noqa: F401
    except ImportError as exc:
        raise ImportError("the diffusers generator needs diffusers: pip install 'rationalrewards[diffusers]'") from exc
    return diffusers


class DiffusersGenerator(Generator):
    """A diffusers pipeline as a generator.

    ``edit=None`` decides from the pipeline class (``*Edit*``, ``*Kontext*``) whether sources are
    passed as ``image=``; ``edit=True`` insists (the pipeline must take ``image``), ``edit=False`` never
    passes one. ``call_kwargs`` go to every call (``num_inference_steps``, ``guidance_scale``, ...).
    """

    def __init__(
        self,
        path_or_id: str | None = None,
        *,
        pipeline: Any = None,
        edit: bool | None = None,
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int = 4,
        call_kwargs: dict[str, Any] | None = None,
        load_kwargs: dict[str, Any] | None = None,
        progress: bool = False,
    ):
        super().__init__()
        if (path_or_id is None) == (pipeline is None):
            raise ValueError("give exactly one of path_or_id and pipeline")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        diffusers = _require_diffusers()
        import torch

        torch_dtype = None
        if dtype is not None:
            torch_dtype = getattr(torch, str(dtype).replace("torch.", ""), None)
            if not isinstance(torch_dtype, torch.dtype):
                raise ValueError(f"unknown dtype {dtype!r}; use e.g. float32, float16, bfloat16")
        if pipeline is None:
            kwargs = dict(load_kwargs or {})
            if torch_dtype is not None:
                kwargs["torch_dtype"] = torch_dtype
            pipeline = diffusers.DiffusionPipeline.from_pretrained(path_or_id, **kwargs)
        elif torch_dtype is not None:
            pipeline = pipeline.to(dtype=torch_dtype)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        pipeline = pipeline.to(self.device)
        if hasattr(pipeline, "set_progress_bar_config"):
            pipeline.set_progress_bar_config(disable=not progress)
        self.pipeline = pipeline
        self.batch_size = batch_size

        params = inspect.signature(pipeline.__call__).parameters
        self._accepts_var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        self._params = set(params) - {"self"}
        if "prompt" not in self._params:
            raise ValueError(f"{type(pipeline).__name__}.__call__ takes no 'prompt': not a text-conditioned pipeline")
        takes_image = "image" in self._params
        cls_name = type(pipeline).__name__
        if edit is None:
            edit = takes_image and any(h in cls_name for h in _EDIT_HINTS)
        if edit and not takes_image:
            raise ValueError(f"{cls_name}.__call__ takes no 'image': it cannot edit")
        self.supports_edit = bool(edit)
        self.supports_t2i = not edit or any(h in cls_name for h in _T2I_CAPABLE_EDITORS)
        self.call_kwargs = dict(call_kwargs or {})
        reserved = {"prompt", "image", "generator", "output_type", "num_images_per_prompt", "return_dict"}
        clash = reserved & set(self.call_kwargs)
        if clash:
            raise ValueError(f"call_kwargs may not set {sorted(clash)}: the generator sets them per call")
        unknown = set(self.call_kwargs) - self._params
        if unknown and not self._accepts_var_kw:
            raise ValueError(
                f"{cls_name}.__call__ does not take {sorted(unknown)}; it takes: {', '.join(sorted(self._params))}"
            )
        where = path_or_id if path_or_id is not None else cls_name
        self.name = f"diffusers:{where}" + ("?edit" if edit else "")

    def _generate(self, requests: list[str], seeds: list[int], sources: list[Any | None]) -> list[Image.Image]:
        import torch

        out: list[Image.Image | None] = [None] * len(requests)
        # items batch together only when their sources agree in presence and size (pipelines stack them)
        groups: dict[Any, list[int]] = {}
        pil_sources: list[Image.Image | None] = []
        for i, src in enumerate(sources):
            img = load_image(src) if (src is not None and self.supports_edit) else None
            pil_sources.append(img)
            groups.setdefault(None if img is None else img.size, []).append(i)
        gen_device = "cpu" if str(self.device).startswith("mps") else self.device
        for idx in groups.values():
            for start in range(0, len(idx), self.batch_size):
                chunk = idx[start : start + self.batch_size]
                kwargs = dict(self.call_kwargs)
                kwargs["prompt"] = [requests[i] for i in chunk]
                kwargs["generator"] = [torch.Generator(device=gen_device).manual_seed(seeds[i]) for i in chunk]
                kwargs["output_type"] = "pil"
                if pil_sources[chunk[0]] is not None:
                    kwargs["image"] = [pil_sources[i] for i in chunk]
                with torch.inference_mode():
                    result = self.pipeline(**kwargs)
                images = result.images if hasattr(result, "images") else result[0]
                for i, img in zip(chunk, images, strict=True):
                    out[i] = img
        return [img for img in out if img is not None]

    def close(self) -> None:
        self.pipeline = None


_INIT_KEYS = {"pipeline", "edit", "device", "dtype", "batch_size", "load_kwargs", "progress"}


def from_spec(rest: str, **kwargs: Any) -> DiffusersGenerator:
    """``PATH_OR_ID[?edit&device=cuda&dtype=bfloat16&batch_size=2&num_inference_steps=28&...]``."""
    path, opts = parse_spec_query(rest)
    if not path:
        raise ValueError("diffusers spec needs a folder or hub id: diffusers:PATH_OR_ID[?edit]")
    call_kwargs = dict(kwargs.pop("call_kwargs", None) or {})
    init: dict[str, Any] = {}
    for key, value in opts.items():
        if key == "edit":
            init["edit"] = coerce(value) if value != "" else True
        elif key in ("device", "dtype"):
            init[key] = value
        elif key == "batch_size":
            init[key] = int(value)
        else:
            call_kwargs[key] = coerce(value)
    for key, value in kwargs.items():  # e.g. from --gen-arg: generator options, else pipeline call kwargs
        (init if key in _INIT_KEYS else call_kwargs)[key] = value
    return DiffusersGenerator(path, call_kwargs=call_kwargs, **init)
