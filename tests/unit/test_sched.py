"""``paas.sched.background_priority``: deploys and builds yield the CPU to the apps."""

from __future__ import annotations

import os
import threading

from paas.sched import BACKGROUND_NICE, background_priority


def _mine() -> tuple[int, int]:
    tid = threading.get_native_id()
    return os.sched_getscheduler(tid), os.getpriority(os.PRIO_PROCESS, tid)


def test_the_body_runs_batch_and_nice_and_the_thread_gets_its_priority_back() -> None:
    before = _mine()
    with background_priority():
        assert _mine() == (os.SCHED_BATCH, max(before[1], BACKGROUND_NICE))
        # a process started from here (git, runc, iptables) inherits it
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.write(w, f"{os.sched_getscheduler(0)} {os.getpriority(os.PRIO_PROCESS, 0)}".encode())
            os._exit(0)
        os.close(w)
        assert os.read(r, 64).decode() == f"{os.SCHED_BATCH} {max(before[1], BACKGROUND_NICE)}"
        os.close(r)
        os.waitpid(pid, 0)
    assert _mine() == before


def test_other_threads_keep_their_priority() -> None:
    seen: list[tuple[int, int]] = []
    inside, done = threading.Event(), threading.Event()

    def other() -> None:
        inside.wait(5)
        seen.append(_mine())
        done.set()

    t = threading.Thread(target=other)
    t.start()
    before = _mine()
    with background_priority():
        inside.set()
        done.wait(5)
    t.join(5)
    assert seen == [before]


def test_priority_comes_back_after_an_error() -> None:
    before = _mine()
    try:
        with background_priority():
            raise RuntimeError("deploy failed")
    except RuntimeError:
        assert _mine() == before
    else:
        raise AssertionError("the error was swallowed")
