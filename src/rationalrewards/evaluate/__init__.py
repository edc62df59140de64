"""Evaluation harness: preference-prediction accuracy on public benchmarks, with CIs, diagnostics and reports.

``run_eval(bench, data, model, out_dir)`` evaluates into a resumable run folder;
``rescore(run_dir)`` recomputes metrics from stored outputs; ``report(runs)``
compares finished runs. Benchmarks are described in ``benchmarks``, scoring rules in
``protocols``.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "run_eval": "rationalrewards.evaluate.runner",
    "rescore": "rationalrewards.evaluate.runner",
    "EvalResult": "rationalrewards.evaluate.runner",
    "compare_runs": "rationalrewards.evaluate.report",
    "write_run_report": "rationalrewards.evaluate.report",
    "load_benchmark": "rationalrewards.evaluate.benchmarks",
    "BENCHMARKS": "rationalrewards.evaluate.benchmarks",
    "PROTOCOLS": "rationalrewards.evaluate.protocols",
    "VIEWS": "rationalrewards.evaluate.protocols",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rationalrewards.evaluate' has no attribute {name!r}")
