"""build_spec's config.json run by the real runc: userns on and off, limits, seccomp.

Two rootfs trees are unpacked from the cached bookworm tar once per module: one
as plain root (for ``--userns=host``) and one shifted to host ids 100000+ (for a
user namespace). Each container runs with ``runc --root <tmp>/runc`` under the
cgroup parent ``/paas-test-<random>``; teardown deletes the containers, removes
that cgroup parent from every hierarchy and the temp directory.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from idshift import shift_ids

from paas.model import BindMount, ContainerConfig, IdMap, Resources
from paas.runtime.spec import build_spec

pytestmark = pytest.mark.integration

IDMAP = IdMap(container_id=0, host_id=100000, size=65536)
PROBE = "id; hostname; grep -i seccomp /proc/self/status; ls /dev; cat /proc/self/uid_map"


@dataclasses.dataclass
class Host:
    tmp: Path
    cgroup_parent: str
    plain: Path
    shifted: Path


def _remove_cgroup_parent(name: str) -> list[str]:
    leftovers = []
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        top = hierarchy / name.strip("/")
        if not top.is_dir():
            continue
        for dirpath, _, _ in sorted(os.walk(top), key=lambda w: w[0].count("/"), reverse=True):
            try:
                os.rmdir(dirpath)
            except OSError as err:
                leftovers.append(f"{dirpath}: {err}")
    return leftovers


@pytest.fixture(scope="module")
def host(rootfs_tar: Path) -> Iterator[Host]:
    tmp = Path(tempfile.mkdtemp(prefix="paas-spec-"))
    # mkdtemp gives 0700: the user namespace's root (host uid 100000) must be
    # able to traverse every directory above the rootfs, or runc gets EACCES.
    tmp.chmod(0o711)
    h = Host(tmp, f"/paas-test-{secrets.token_hex(4)}", tmp / "plain", tmp / "shifted")
    try:
        h.plain.mkdir()
        subprocess.run(["tar", "-x", "-f", str(rootfs_tar), "-C", str(h.plain)], check=True)
        h.shifted.mkdir()
        subprocess.run(["tar", "--numeric-owner", "-x", "-f", str(rootfs_tar),
                        "-C", str(h.shifted)], check=True)
        shift_ids(h.shifted, IDMAP.host_id)
        yield h
    finally:
        runc_root = tmp / "runc"
        if runc_root.is_dir():
            ids = subprocess.run(["runc", "--root", str(runc_root), "list", "-q"],
                                 capture_output=True, text=True, check=False).stdout.split()
            for cid in ids:
                subprocess.run(["runc", "--root", str(runc_root), "delete", "-f", cid],
                               capture_output=True, check=False)
        leftovers = _remove_cgroup_parent(h.cgroup_parent)
        shutil.rmtree(tmp, ignore_errors=True)
        assert not leftovers, leftovers


def _run(h: Host, script: str | list[str], *, userns: bool, **cfg_kw: Any
         ) -> subprocess.CompletedProcess[str]:
    """Run one container to completion; always deletes it."""
    cid = f"spec-{secrets.token_hex(4)}"
    args = tuple(script) if isinstance(script, list) else ("sh", "-c", script)
    cfg = ContainerConfig(image="debian:bookworm", image_id="sha256:" + "0" * 64, args=args,
                          **cfg_kw)
    spec = build_spec(cfg, rootfs=str(h.shifted if userns else h.plain),
                      cgroups_path=f"{h.cgroup_parent}/{cid}",
                      idmap=IDMAP if userns else None, hostname=f"h-{cid}")
    bundle = h.tmp / "bundles" / cid
    bundle.mkdir(parents=True)
    (bundle / "config.json").write_text(json.dumps(spec))
    runc = ["runc", "--root", str(h.tmp / "runc")]
    try:
        return subprocess.run(runc + ["run", "-b", str(bundle), cid], capture_output=True,
                              text=True, stdin=subprocess.DEVNULL, timeout=120,
                              check=False)
    finally:
        subprocess.run(runc + ["delete", "-f", cid], capture_output=True, check=False)
        shutil.rmtree(bundle)


def _check_probe(res: subprocess.CompletedProcess[str]) -> None:
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("uid=0(root) gid=0(root)")
    assert lines[1].startswith("h-spec-")
    assert "Seccomp:\t2" in lines
    for dev in ("null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue"):
        assert dev in lines, dev


def test_plain_root_container(host: Host) -> None:
    res = _run(host, PROBE, userns=False)
    _check_probe(res)
    assert res.stdout.split()[-3:] == ["0", "0", "4294967295"]  # no user namespace


def test_userns_container(host: Host) -> None:
    res = _run(host, PROBE + "; ls -ln /dev/null; touch /dev/null && echo devnull-ok",
               userns=True)
    _check_probe(res)
    assert "0 100000 65536" in " ".join(res.stdout.split())
    assert "devnull-ok" in res.stdout  # runc bind-mounted the host's device nodes


def test_userns_with_host_network_binds_sys(host: Host) -> None:
    res = _run(host, "mount | grep ' /sys '; echo 1 > /sys/kernel/mm/ksm/run; echo rc=$?",
               userns=True, network="host")
    assert res.returncode == 0, res.stderr
    assert "(ro," in res.stdout and "rc=" in res.stdout and "rc=0" not in res.stdout


def test_seccomp_and_caps_block_namespaces_and_mounts(host: Host) -> None:
    script = ("unshare -m true; echo unshare=$?; mount -t tmpfs t /mnt; echo mount=$?; "
              "grep CapEff /proc/self/status")
    res = _run(host, script, userns=False)
    assert "unshare=1" in res.stdout and "mount=32" in res.stdout
    assert "CapEff:\t00000000a80425fb" in res.stdout  # Docker's 14 default caps


# io_uring_setup, _enter, _register (the same numbers on every architecture)
IO_URING_PL = r'for $nr (425, 426, 427) { $b = "\0" x 120; $r = syscall($nr, 1, $b); print "$nr=$r/", $!+0, "\n" }'
IO_URING = "perl -e " + shlex.quote(IO_URING_PL)


def test_seccomp_blocks_io_uring_with_eperm(host: Host) -> None:
    """Docker's current profile (moby#46762) leaves io_uring_* out of its allowlist: EPERM."""
    for userns in (False, True):
        res = _run(host, IO_URING, userns=userns)
        assert res.returncode == 0, res.stderr
        assert res.stdout.split() == ["425=-1/1", "426=-1/1", "427=-1/1"], res.stdout
    if Path("/proc/sys/kernel/io_uring_disabled").read_text().strip() == "0":
        # the host kernel has io_uring: the EPERM above is the profile's
        host_res = subprocess.run(["sh", "-c", IO_URING], capture_output=True, text=True,
                                  check=True)
        assert not host_res.stdout.startswith("425=-1"), host_res.stdout


def test_memory_limit_oom_kills(host: Host) -> None:
    res = _run(host, ["tail", "/dev/zero"], userns=True,
               resources=Resources(memory=32 * 2**20))
    assert res.returncode == 137, res.stderr


def test_pids_limit_stops_fork_bomb(host: Host) -> None:
    res = _run(host, "cat /sys/fs/cgroup/pids/pids.max; "
                     "for i in $(seq 100); do sleep 5 & done; echo all-forked",
               userns=True, resources=Resources(pids_limit=20))
    assert res.stdout.splitlines()[0] == "20"
    assert "all-forked" not in res.stdout
    assert res.returncode != 0 and "fork" in res.stderr.lower()


def test_cpu_limits_and_readonly_bind(host: Host) -> None:
    data = host.tmp / "data"
    data.mkdir(exist_ok=True)
    script = ("cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us "
              "/sys/fs/cgroup/cpu/cpu.shares; touch /data/x; echo touch=$?")
    res = _run(host, script, userns=False, resources=Resources(cpus=0.5, cpu_shares=512),
               binds=(BindMount(str(data), "/data", readonly=True),))
    assert res.stdout.splitlines()[:3] == ["50000", "100000", "512"]
    assert "touch=1" in res.stdout and not (data / "x").exists()
