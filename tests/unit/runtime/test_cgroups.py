"""The parent cgroup planner: cgroup v1 (also hybrid) and v2, pure."""

from __future__ import annotations

import pytest

from paas.runtime.cgroups import (
    CgroupLayout,
    host_memory,
    layout_from_mountinfo,
    parse_limit,
    plan_parent,
)

HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
V2 = """\
22 28 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
26 21 0:24 / /sys/fs/cgroup rw,nosuid,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
"""
V1_COMBINED = "35 31 0:32 / /sys/fs/cgroup/cpu,memory rw - cgroup cgroup rw,cpu,memory\n"


def test_layouts() -> None:
    assert layout_from_mountinfo(HYBRID) == CgroupLayout(1, "/sys/fs/cgroup/memory")
    assert layout_from_mountinfo(V2) == CgroupLayout(2, "/sys/fs/cgroup")
    assert layout_from_mountinfo(V1_COMBINED) == CgroupLayout(1, "/sys/fs/cgroup/cpu,memory")
    assert layout_from_mountinfo("22 28 0:21 / /proc rw - proc proc rw\n") is None


def test_plan_v1_writes_the_limit_of_the_parent() -> None:
    plan = plan_parent(CgroupLayout(1, "/sys/fs/cgroup/memory"), "paas-x", 1 << 30)
    assert plan.directory == "/sys/fs/cgroup/memory/paas-x"
    assert plan.enable == ()
    assert plan.writes == (("/sys/fs/cgroup/memory/paas-x/memory.limit_in_bytes",
                            "1073741824"),)
    unlimited = plan_parent(CgroupLayout(1, "/sys/fs/cgroup/memory"), "paas-x", None)
    assert unlimited.writes[0][1] == "-1"


def test_plan_v2_enables_the_controllers_then_writes_memory_max() -> None:
    plan = plan_parent(CgroupLayout(2, "/sys/fs/cgroup"), "paas-x", 1 << 30)
    assert plan.enable == (("/sys/fs/cgroup/cgroup.subtree_control", "+memory +pids"),)
    assert plan.directory == "/sys/fs/cgroup/paas-x"
    assert plan.writes == (("/sys/fs/cgroup/paas-x/memory.max", "1073741824"),)
    assert plan_parent(CgroupLayout(2, "/sys/fs/cgroup"), "paas-x", None).writes[0][1] == "max"


@pytest.mark.parametrize("text,want", [("max\n", None), ("9223372036854771712\n", None),
                                       ("1073741824\n", 1 << 30)])
def test_parse_limit(text: str, want: int | None) -> None:
    assert parse_limit(text) == want


def test_host_memory() -> None:
    assert host_memory("MemTotal:       24683664 kB\nMemFree: 1 kB\n") == 24683664 * 1024
    with pytest.raises(ValueError):
        host_memory("MemFree: 1 kB\n")
