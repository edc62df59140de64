"""run_stage: skips what is done, batches the rest, counts failures, and resumes after a crash."""

import json
from collections import Counter

import pytest

from rationalrewards.stage import StageSummary, run_stage
from rationalrewards.store import JsonlStore


class _Crash(BaseException):
    """Not an Exception: like KeyboardInterrupt, nothing on the way may swallow it."""


class Recorder:
    """A process function that remembers every batch it was given (and can crash on one)."""

    def __init__(self, crash_on_batch: int | None = None, fail=lambda item: None):
        self.batches: list[list] = []
        self.crash_on_batch = crash_on_batch
        self.fail = fail
        self.completed: Counter = Counter()

    def __call__(self, batch):
        self.batches.append(list(batch))
        if self.crash_on_batch is not None and len(self.batches) == self.crash_on_batch:
            raise _Crash("killed mid-run")
        out = []
        for item in batch:
            rec = {"value": item["n"] * 10, "error": self.fail(item)}
            out.append(rec)
        self.completed.update(item["n"] for item in batch)
        return out

    @property
    def seen(self) -> list:
        return [item["n"] for batch in self.batches for item in batch]


def _items(n: int) -> list[dict]:
    return [{"n": i} for i in range(n)]


def _key(item) -> str:
    return f"item-{item['n']}"


def test_processes_everything_in_batches(tmp_path):
    rec = Recorder()
    summary = run_stage("demo", _items(10), _key, rec, tmp_path / "o.jsonl", batch_size=4, progress=False)
    assert [len(b) for b in rec.batches] == [4, 4, 2]
    assert rec.seen == list(range(10))
    assert (summary.total, summary.skipped, summary.processed, summary.failed) == (10, 0, 10, 0)
    records = JsonlStore(tmp_path / "o.jsonl").records()
    assert records == {f"item-{i}": {"id": f"item-{i}", "value": 10 * i, "error": None} for i in range(10)}


def test_id_comes_from_key_and_is_first(tmp_path):
    def process(batch):
        return [{"value": 1, "id": "ignored"} for _ in batch]

    run_stage("ids", _items(3), _key, process, tmp_path / "o.jsonl", progress=False)
    lines = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [r["id"] for r in lines] == ["item-0", "item-1", "item-2"]
    assert all(list(r)[0] == "id" for r in lines)


def test_skips_done_ids(tmp_path):
    out = tmp_path / "o.jsonl"
    store = JsonlStore(out)
    store.append_many([{"id": "item-1", "value": -1}, {"id": "item-4", "value": -1}])
    rec = Recorder()
    summary = run_stage("skip", _items(6), _key, rec, store, batch_size=2, progress=False)
    assert rec.seen == [0, 2, 3, 5]
    assert [len(b) for b in rec.batches] == [2, 2]  # batches are formed from what is left to do
    assert (summary.total, summary.skipped, summary.processed) == (6, 2, 4)
    recs = JsonlStore(out).records()
    assert recs["item-1"]["value"] == -1  # done records are left alone
    assert recs["item-5"]["value"] == 50


def test_rerun_processes_nothing(tmp_path):
    out = tmp_path / "o.jsonl"
    run_stage("once", _items(5), _key, Recorder(), out, progress=False)
    rec = Recorder()
    summary = run_stage("twice", _items(5), _key, rec, out, progress=False)
    assert rec.batches == [] and summary.skipped == 5 and summary.processed == 0
    assert len(out.read_text().splitlines()) == 5


def test_duplicate_ids_within_input_processed_once(tmp_path):
    items = [{"n": 1}, {"n": 2}, {"n": 1}, {"n": 3}, {"n": 2}]
    rec = Recorder()
    summary = run_stage("dups", items, _key, rec, tmp_path / "o.jsonl", batch_size=10, progress=False)
    assert rec.seen == [1, 2, 3]
    assert (summary.total, summary.skipped, summary.processed) == (5, 2, 3)


def test_accepts_a_generator(tmp_path):
    rec = Recorder()
    summary = run_stage("gen", (x for x in _items(3)), _key, rec, tmp_path / "o.jsonl", progress=False)
    assert rec.seen == [0, 1, 2] and summary.total == 3


def test_failures_counted_by_reason(tmp_path):
    def fail(item):
        return {0: "parse", 3: "parse", 4: "timeout"}.get(item["n"])

    rec = Recorder(fail=fail)
    summary = run_stage("f", _items(6), _key, rec, tmp_path / "o.jsonl", batch_size=4, progress=False)
    assert summary.failures == Counter({"parse": 2, "timeout": 1})
    assert summary.failed == 3 and summary.processed == 6
    # failed records are kept (and counted as done): nothing is lost
    assert len(JsonlStore(tmp_path / "o.jsonl")) == 6


def test_custom_failure_reason(tmp_path):
    def process(batch):
        return [{"reward": None if item["n"] % 2 else 0.5} for item in batch]

    summary = run_stage(
        "c",
        _items(5),
        _key,
        process,
        tmp_path / "o.jsonl",
        progress=False,
        failure_reason=lambda r: "no reward" if r["reward"] is None else None,
    )
    assert summary.failures == Counter({"no reward": 2})


def test_summary_lines():
    s = StageSummary(name="critique", total=10, skipped=3, processed=7)
    s.failures.update({"timeout": 1, "parse": 2})
    lines = s.lines()
    head = lines[0]
    for part in ("critique", "10 items", "3 already done", "7 processed", "3 failed"):
        assert part in head
    assert lines[1:] == ["  failed (parse): 2", "  failed (timeout): 1"]  # most common first
    assert StageSummary(name="x").lines() == ["x: 0 items, 0 already done, 0 processed, 0 failed"]


@pytest.mark.parametrize("n_out", [0, 1, 3])
def test_mismatched_record_count_raises(tmp_path, n_out):
    def process(batch):
        return [{"v": 0}] * n_out

    with pytest.raises(RuntimeError, match=f"returned {n_out} records for 2 items"):
        run_stage("bad", _items(2), _key, process, tmp_path / "o.jsonl", batch_size=2, progress=False)
    assert len(JsonlStore(tmp_path / "o.jsonl")) == 0  # nothing half-written


def test_progress_bar_enabled_runs(tmp_path, capsys):
    summary = run_stage("shown-stage", _items(3), _key, Recorder(), tmp_path / "o.jsonl", progress=True)
    assert summary.processed == 3
    out = capsys.readouterr().out
    assert "shown-stage" in out and "3/3" in out


def test_resume_after_crash_matches_uninterrupted_run(tmp_path):
    items = _items(11)
    clean = tmp_path / "clean.jsonl"
    run_stage("clean", items, _key, Recorder(), clean, batch_size=3, progress=False)

    out = tmp_path / "crashed.jsonl"
    first = Recorder(crash_on_batch=3)
    with pytest.raises(_Crash):
        run_stage("crash", items, _key, first, out, batch_size=3, progress=False)
    assert first.completed == Counter(range(6))  # two batches done, the third crashed
    assert JsonlStore(out).done_ids() == {_key(i) for i in items[:6]}

    second = Recorder()
    summary = run_stage("resume", items, _key, second, out, batch_size=3, progress=False)
    assert (summary.skipped, summary.processed) == (6, 5)
    assert second.seen == list(range(6, 11))
    # every item completed exactly once over both runs
    assert first.completed + second.completed == Counter(range(11))
    assert JsonlStore(out).records() == JsonlStore(clean).records()
    assert len(out.read_text().splitlines()) == 11  # no record written twice
