"""Pure helpers of paasd: pid lock, subreaper flag, exit-code and runc-error parsing."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from paas.daemon.process import PidLock, is_child_subreaper, read_pidfile, set_child_subreaper
from paas.daemon.supervisor import exit_code_from_status, runc_error
from paas.errors import AlreadyExists


def test_pid_lock_excludes_a_second_holder(tmp_path: Path) -> None:
    path = str(tmp_path / "paasd.pid")
    first = PidLock(path)
    first.acquire()
    assert read_pidfile(path) == os.getpid()
    with pytest.raises(AlreadyExists, match=f"already running \\(pid {os.getpid()}\\)"):
        PidLock(path).acquire()
    first.release()
    assert not os.path.exists(path)
    second = PidLock(path)
    second.acquire()  # free again after release
    second.release()


def test_stale_pid_file_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "paasd.pid"
    path.write_text("999999\n")  # a crashed daemon's file, nobody holds the lock
    lock = PidLock(str(path))
    lock.acquire()
    assert read_pidfile(str(path)) == os.getpid()
    lock.release()


def test_read_pidfile_tolerates_garbage(tmp_path: Path) -> None:
    (tmp_path / "p").write_text("nope")
    assert read_pidfile(str(tmp_path / "p")) is None
    assert read_pidfile(str(tmp_path / "missing")) is None


def test_subreaper_flag_round_trip() -> None:
    before = is_child_subreaper()
    try:
        set_child_subreaper(True)
        assert is_child_subreaper()
        set_child_subreaper(False)
        assert not is_child_subreaper()
    finally:
        set_child_subreaper(before)


@pytest.mark.parametrize(("status", "code"), [
    (0, 0),
    (3 << 8, 3),
    (255 << 8, 255),
    (signal.SIGKILL, 137),
    (signal.SIGTERM, 143),
])
def test_exit_code_from_status(status: int, code: int) -> None:
    assert exit_code_from_status(status) == code


def test_runc_error_prefers_last_msg() -> None:
    text = ('time="t" level=warning msg="cgroup thing"\n'
            'time="t" level=error msg="runc run failed: exec: \\"/x\\": not found"\n')
    assert runc_error(text) == 'runc run failed: exec: "/x": not found'
    assert runc_error("plain failure\nlast line\n\n") == "last line"
    assert runc_error("") == "no error output"
