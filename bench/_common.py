"""Shared pieces of the benchmark scripts in ``bench/`` (standard library only).

Covers: running commands, the statistics the tables show (median, nearest-rank p90),
the cached rootfs tar, paas invoked as a command in a throwaway instance, a private
dockerd (own data root, exec root, socket, cgroup parent; never the system one), and
the host cleanup and checks every script does at the end (mounts, cgroups, runc
state, iptables, sysctls, links, processes naming the temp dir).

Not here: what a benchmark times and how it reports it (each script), the Docker
bridge of ``container_start`` (its own business).
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import math
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "REPO",
    "ROOTFS_CACHE",
    "BenchError",
    "PrivateDockerd",
    "Result",
    "bench_processes",
    "check_host",
    "delete_runc_containers",
    "diff_lines",
    "ensure_rootfs",
    "firewall_snapshot",
    "free_subnet_24",
    "link_names",
    "paas_command",
    "quiet",
    "remove_cgroups",
    "run",
    "stop_pid",
    "sysctl_snapshot",
    "unmount_under",
]

REPO = Path(__file__).resolve().parent.parent
ROOTFS_CACHE = REPO / ".cache" / "bookworm-minbase.tar"


class BenchError(Exception):
    """A variant could not be set up or a run failed; the message says which command."""


@dataclass
class Result:
    name: str
    samples_ms: list[float] = field(default_factory=list)
    error: str | None = None
    skipped: str | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p90(self) -> float:
        return p90(self.samples_ms)


def p90(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[math.ceil(0.9 * len(ordered)) - 1]  # nearest rank


# --- processes ----------------------------------------------------------------


def run(argv: list[str], env: dict[str, str] | None = None, timeout: float = 600) -> str:
    res = subprocess.run(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if res.returncode != 0:
        raise BenchError(f"{' '.join(argv)} exited {res.returncode}: {res.stderr.strip()[-2000:]}")
    return res.stdout


def quiet(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a cleanup or probe command whose failure is not an error."""
    return subprocess.run(
        argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False, env=env
    )


def paas_command(root: Path, instance: str) -> tuple[list[str], dict[str, str]]:
    """argv prefix and environment that run paas in the instance at ``root``:
    ``<repo>/.venv/bin/paas`` if install.sh wrote it, else ``python -m paas``."""
    env = dict(os.environ, PAAS_ROOT=str(root), PAAS_INSTANCE=instance)
    console_script = REPO / ".venv" / "bin" / "paas"
    if console_script.exists():
        return [str(console_script)], env
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return [sys.executable, "-m", "paas"], env


# --- host cleanup (mounts, cgroups) ---------------------------------------------


def _mount_points() -> list[tuple[str, str]]:
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
            out.append((point, fields[fields.index("-") + 1]))
    return out


def mounts_under(root: Path) -> list[str]:
    prefix = str(root) + "/"
    return [p for p, _ in _mount_points() if p == str(root) or p.startswith(prefix)]


def unmount_under(root: Path) -> None:
    points = mounts_under(root)
    for _, point in sorted(
        enumerate(points), key=lambda ip: (ip[1].count("/"), ip[0]), reverse=True
    ):
        quiet(["umount", "-l", point])


def remove_cgroups(name: str) -> None:
    """rmdir every cgroup called ``name`` (and its children) in every hierarchy."""
    tops = {os.path.realpath(p) for p, t in _mount_points() if t in ("cgroup", "cgroup2")}
    for top in sorted(tops):
        for dirpath, dirnames, _ in os.walk(top):
            if name in dirnames:
                dirnames.remove(name)
                tree = [d for d, _, _ in os.walk(os.path.join(dirpath, name))]
                for cg in sorted(tree, key=lambda p: p.count("/"), reverse=True):
                    _rmdir_cgroup(cg)


def cgroups_named(name: str) -> list[str]:
    """Every cgroup directory called ``name``, in any hierarchy (for the final check)."""
    tops = {os.path.realpath(p) for p, t in _mount_points() if t in ("cgroup", "cgroup2")}
    found = []
    for top in sorted(tops):
        for dirpath, dirnames, _ in os.walk(top):
            if name in dirnames:
                dirnames.remove(name)
                found.append(os.path.join(dirpath, name))
    return found


def _rmdir_cgroup(cg: str) -> None:
    for attempt in range(50):
        try:
            os.rmdir(cg)
            return
        except FileNotFoundError:
            return
        except OSError:
            try:
                pids = Path(cg, "cgroup.procs").read_text().split()
            except OSError:
                pids = []
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.02 * (attempt + 1))
    print(f" !     could not remove cgroup {cg}", file=sys.stderr)


def delete_runc_containers(state_root: Path) -> None:
    if state_root.is_dir():
        for cid in quiet(["runc", "--root", str(state_root), "list", "-q"]).stdout.split():
            quiet(["runc", "--root", str(state_root), "delete", "--force", cid])


def stop_pid(pid: int, what: str, grace: float) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:  # not our child: poll /proc instead
            if not Path(f"/proc/{pid}").exists():
                return
        time.sleep(0.05)
    print(
        f" !     {what} (pid {pid}) ignored SIGTERM for {grace:.0f}s, killing it", file=sys.stderr
    )
    os.kill(pid, signal.SIGKILL)


# --- host network state (iptables, sysctls, links) ------------------------------


def firewall_snapshot() -> list[str]:
    """``iptables-save`` and ``ip6tables-save`` without comments and counters."""
    lines = []
    for tool in ("iptables-save", "ip6tables-save"):
        if shutil.which(tool) is None:
            continue
        out = quiet([tool]).stdout
        for line in out.splitlines():
            if line.startswith("#"):
                continue
            lines.append(f"{tool.split('-')[0]}: " + re.sub(r" ?\[\d+:\d+\]", "", line))
    return lines


SYSCTLS = [
    "net/ipv4/ip_forward",
    "net/ipv4/conf/all/forwarding",
    "net/ipv4/conf/all/route_localnet",
    "net/ipv6/conf/all/forwarding",
    "net/ipv6/conf/default/forwarding",
    "net/bridge/bridge-nf-call-iptables",
    "net/bridge/bridge-nf-call-ip6tables",
    "net/bridge/bridge-nf-call-arptables",
]


def sysctl_snapshot() -> dict[str, str]:
    out = {}
    for key in SYSCTLS:
        try:
            out[key] = Path("/proc/sys", key).read_text().strip()
        except OSError:
            out[key] = "(absent)"
    return out


def diff_lines(before: list[str], after: list[str]) -> list[str]:
    removed = [f"- {line}" for line in before if line not in after]
    added = [f"+ {line}" for line in after if line not in before]
    return removed + added


def link_names() -> set[str]:
    out = quiet(["ip", "-o", "link", "show"]).stdout
    return {m.group(1) for m in re.finditer(r"^\d+: ([^:@\s]+)", out, re.MULTILINE)}


def free_subnet_24() -> ipaddress.IPv4Network:
    """A /24 in 10.213.0.0/16 that overlaps no route (any table) nor address of the host."""
    busy = []
    for argv in (["ip", "-j", "-4", "route", "show", "table", "all"], ["ip", "-j", "-4", "addr"]):
        for entry in json.loads(quiet(argv).stdout or "[]"):
            dst = entry.get("dst", "")
            if dst and dst != "default":
                try:
                    busy.append(ipaddress.IPv4Network(dst, strict=False))
                except ValueError:
                    pass
            for a in entry.get("addr_info", []):
                if a.get("family") == "inet":
                    busy.append(ipaddress.IPv4Network(f"{a['local']}/{a['prefixlen']}",
                                                      strict=False))
    thirds = list(range(256))
    secrets.SystemRandom().shuffle(thirds)
    for third in thirds:
        cand = ipaddress.IPv4Network(f"10.213.{third}.0/24")
        if not any(cand.overlaps(n) for n in busy):
            return cand
    raise BenchError("no free /24 in 10.213.0.0/16 for the Docker bridge (see `ip -4 route`)")


def bench_processes(tmp: Path) -> list[tuple[int, str]]:
    """(pid, cmdline) of every process whose command line names the temp dir."""
    out = []
    needle = str(tmp).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmdline:
            out.append((int(entry.name), cmdline.replace(b"\0", b" ").decode(errors="replace")))
    return out


def check_host(tmp: Path, bridges: list[str], links_before: set[str],
               firewall_before: list[str], sysctls_before: dict[str, str]) -> bool:
    """Warn about firewall/sysctl changes; True (and print them) if links or processes
    of this run are left (``bridges``: the names this run made)."""
    changed = diff_lines(firewall_before, firewall_snapshot())
    if changed:
        print(" !     WARNING: iptables differ from before the run (lines with PAAS-B or a "
              "Docker name are ours, others may come from concurrent sessions):",
              file=sys.stderr)
        for line in changed:
            print(f" !       {line}", file=sys.stderr)
    for key, value in sysctl_snapshot().items():
        if value != sysctls_before.get(key):
            print(f" !     WARNING: {key} changed: {sysctls_before.get(key)} -> {value}",
                  file=sys.stderr)
    left = []
    new_links = link_names() - links_before
    left += [f"link {name}" for name in sorted(new_links)
             if name in bridges or name.startswith("veth")]
    left += [f"process {pid}: {cmdline}" for pid, cmdline in bench_processes(tmp)]
    for item in left:
        print(f" !     left on the host: {item}", file=sys.stderr)
    return bool(left)


# --- rootfs -------------------------------------------------------------------


def ensure_rootfs(path: Path) -> Path:
    if path.exists():
        return path
    if shutil.which("mmdebstrap") is None:
        raise BenchError(f"{path} is missing and mmdebstrap is not installed (run ./install.sh)")
    print(f"-----> Building {path.name} with mmdebstrap (once, ~30s)")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / "bookworm-minbase.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the test suite may be building it too
        if not path.exists():
            tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.tar")
            try:
                run(["mmdebstrap", "--variant=minbase", "--format=tar", "bookworm", str(tmp)])
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
    return path


# --- a private dockerd ------------------------------------------------------------


class PrivateDockerd:
    """A dockerd with its data root, exec root, pid file and socket in ``tmp`` and its
    own cgroup parent ``cgroup``; ``start`` takes the network flags (the caller decides
    between a bridge of its own and none). ``stop`` also removes what it left."""

    def __init__(self, tmp: Path, cgroup: str, docker: str | None) -> None:
        self.tmp = tmp
        self.cgroup = cgroup
        self.docker = docker
        self.socket = f"unix://{tmp}/docker.sock"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def cli(self) -> list[str]:
        return [str(self.docker), "-H", self.socket]

    def start(self, extra_args: list[str]) -> None:
        argv = [
            "dockerd",
            "--data-root", f"{self.tmp}/docker",
            "--exec-root", f"{self.tmp}/docker-exec",
            "--pidfile", f"{self.tmp}/docker.pid",
            "-H", self.socket,
            *extra_args,
            "--cgroup-parent", f"/{self.cgroup}",
        ]  # fmt: skip
        with open(self.tmp / "dockerd.log", "wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(
                    f"dockerd exited {self.proc.returncode}, see {self.tmp}/dockerd.log"
                )
            ping = quiet([str(self.docker), "-H", self.socket, "version"])
            if ping.returncode == 0:
                return
            time.sleep(0.2)
        raise BenchError(f"dockerd did not answer within 60s, see {self.tmp}/dockerd.log")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            stop_pid(self.proc.pid, "dockerd", grace=30)
        # its containerd and shims normally exit with it; anything left naming our dirs goes
        for pid, cmdline in bench_processes(self.tmp):
            if "containerd" in cmdline or "dockerd" in cmdline:
                stop_pid(pid, cmdline.split()[0], grace=10)
        unmount_under(self.tmp / "docker")
        unmount_under(self.tmp / "docker-exec")
        remove_cgroups(self.cgroup)
