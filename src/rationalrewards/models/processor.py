"""Loading a vision-language processor without torchvision.

Stock Qwen-VL processors (Qwen2-VL, Qwen2.5-VL, Qwen3-VL) insist on a video
processor, and their video processors need torchvision. Images alone need no
torchvision, so ``load_processor`` tries the stock ``AutoProcessor`` first and,
only when that fails for want of torchvision (or of a video processor config),
loads an image-only subclass of the same processor class and logs why.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: stock processor classes that accept ``video_processor=None`` and still handle images and text
IMAGE_ONLY_CAPABLE = ("Qwen3VLProcessor", "Qwen2_5_VLProcessor", "Qwen2VLProcessor")

_CLASSES: dict[str, type] = {}


def _require_transformers() -> Any:
    try:
        import transformers
    except ImportError as exc:  # pragma: no cover - transformers is a core dependency
        raise ImportError(
            "loading a local model needs torch and transformers: pip install 'rationalrewards' (core deps)"
        ) from exc
    return transformers


def image_only_processor_class(stock_name: str = "Qwen3VLProcessor") -> type:
    """A subclass of the stock processor ``stock_name`` that takes no video processor (so needs no torchvision).

    The subclass is named ``<stock>ImageOnly`` and registered with ``AutoProcessor`` so that a folder saved
    by it also loads through ``AutoProcessor``; it saves itself under the stock name, so the folders it
    writes stay standard checkpoints.
    """
    if stock_name in _CLASSES:
        return _CLASSES[stock_name]
    if stock_name not in IMAGE_ONLY_CAPABLE:
        raise ValueError(f"no image-only variant for {stock_name!r}; known: {', '.join(IMAGE_ONLY_CAPABLE)}")
    transformers = _require_transformers()
    stock = getattr(transformers, stock_name)

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        # the stock __init__ forwards three positional parts; the mixin keeps as many as our signature names
        stock.__init__(self, image_processor, tokenizer, None, chat_template=chat_template, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        out = stock.to_dict(self)
        out["processor_class"] = stock_name
        return out

    def save_pretrained(self, save_directory, *args, **kwargs):
        files = stock.save_pretrained(self, save_directory, *args, **kwargs)
        _rename_processor_class(Path(save_directory), stock_name)
        return files

    cls = type(
        f"{stock_name}ImageOnly",
        (stock,),
        {
            "__init__": __init__,
            "to_dict": to_dict,
            "save_pretrained": save_pretrained,
            "__module__": __name__,
            "__doc__": f"{stock_name} for images and text only: no video processor, no torchvision.",
        },
    )
    _CLASSES[stock_name] = cls
    _register(cls, stock_name)
    return cls


_CONFIGS = {
    "Qwen3VLProcessor": "Qwen3VLConfig",
    "Qwen2_5_VLProcessor": "Qwen2_5_VLConfig",
    "Qwen2VLProcessor": "Qwen2VLConfig",
}


def _register(cls: type, stock_name: str) -> None:
    """Let ``AutoProcessor`` resolve the subclass by its name (a folder saved with that name then loads)."""
    transformers = _require_transformers()
    transformers.AutoProcessor.register(getattr(transformers, _CONFIGS[stock_name]), cls, exist_ok=True)


def _rename_processor_class(folder: Path, name: str) -> None:
    for fname in ("processor_config.json", "tokenizer_config.json", "preprocessor_config.json"):
        path = folder / fname
        if not path.is_file():
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        if "processor_class" in data and data["processor_class"] != name:
            data["processor_class"] = name
            path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _saved_processor_names(path: Path) -> list[str]:
    names = []
    for fname in ("processor_config.json", "preprocessor_config.json", "tokenizer_config.json"):
        f = path / fname
        if f.is_file():
            try:
                name = json.loads(f.read_text(encoding="utf-8")).get("processor_class")
            except (OSError, ValueError):
                continue
            if isinstance(name, str):
                names.append(name)
    return names


def _wants_torchvision(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "torchvision" in text or "video processor" in text or "video_preprocessor" in text


def load_processor(path: str | Path, trust_remote_code: bool = False, **kwargs: Any) -> Any:
    """``AutoProcessor.from_pretrained(path)``, or its image-only variant when torchvision is missing."""
    _require_transformers()
    from transformers import AutoProcessor

    path = Path(path)
    names = _saved_processor_names(path)
    for name in names:  # a folder saved under a subclass name resolves once the subclass is registered
        if name.endswith("ImageOnly") and name.removesuffix("ImageOnly") in IMAGE_ONLY_CAPABLE:
            image_only_processor_class(name.removesuffix("ImageOnly"))
    try:
        return AutoProcessor.from_pretrained(str(path), trust_remote_code=trust_remote_code, **kwargs)
    except (ImportError, OSError, ValueError) as exc:
        stock_name = names[0].removesuffix("ImageOnly") if names else None
        if not _wants_torchvision(exc) or stock_name not in IMAGE_ONLY_CAPABLE:
            raise
        reason = "torchvision is not installed" if "torchvision" in str(exc).lower() else "no video processor config"
        logger.warning(
            "stock %s could not load from %s (%s); loading it without a video processor (images and text only)",
            stock_name,
            path,
            reason,
        )
        return image_only_processor_class(stock_name).from_pretrained(str(path), **kwargs)
