"""The embedded default model: a tiny Qwen3-VL trained by PARROT in the synthetic world, shipped in the package.

``load_backend("embedded")`` (and the ``critique`` / ``compare`` / demo defaults) load the folder
``rationalrewards/models/embedded/`` through the same ``TransformersBackend`` as any real checkpoint.
It judges images of the synthetic world only; see ``MODEL_CARD.md`` in that folder. The weights are
reproduced from a seed by ``scripts/build_embedded_model.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: the shipped checkpoint folder
EMBEDDED_DIR = Path(__file__).resolve().parent / "embedded"
BUILD_SCRIPT = "scripts/build_embedded_model.py"

#: what the shipped folder must hold to load
REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


def embedded_path() -> Path:
    """The shipped checkpoint folder (it may be empty in a source checkout that has not built it)."""
    return EMBEDDED_DIR


def check_folder(folder: str | Path | None = None) -> Path:
    """``folder`` (default: the shipped one) if it holds a checkpoint; else a FileNotFoundError naming the build."""
    path = Path(folder) if folder is not None else EMBEDDED_DIR
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"the embedded model is not installed: {path} lacks {', '.join(missing)}. Build it with "
            f"`python {BUILD_SCRIPT} --install` from a source checkout (about 40 CPU minutes), or use another "
            "model: transformers:PATH, openai:URL, synthetic-teacher"
        )
    return path


def load_embedded(folder: str | Path | None = None, **kwargs: Any) -> Any:
    """A ``TransformersBackend`` on the embedded model (CPU and float32 unless ``device`` / ``dtype`` say otherwise).

    Keyword arguments go to ``TransformersBackend`` (``device``, ``dtype``, ``batch_size``, ...).
    """
    from ..backends.transformers_local import TransformersBackend

    path = check_folder(folder)
    kwargs.setdefault("device", "cpu")
    backend = TransformersBackend(path, **kwargs)
    backend.name = "embedded"
    return backend


def from_spec(rest: str = "", **kwargs: Any) -> Any:
    """``embedded`` -> the shipped model's ``TransformersBackend``; keyword arguments go to ``TransformersBackend``."""
    if rest.strip():
        raise ValueError(
            f"the embedded backend takes no argument (got 'embedded:{rest}'); for another folder use transformers:PATH"
        )
    return load_embedded(**kwargs)
