"""Run a long job as a resumable stage: skip done ids, process in batches, append records, report."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .store import JsonlStore

T = TypeVar("T")


@dataclass
class StageSummary:
    """Counts at the end of a stage; ``failures`` maps a reason to how often it happened."""

    name: str
    total: int = 0
    skipped: int = 0
    processed: int = 0
    failures: Counter = field(default_factory=Counter)

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    def lines(self) -> list[str]:
        out = [
            f"{self.name}: {self.total} items, {self.skipped} already done, "
            f"{self.processed} processed, {self.failed} failed"
        ]
        for reason, n in self.failures.most_common():
            out.append(f"  failed ({reason}): {n}")
        return out


def run_stage(
    name: str,
    items: Iterable[T],
    key: Callable[[T], str],
    process: Callable[[Sequence[T]], Sequence[dict[str, Any]]],
    out: str | Path | JsonlStore,
    batch_size: int = 8,
    progress: bool = True,
    failure_reason: Callable[[dict[str, Any]], str | None] = lambda rec: rec.get("error"),
) -> StageSummary:
    """Process ``items`` not yet in ``out`` in batches of ``batch_size``.

    ``process`` returns one record per item (its ``id`` is set here from ``key``);
    each is appended as soon as its batch is done. ``failure_reason`` names why a
    record counts as a failure (None when it did not fail).
    """
    store = out if isinstance(out, JsonlStore) else JsonlStore(out)
    items = list(items)
    summary = StageSummary(name=name, total=len(items))
    todo = []
    seen: set[str] = set()
    for item in items:
        k = key(item)
        if k in store or k in seen:
            summary.skipped += 1
        else:
            seen.add(k)
            todo.append((k, item))

    bar = _progress(progress)
    with bar:
        task = bar.add_task(name, total=len(todo))
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            records = process([it for _, it in chunk])
            if len(records) != len(chunk):
                raise RuntimeError(f"{name}: process returned {len(records)} records for {len(chunk)} items")
            records = [
                {"id": k, **{f: v for f, v in rec.items() if f != "id"}}
                for (k, _), rec in zip(chunk, records, strict=True)
            ]
            store.append_many(records)
            for rec in records:
                summary.processed += 1
                reason = failure_reason(rec)
                if reason:
                    summary.failures[reason] += 1
            bar.advance(task, len(chunk))
    return summary


def _progress(enabled: bool):
    from rich.progress import ProgressColumn
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task):  # noqa: ANN001 - rich's signature
            return Text(f"{task.speed:.2f} it/s" if task.speed else "- it/s")

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
        transient=False,
    )
