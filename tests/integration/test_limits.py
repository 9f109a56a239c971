"""Default limits on real runc and cgroups (issue 12, item 4): the attacks as written.

- a fork bomb-ish loop of 5,000 ``sleep`` processes stops at the default pids limit;
- a container without a memory limit allocating past the instance's (test-configured,
  small) parent cap is OOM-killed while paasd, its keeper and nginx survive, and
  other containers keep running; none of the platform's processes can be picked
  first by the OOM killer, none of the containers' processes inherits that;
- ``dd`` of more than a container's size limit into its writable layer gets "No space
  left on device" inside, and the host's free space drops by at most about the limit.

One instance for the module (``PAAS_CONTAINERS_MEMORY`` small, so the parent cap is
reached quickly); each test removes the containers it made.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Engine

CAP = 256 << 20  # the containers' parent cgroup cap for this module


@pytest.fixture(scope="module")
def limited(instance_tools: Any, rootfs_tar: Path) -> Iterator[Engine]:
    paas_instance, cli_for = instance_tools
    with paas_instance() as env:
        env["PAAS_CONTAINERS_MEMORY"] = str(CAP)
        cli = cli_for(env)
        cli("image:import", str(rootfs_tar), "debian:bookworm")
        cli("daemon:start")
        yield Engine(env, cli)


# perl (in minbase) forks without a shell's retry-with-backoff on EAGAIN: each child
# execs sleep; the parent counts what it could start, then kills them all (it is pid 1)
_FORKER = r"""
my $n = 0;
for (1..5000) {
    my $pid = fork;
    if (!defined $pid) { print "fork failed: $!\n"; last }
    if ($pid == 0) { exec "sleep", "300"; exit 1 }
    $n++;
}
print "started $n\n";
kill "KILL", -1;
"""


def test_fork_bomb_stops_at_the_default_pids_limit(limited: Engine) -> None:
    res = limited("container:run", "--rm", "debian:bookworm", "perl", "-e", _FORKER,
                  timeout=300)
    assert res.returncode == 0, res.stderr
    started = int(res.stdout.split("started ")[1].split()[0])
    assert "fork failed: Resource temporarily unavailable" in res.stdout, res.stdout
    # 4096 pids: perl itself and its children (a few may still be forking when it counts)
    assert 4000 <= started <= 4095, started


def test_pids_limit_flag_and_minus_one_override_the_default(limited: Engine) -> None:
    script = "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max"
    for flags, want in (([], "4096"), (["--pids-limit", "100"], "100"),
                        (["--pids-limit", "-1"], "max")):
        res = limited("container:run", "--rm", *flags, "debian:bookworm", "sh", "-c", script)
        assert res.stdout.strip() == want, (flags, res.stdout, res.stderr)
