"""Shared test set-up: no hub access anywhere in the suite."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# one torch thread: on small CPUs two threads make the tiny models small ops several times slower
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_vlm_path(tmp_path_factory):
    """A tiny seeded Qwen3-VL checkpoint folder (seed 0), built once per test session."""
    from rationalrewards.models.tiny import build_tiny_qwen3vl

    return build_tiny_qwen3vl(tmp_path_factory.mktemp("tiny-vlm") / "ckpt", seed=0)


@pytest.fixture(scope="session")
def tiny_backend(tiny_vlm_path):
    """A CPU ``TransformersBackend`` on ``tiny_vlm_path`` (shared by the session: do not close it)."""
    from rationalrewards.backends.transformers_local import TransformersBackend

    return TransformersBackend(tiny_vlm_path, device="cpu", batch_size=8)
