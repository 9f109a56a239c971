"""LogWriter / read_logs: json-file format, partial lines, rotation, tail and follow."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path

import pytest

from paas.runtime.logs import (
    PARTIAL_LIMIT,
    LogTail,
    LogWriter,
    format_time,
    log_files,
    read_logs,
)

TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")


def records(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_format_time_is_fixed_width_rfc3339() -> None:
    assert format_time(1_700_000_000_000_000_001) == "2023-11-14T22:13:20.000000001Z"
    assert TIME_RE.match(format_time())


def test_lines_are_split_and_partial_lines_buffered(tmp_path: Path) -> None:
    path = tmp_path / "c.log"
    w = LogWriter(str(path))
    w.write("stdout", b"one\ntw")
    w.write("stderr", b"err\n")
    assert [r["log"] for r in records(path)] == ["one\n", "err\n"]
    w.write("stdout", b"o\nthree")
    w.close()
    recs = records(path)
    assert [(r["stream"], r["log"]) for r in recs] == [
        ("stdout", "one\n"), ("stderr", "err\n"), ("stdout", "two\n"), ("stdout", "three"),
    ]
    assert all(TIME_RE.match(r["time"]) for r in recs)
    assert set(recs[0]) == {"log", "stream", "time"}


def test_invalid_utf8_is_replaced_and_split_chars_survive(tmp_path: Path) -> None:
    path = tmp_path / "c.log"
    w = LogWriter(str(path))
    snow = "☃".encode()
    w.write("stdout", b"bad \xff\n" + snow[:1])
    w.write("stdout", snow[1:] + b"\n")
    w.close()
    assert [r["log"] for r in records(path)] == ["bad \ufffd\n", "☃\n"]


def test_long_partial_line_is_flushed(tmp_path: Path) -> None:
    path = tmp_path / "c.log"
    w = LogWriter(str(path))
    w.write("stdout", b"x" * (PARTIAL_LIMIT + 10))
    recs = records(path)
    assert len(recs) == 1 and recs[0]["log"] == "x" * (PARTIAL_LIMIT + 10)
    w.write("stdout", b"y\n")
    w.close()
    assert records(path)[1]["log"] == "y\n"


def test_rotation_keeps_max_files(tmp_path: Path) -> None:
    path = tmp_path / "c.log"
    w = LogWriter(str(path), max_bytes=300, max_files=3)
    for i in range(40):
        w.write("stdout", f"line {i:03d}\n".encode())
    w.close()
    files = log_files(str(path))
    assert files == [f"{path}.2", f"{path}.1", str(path)]
    assert not os.path.exists(f"{path}.3")
    assert all(os.path.getsize(f) <= 300 for f in files)
    texts = [e.text for e in read_logs(str(path))]
    # oldest files were dropped, the remainder is contiguous and ends with the last line
    assert texts[-1] == "line 039\n"
    first = int(texts[0].split()[1])
    assert first > 0
    assert texts == [f"line {i:03d}\n" for i in range(first, 40)]


def test_rotation_with_one_file_truncates(tmp_path: Path) -> None:
    path = tmp_path / "c.log"
    w = LogWriter(str(path), max_bytes=200, max_files=1)
    for i in range(20):
        w.write("stdout", f"line {i}\n".encode())
    w.close()
    assert log_files(str(path)) == [str(path)]
    assert [e.text for e in read_logs(str(path))][-1] == "line 19\n"


def test_tail_spans_rotated_files(tmp_path: Path) -> None:
    path = tmp_path / "c.log"
    w = LogWriter(str(path), max_bytes=250, max_files=5)
    for i in range(12):
        w.write("stderr" if i % 2 else "stdout", f"l{i}\n".encode())
    w.close()
    assert len(log_files(str(path))) >= 3
    got = list(read_logs(str(path), tail=7))
    assert [e.text for e in got] == [f"l{i}\n" for i in range(5, 12)]
    assert [e.stream for e in got][:2] == ["stderr", "stdout"]
    assert list(read_logs(str(path), tail=0)) == []
    assert len(list(read_logs(str(path), tail=1000))) == 12


def test_since_filters_by_time(tmp_path: Path) -> None:
    path = tmp_path / "c.log"
    w = LogWriter(str(path))
    w.write("stdout", b"old\n")
    time.sleep(0.01)
    cut = time.time()
    time.sleep(0.01)
    w.write("stdout", b"new\n")
    w.close()
    assert [e.text for e in read_logs(str(path), since=cut)] == ["new\n"]
    assert [e.text for e in read_logs(str(path), since=format_time(int(cut * 1e9)))] == ["new\n"]


def test_missing_log_reads_empty(tmp_path: Path) -> None:
    assert list(read_logs(str(tmp_path / "nope.log"), tail=3)) == []
    done = list(read_logs(str(tmp_path / "nope.log"), follow=True, stop=lambda: True))
    assert done == []


def test_torn_last_line_is_not_returned(tmp_path: Path) -> None:
    path = tmp_path / "c.log"
    path.write_text('{"log": "a\\n", "stream": "stdout", "time": "t"}\n{"log": "b')
    assert [e.text for e in read_logs(str(path))] == ["a\n"]


@pytest.mark.parametrize("tail", [None, 3])
def test_follow_across_rotation(tmp_path: Path, tail: int | None) -> None:
    path = tmp_path / "c.log"
    w = LogWriter(str(path), max_bytes=2000, max_files=3)  # ~28 lines per file
    for i in range(5):
        w.write("stdout", f"pre {i}\n".encode())
    done = threading.Event()
    n = 200

    def writer() -> None:
        for i in range(n):
            w.write("stdout", f"live {i:04d}\n".encode())
            if i % 5 == 0:  # let the reader keep up: a reader 2 files behind loses data
                time.sleep(0.005)
        w.close()
        done.set()

    got: list[str] = []
    reader_started = threading.Event()

    def reader() -> None:
        for e in read_logs(str(path), follow=True, tail=tail, stop=done.is_set,
                           poll_interval=0.001):
            reader_started.set()
            got.append(e.text)

    rt = threading.Thread(target=reader)
    rt.start()
    assert reader_started.wait(5)
    wt = threading.Thread(target=writer)
    wt.start()
    wt.join(10)
    rt.join(10)
    assert not rt.is_alive()
    pre = [t for t in got if t.startswith("pre")]
    live = [t for t in got if t.startswith("live")]
    assert pre == ([f"pre {i}\n" for i in range(5)][-3:] if tail else [f"pre {i}\n" for i in range(5)])
    # every live line exactly once, in order, even though the file rotated many times
    assert live == [f"live {i:04d}\n" for i in range(n)]
    assert len(log_files(str(path))) == 3  # it did rotate (more than once)


def test_follow_waits_for_file_to_appear(tmp_path: Path) -> None:
    path = tmp_path / "c.log"
    stop = threading.Event()
    got: list[str] = []
    t = threading.Thread(target=lambda: got.extend(
        e.text for e in read_logs(str(path), follow=True, stop=stop.is_set, poll_interval=0.005)))
    t.start()
    time.sleep(0.05)
    w = LogWriter(str(path))
    w.write("stdout", b"hello\n")
    w.close()
    time.sleep(0.05)
    stop.set()
    t.join(5)
    assert got == ["hello\n"]


def test_log_tail_reads_only_what_is_new_across_rotations(tmp_path: Path) -> None:
    path = tmp_path / "c.log"
    w = LogWriter(str(path), max_bytes=2000, max_files=3)  # ~28 lines per file
    for i in range(5):
        w.write("stdout", f"old {i}\n".encode())
    everything = LogTail(str(path), from_start=True)
    new_only = LogTail(str(path), from_start=False)
    assert [e.text for e in everything.read()] == [f"old {i}\n" for i in range(5)]
    assert new_only.read() == [] and everything.read() == []
    got: list[str] = []
    for i in range(60):  # past a rotation between two reads, not two
        w.write("stdout", f"new {i:02d}\n".encode())
        if i % 20 == 19:
            got += [e.text for e in new_only.read()]
    w.close()
    got += [e.text for e in new_only.read()]
    assert got == [f"new {i:02d}\n" for i in range(60)]
    assert len(log_files(str(path))) > 1
    missing = LogTail(str(tmp_path / "later.log"), from_start=True)
    assert missing.read() == []
    LogWriter(str(tmp_path / "later.log")).write("stderr", b"hello\n")
    assert [e.text for e in missing.read()] == ["hello\n"]
    for t in (everything, new_only, missing):
        t.close()
