"""Snapshotter's per-ChainID lock files: pruning deletes those of chains without a
snapshot (one per build piled up before: bench/soak saw one file per deploy), never one
somebody holds, and a waiter whose file was deleted locks the new one.

No subprocesses, no mounts, no root: the unit tier.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from paas.image.snapshot import Snapshotter
from paas.state import connect

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64


def _snapshotter(tmp_path: Path) -> Snapshotter:
    return Snapshotter(str(tmp_path / "snapshots"), connect(str(tmp_path / "state.db")))


def _locks(tmp_path: Path, key: str = "host") -> set[str]:
    d = tmp_path / "snapshots" / key / "locks"
    return {"sha256:" + n for n in os.listdir(d)} if d.is_dir() else set()


def _snapshot(s: Snapshotter, chain: str) -> int:
    with s.lock("host", chain):
        return s.commit(s.staging("host"), "host", chain, None, 0)


def test_prune_drops_the_locks_of_removed_chains_and_keeps_the_others(tmp_path: Path) -> None:
    s = _snapshotter(tmp_path)
    _snapshot(s, A)
    _snapshot(s, B)
    assert _locks(tmp_path) == {A, B}
    assert s.remove_unneeded(lambda: {A}) == 1
    assert _locks(tmp_path) == {A}
    assert s.lookup("host", A) is not None


def test_prune_drops_locks_of_chains_never_unpacked(tmp_path: Path) -> None:
    s = _snapshotter(tmp_path)
    with s.lock("host", B):  # e.g. a build step's chain, never mounted
        pass
    s.remove_unneeded(lambda: set())
    assert _locks(tmp_path) == set()


def test_prune_keeps_a_held_lock(tmp_path: Path) -> None:
    s = _snapshotter(tmp_path)
    with s.lock("host", A):  # being unpacked: no row yet
        s.remove_unneeded(lambda: set())
        assert _locks(tmp_path) == {A}


def test_a_waiter_whose_lock_file_was_deleted_locks_the_new_one(tmp_path: Path) -> None:
    s = _snapshotter(tmp_path)
    path = tmp_path / "snapshots" / "host" / "locks" / A.split(":")[1]
    waiter_has_it = threading.Event()
    release_waiter = threading.Event()

    def waiter() -> None:
        with s.lock("host", A):
            waiter_has_it.set()
            release_waiter.wait(10)

    with s.lock("host", A):
        t = threading.Thread(target=waiter)
        t.start()
        time.sleep(0.2)  # the waiter is blocked on the file we hold
        assert not waiter_has_it.is_set()
        os.unlink(path)  # what pruning does while holding the lock
    assert waiter_has_it.wait(10)
    assert path.exists()  # the waiter made and locked a new file
    # a third locker must wait for the waiter: it holds the file now at the path
    third = threading.Event()

    def third_locker() -> None:
        with s.lock("host", A):
            third.set()

    t3 = threading.Thread(target=third_locker)
    t3.start()
    assert not third.wait(0.3)
    release_waiter.set()
    t.join(10)
    assert third.wait(10)
    t3.join(10)
