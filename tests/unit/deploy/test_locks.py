"""Deploy locks: /proc/locks parsing, the holder record (live vs stale), apps:lock rows."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from paas.deploy.locks import (
    AppLocks,
    DeployLock,
    Holder,
    ago,
    flock_holders,
    holder_text,
    lock_path,
    refuse_if_locked,
)
from paas.errors import Conflict, FailedPrecondition, NotFound
from paas.state import connect

PROC_LOCKS = """\
1: POSIX  ADVISORY  WRITE 812 00:19:1234 0 EOF
2: FLOCK  ADVISORY  WRITE 4242 08:01:99 0 EOF
2: -> FLOCK  ADVISORY  WRITE 4343 08:01:99 0 EOF
3: FLOCK  ADVISORY  WRITE 77 08:01:100 0 EOF
4: FLOCK  ADVISORY  READ 78 103:02:99 0 EOF
"""


def test_flock_holders_matches_device_and_inode_and_skips_waiters() -> None:
    assert flock_holders(PROC_LOCKS, os.makedev(8, 1), 99) == [4242]
    assert flock_holders(PROC_LOCKS, os.makedev(0x103, 2), 99) == [78]
    assert flock_holders(PROC_LOCKS, os.makedev(8, 1), 5) == []
    assert flock_holders("garbage\n\n", os.makedev(8, 1), 99) == []


def test_holder_text_and_ago() -> None:
    assert holder_text(Holder(12, "git push by a", 100.0), now=112.5) == \
        "pid 12, git push by a, for 12s"
    assert holder_text(Holder(12)) == "pid 12"
    assert ago(0, now=59) == "59s ago"
    assert ago(0, now=3 * 3600 + 5) == "3h ago"
    assert ago(0, now=2 * 86400) == "2d ago"


def test_the_holder_is_seen_while_held_and_gone_after(tmp_path: Path) -> None:
    lock = DeployLock(str(tmp_path))
    assert lock.holder("web") is None
    with lock.hold("web", what="paas ps:rebuild"):
        h = lock.holder("web")
        assert h is not None and h.pid == os.getpid() and h.command == "paas ps:rebuild"
        with (pytest.raises(Conflict, match=r"another deploy of web is running \(pid "),
              lock.hold("web", wait=False)):
            pass
    assert lock.holder("web") is None
    assert Path(lock_path(str(tmp_path), "web")).read_text() == ""


def test_a_stale_record_never_blocks(tmp_path: Path) -> None:
    """A record left by a holder killed with SIGKILL (pid gone, no flock)."""
    path = Path(lock_path(str(tmp_path), "web"))
    path.parent.mkdir()
    path.write_text(json.dumps({"pid": 2**22 + 7, "start": 1, "command": "git push",
                                "since": 0.0}))
    lock = DeployLock(str(tmp_path))
    assert lock.holder("web") is None
    seen: list[str] = []
    with lock.hold("web", wait=False, progress=seen.append):
        assert json.loads(path.read_text())["pid"] == os.getpid()
    assert seen == []


def test_app_locks(tmp_path: Path) -> None:
    conn = connect(str(tmp_path / "state.db"))
    conn.execute("INSERT INTO apps (name, created) VALUES ('web', 0)")
    locks = AppLocks(conn)
    refuse_if_locked(conn, "web")
    locks.lock("web", "alice", "release freeze")
    with pytest.raises(Conflict):
        locks.lock("web", "bob")
    with pytest.raises(NotFound):
        locks.lock("nope", "bob")
    with pytest.raises(FailedPrecondition, match=r"web is locked: deploys are refused "
                                                 r"\(apps:lock by alice, \d+s ago\)") as err:
        refuse_if_locked(conn, "web")
    assert "paas apps:unlock web" in err.value.hint
    conn.execute("UPDATE apps SET name = 'web2' WHERE name = 'web'")
    assert locks.get("web2") is not None  # renamed with the app
    assert locks.unlock("web2") and not locks.unlock("web2")
    refuse_if_locked(conn, "web2")
