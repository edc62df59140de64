"""JsonlStore: appends survive reopening, torn tails are repaired, and a SIGKILL loses nothing written."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from rationalrewards.store import JsonlStore


def _lines(path) -> list[bytes]:
    return path.read_bytes().split(b"\n")


def test_append_and_reopen(tmp_path):
    path = tmp_path / "sub" / "out.jsonl"  # the parent folder is created
    s = JsonlStore(path)
    assert len(s) == 0 and "a" not in s
    s.append({"id": "a", "x": 1})
    s.append({"id": 7, "text": "naïve ✓"})
    assert "a" in s and 7 in s and "7" in s and len(s) == 2
    again = JsonlStore(path)
    assert again.done_ids() == {"a", "7"}
    recs = again.records()
    assert recs["a"] == {"id": "a", "x": 1}
    assert recs["7"]["text"] == "naïve ✓"
    assert path.read_bytes().endswith(b"\n")
    assert len(path.read_bytes().splitlines()) == 2


def test_missing_file_is_empty(tmp_path):
    s = JsonlStore(tmp_path / "none.jsonl")
    assert len(s) == 0 and s.records() == {} and list(s) == []
    assert not (tmp_path / "none.jsonl").exists()


def test_done_ids_is_a_copy(tmp_path):
    s = JsonlStore(tmp_path / "o.jsonl")
    s.append({"id": "a"})
    s.done_ids().add("b")
    assert "b" not in s


def test_missing_id_raises_and_writes_nothing(tmp_path):
    path = tmp_path / "o.jsonl"
    s = JsonlStore(path)
    with pytest.raises(KeyError, match="'id'"):
        s.append({"x": 1})
    with pytest.raises(KeyError):
        s.append_many([{"id": "ok"}, {"x": 2}])  # checked before anything is written
    assert not path.exists() or path.read_bytes() == b""
    assert len(s) == 0


def test_custom_key(tmp_path):
    s = JsonlStore(tmp_path / "o.jsonl", key="uid")
    s.append({"uid": "u1"})
    with pytest.raises(KeyError, match="'uid'"):
        s.append({"id": "x"})
    assert JsonlStore(tmp_path / "o.jsonl", key="uid").done_ids() == {"u1"}


def test_append_many(tmp_path):
    path = tmp_path / "o.jsonl"
    s = JsonlStore(path, durable=True)
    s.append_many([{"id": f"r{i}", "i": i} for i in range(5)])
    s.append_many([])
    assert len(s) == 5
    assert [json.loads(line)["i"] for line in path.read_bytes().splitlines()] == list(range(5))
    assert [r["i"] for r in JsonlStore(path)] == list(range(5))


def test_later_record_replaces_earlier(tmp_path):
    path = tmp_path / "o.jsonl"
    s = JsonlStore(path)
    s.append({"id": "a", "v": 1})
    s.append({"id": "b", "v": 1})
    s.append({"id": "a", "v": 2})
    assert len(s) == 2
    recs = JsonlStore(path).records()
    assert recs["a"]["v"] == 2 and recs["b"]["v"] == 1
    assert [r["id"] for r in s] == ["a", "b"]  # first-seen order, last value


def test_torn_line_without_newline_dropped(tmp_path):
    path = tmp_path / "o.jsonl"
    s = JsonlStore(path)
    s.append_many([{"id": "a"}, {"id": "b"}])
    good = path.read_bytes()
    with open(path, "ab") as f:
        f.write(b'{"id": "c", "text": "half a rec')
    s2 = JsonlStore(path)
    assert s2.done_ids() == {"a", "b"}
    assert path.read_bytes() == good  # truncated to the last good line
    s2.append({"id": "d"})  # and appends start on a fresh line
    assert JsonlStore(path).done_ids() == {"a", "b", "d"}
    assert all(json.loads(line) for line in path.read_bytes().splitlines())


def test_torn_line_that_parses_without_newline_is_still_dropped(tmp_path):
    """A line without its newline was not finished, even if the bytes so far happen to be valid JSON."""
    path = tmp_path / "o.jsonl"
    path.write_bytes(b'{"id": "a"}\n{"id": "b"}')
    assert JsonlStore(path).done_ids() == {"a"}
    assert path.read_bytes() == b'{"id": "a"}\n'


@pytest.mark.parametrize("tail", [b'{"id": "c", "x": \n', b"garbage\n", b'{"id": "c"\xff\xfe\n', b"[1, 2]\n"])
def test_invalid_last_line_dropped(tmp_path, tail):
    path = tmp_path / "o.jsonl"
    path.write_bytes(b'{"id": "a"}\n\n{"id": "b"}\n' + tail)
    s = JsonlStore(path)
    assert s.done_ids() == {"a", "b"}
    assert path.read_bytes() == b'{"id": "a"}\n\n{"id": "b"}\n'
    assert set(s.records()) == {"a", "b"}


def test_bad_line_followed_by_records_is_an_error_not_a_truncation(tmp_path):
    path = tmp_path / "o.jsonl"
    content = b'{"id": "a"}\n{"id": "b", "x\n{"id": "c"}\n'
    path.write_bytes(content)
    with pytest.raises(ValueError, match="line 2"):
        JsonlStore(path)
    assert path.read_bytes() == content  # nothing thrown away


def test_blank_lines_are_kept_and_ignored(tmp_path):
    path = tmp_path / "o.jsonl"
    path.write_bytes(b'\n{"id": "a"}\n   \n{"id": "b"}\n')
    s = JsonlStore(path)
    assert s.done_ids() == {"a", "b"} and set(s.records()) == {"a", "b"}


def test_non_json_values_are_stringified(tmp_path):
    path = tmp_path / "o.jsonl"
    s = JsonlStore(path)
    s.append({"id": "a", "p": tmp_path})
    assert JsonlStore(path).records()["a"]["p"] == str(tmp_path)


_CHILD = """
import sys
from rationalrewards.store import JsonlStore

store = JsonlStore(sys.argv[1])
i = len(store)
pad = "x" * int(sys.argv[2])
while i < int(sys.argv[3]):
    store.append({"id": f"r{i:06d}", "i": i, "pad": pad, "text": "é" * (i % 7)})
    i += 1
"""


def _wait_for_lines(path, proc, n: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= n:
            return
        if proc.poll() is not None:
            raise AssertionError(f"writer exited early with {proc.returncode}: {proc.stderr.read().decode()}")
        time.sleep(0.002)
    raise AssertionError("writer did not start writing")


def _check_file(path, pad: int) -> list[str]:
    ids = []
    for line in path.read_bytes().split(b"\n")[:-1]:
        rec = json.loads(line)
        assert rec["pad"] == "x" * pad and rec["id"] == f"r{rec['i']:06d}" and rec["text"] == "é" * (rec["i"] % 7)
        ids.append(rec["id"])
    return ids


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_loses_nothing_written(tmp_path):
    """Kill a writer at random moments, resume it each time; the file stays a clean prefix of the sequence."""
    path = tmp_path / "killed.jsonl"
    pad, cap = 30_000, 4000
    rng = random.Random(os.getpid())
    before = 0
    killed = 0
    for _round in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(path), str(pad), str(cap)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            _wait_for_lines(path, proc, before + 1)
            time.sleep(rng.uniform(0, 0.03))
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait()
            proc.stderr.close()
        killed += proc.returncode == -signal.SIGKILL
        raw = path.read_bytes()
        # whatever the kill left: all complete lines parse; at most the unterminated tail is torn
        complete = _check_file(path, pad)
        assert len(complete) >= before + 1
        store = JsonlStore(path)
        ids = _check_file(path, pad)
        assert path.read_bytes() == raw[: raw.rfind(b"\n") + 1]
        assert ids == complete == [f"r{i:06d}" for i in range(len(ids))]  # a prefix, no gaps, no repeats
        assert store.done_ids() == set(ids)
        before = len(ids)
    assert killed >= 1, "the writer finished before every kill: the test proved nothing"
