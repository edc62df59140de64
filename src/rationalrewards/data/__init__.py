"""Data in: Sample / PreferencePair records from files and datasets."""

from __future__ import annotations

from .samples import DataError, iter_pairs, iter_rows, iter_samples, load_pairs, load_samples

__all__ = ["DataError", "iter_pairs", "iter_rows", "iter_samples", "load_pairs", "load_samples"]
