"""CPU priority for paas's own background work: deploys and builds yield to the apps.

A deploy runs while the app it replaces serves on the same cores. Its thread (and
every process it starts: git, runc, iptables, build containers' runc) runs at
``nice`` 10 under ``SCHED_BATCH``, which the scheduler never lets preempt a waking
task: requests to the serving app are not delayed by the deploy's CPU bursts.
Only this thread changes: paasd's and git:http-serve's other threads keep theirs.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

__all__ = ["BACKGROUND_NICE", "background_priority"]

BACKGROUND_NICE = 10


@contextlib.contextmanager
def background_priority(nice: int = BACKGROUND_NICE) -> Iterator[None]:
    """Run the body at ``nice`` (at least: a nicer thread stays nicer) and SCHED_BATCH;
    the thread's previous policy and nice value come back afterwards."""
    tid = threading.get_native_id()
    policy = os.sched_getscheduler(tid)
    before = os.getpriority(os.PRIO_PROCESS, tid)
    os.sched_setscheduler(tid, os.SCHED_BATCH, os.sched_param(0))
    os.setpriority(os.PRIO_PROCESS, tid, max(before, nice))
    try:
        yield
    finally:
        os.sched_setscheduler(tid, policy, os.sched_param(0))
        os.setpriority(os.PRIO_PROCESS, tid, before)
