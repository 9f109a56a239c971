"""What the host refuses (a full disk) becomes one line with a hint, not a traceback."""

from __future__ import annotations

import errno
import sqlite3

from paas.errors import FailedPrecondition, exit_code_for, from_environment


def test_a_full_disk_is_one_line_with_what_to_do() -> None:
    err = from_environment(OSError(errno.ENOSPC, "No space left on device", "/r/blobs/x"))
    assert isinstance(err, FailedPrecondition) and exit_code_for(err) == 5
    assert err.message == "no space left on device writing /r/blobs/x"
    assert "system:prune" in err.hint
    full_db = from_environment(sqlite3.OperationalError("database or disk is full"))
    assert full_db is not None and full_db.message == "no space left on device"
    assert from_environment(OSError(errno.EROFS, "Read-only file system")) is not None


def test_anything_else_is_left_alone() -> None:
    assert from_environment(OSError(errno.ENOENT, "No such file or directory", "x")) is None
    assert from_environment(ValueError("a bug")) is None
    assert from_environment(sqlite3.OperationalError("no such table: apps")) is None


def test_a_permission_error_of_a_non_root_user_says_paas_must_run_as_root(monkeypatch) -> None:
    import os

    denied = PermissionError(errno.EACCES, "Permission denied", "/var/lib/paas/state.db")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    err = from_environment(denied)
    assert isinstance(err, FailedPrecondition) and exit_code_for(err) == 5
    assert err.render() == ("paas must run as root: Permission denied: /var/lib/paas/state.db "
                            "(run it as root, e.g. with sudo)")
    monkeypatch.setattr(os, "geteuid", lambda: 0)  # root refused (an immutable file...)
    err = from_environment(denied)
    assert err is not None and not err.message.startswith("paas must run as root")
    assert "/var/lib/paas/state.db" in err.message
