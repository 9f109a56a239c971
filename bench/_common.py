"""Shared pieces of the benchmark scripts in ``bench/`` (standard library only).

Covers: running commands, the statistics the tables show (median, nearest-rank p90),
the cached rootfs tar, paas invoked as a command in a throwaway instance, a private
dockerd (own data root, exec root, socket, cgroup parent; never the system one), and
the host cleanup and checks every script does at the end (mounts, cgroups, runc
state, iptables, sysctls, links, processes naming the temp dir).

Also the deploy benches' instance (``DeployInstance``): paas with its own nginx on a
free port, paasd, ``git:http-serve`` (gunicorn) with a token, the buildpack stack image
imported from the cached stack tar, and a sample WSGI app pushed with the real ``git``.

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
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "REPO",
    "ROOTFS_CACHE",
    "WRK_LUA",
    "BenchError",
    "DeployInstance",
    "H2Hammer",
    "H2Load",
    "PrivateDockerd",
    "Result",
    "SampleApp",
    "bench_processes",
    "check_host",
    "conntrack_stats",
    "delete_runc_containers",
    "diff_lines",
    "ensure_rootfs",
    "ensure_stack_tar",
    "firewall_snapshot",
    "free_port",
    "free_subnet_24",
    "h2load",
    "link_names",
    "paas_command",
    "parse_h2load",
    "percentile",
    "processes_with_env",
    "quiet",
    "remove_cgroups",
    "run",
    "run_h2load",
    "stop_pid",
    "sysctl_snapshot",
    "timed_push",
    "unmount_under",
    "wait_conntrack",
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


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank ``q``-th percentile (0 for no samples)."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))]


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
    ``<repo>/.venv/bin/paas`` if install.sh wrote it, else ``python -m paas``; the
    instance gets its own pool of apps' id ranges (``<root>.subid/sub[ug]id``, the host's
    /etc/subuid is never read)."""
    env = dict(os.environ, PAAS_ROOT=str(root), PAAS_INSTANCE=instance)
    subid = Path(f"{root}.subid")
    subid.mkdir(mode=0o700, exist_ok=True)
    for name in ("subuid", "subgid"):
        (subid / name).write_text("root:1000000:65536000\n")
        env[f"PAAS_{name.upper()}_FILE"] = str(subid / name)
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


# --- deploy benches: an instance with nginx, paasd, git over HTTP and a sample app ------

STACK_IMAGE = "paas/stack:bookworm"
BUILDPACKS_PY = REPO / "paas" / "build" / "buildpacks.py"

SAMPLE_WSGI = '''\
"""The deploy benches' sample app: a stdlib WSGI app (gunicorn runs it)."""

VERSION = "{version}"


def application(environ, start_response):
    body = ("version " + VERSION + "\\n").encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
'''


# wrk's Lua script of the load benches: counts every status and prints one summary line
# ("BENCH requests=... connect=... read=... sNNN=count ...") the scripts parse.
WRK_LUA = r"""
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
end

function response(status, headers, body)
  local k = tostring(status)
  statuses[k] = (statuses[k] or 0) + 1
end

function done(summary, latency, requests)
  local agg = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    if s then
      for k, v in pairs(s) do agg[k] = (agg[k] or 0) + v end
    end
  end
  local e = summary.errors
  io.write("BENCH requests=", summary.requests, " duration_us=", summary.duration,
           " connect=", e.connect, " read=", e.read, " write=", e.write,
           " timeout=", e.timeout, " errstatus=", e.status,
           " p50=", latency:percentile(50), " p90=", latency:percentile(90),
           " p99=", latency:percentile(99), " max=", latency.max)
  for k, v in pairs(agg) do io.write(" s", k, "=", v) end
  io.write("\n")
end
"""


# --- h2load (HTTPS load with an SNI of our choosing) ---------------------------------


@dataclass
class H2Load:
    """One h2load run's counts (or several added up)."""

    requests: int = 0
    seconds: float = 0.0
    failed: int = 0
    statuses: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def __add__(self, other: H2Load) -> H2Load:
        return H2Load(self.requests + other.requests, self.seconds + other.seconds,
                    self.failed + other.failed,
                    {k: self.statuses.get(k, 0) + other.statuses.get(k, 0)
                     for k in {*self.statuses, *other.statuses}})


def parse_h2load(out: str) -> H2Load:
    """h2load's summary: "finished in 3.00s, ...", "requests: N total, ... N succeeded,
    N failed, N errored, N timeout", "status codes: N 2xx, N 3xx, N 4xx, N 5xx"."""
    fin = re.search(r"^finished in ([0-9.]+)(m?s),", out, re.MULTILINE)
    req = re.search(r"^requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, "
                    r"(\d+) failed, (\d+) errored, (\d+) timeout", out, re.MULTILINE)
    codes = re.search(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out,
                      re.MULTILINE)
    if fin is None or req is None or codes is None:
        raise BenchError(f"h2load printed no summary:\n{out[-1500:]}")
    seconds = float(fin.group(1)) / (1000 if fin.group(2) == "ms" else 1)
    total, done, ok, failed, errored, timeout = (int(g) for g in req.groups())
    statuses = dict(zip(("2xx", "3xx", "4xx", "5xx"), (int(g) for g in codes.groups()),
                        strict=True))
    # a request not done (the run's connections failed) counts as failed too
    return H2Load(requests=ok, seconds=seconds,
                failed=failed + errored + timeout + (total - done) + statuses["5xx"],
                statuses={k: v for k, v in statuses.items() if v})


def h2load(host: str, port: int, *, requests: int, close: bool = False,
           scheme: str = "https", concurrency: int = 16) -> list[str]:
    """``requests`` HTTP/1.1 requests (over TLS unless ``scheme`` is http) to
    127.0.0.1:PORT with SNI and Host ``host`` (wrk cannot send an SNI other than the
    address it connects to); with ``close``, ``Connection: close`` (a handshake each)."""
    # -N: a connection silent for 10 s fails (h2load would otherwise wait forever)
    argv = ["h2load", "--h1", "-t1", f"-c{concurrency}", "-N", "10",
            f"--connect-to=127.0.0.1:{port}"]
    argv += ["-n", str(requests)]
    if close:
        argv += ["-H", "Connection: close"]
    return [*argv, f"{scheme}://{host}:{port}/"]


def run_h2load(argv: list[str], timeout: float = 120) -> H2Load:
    res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    return parse_h2load(res.stdout)


class H2Hammer(threading.Thread):
    """h2load runs of ``requests`` requests, one after another, until ``stop``: keep-alive
    connections (each run's 16 last for all its requests) or, with ``close``, a new TLS
    connection per request. (h2load's ``-D`` mode can hang when nginx closes a connection,
    so background load is made of ``-n`` runs.)"""

    def __init__(self, host: str, port: int, requests: int, *, close: bool = False,
                 scheme: str = "https") -> None:
        super().__init__(daemon=True)
        self.argv = h2load(host, port, requests=requests, close=close, scheme=scheme)
        self.total = H2Load()
        self.error = ""
        self.done = threading.Event()

    def run(self) -> None:
        try:
            while not self.done.is_set():
                self.total = self.total + run_h2load(self.argv)
        except (BenchError, subprocess.TimeoutExpired) as err:
            self.error = str(err)

    def stop(self) -> H2Load:
        self.done.set()
        self.join(180)
        if self.error or self.is_alive():
            raise BenchError(f"the load generator failed: {self.error or 'it hangs'}")
        return self.total


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stack_packages() -> tuple[str, ...]:
    """``paas.build.buildpacks.STACK_PACKAGES``, read from the source (no paas import)."""
    import ast

    tree = ast.parse(BUILDPACKS_PY.read_text())
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id == "STACK_PACKAGES"):
            return tuple(ast.literal_eval(node.value))
    raise BenchError(f"no STACK_PACKAGES in {BUILDPACKS_PY}")


def _stackwheels() -> Any:
    """``paas/build/stackwheels.py`` (standard library only), loaded from its file."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "paas_stackwheels", REPO / "paas" / "build" / "stackwheels.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ensure_stack_tar() -> Path:
    """``<repo>/.cache/stack-bookworm-<key>.tar``, the buildpack stack's rootfs the tests
    use too (tests/conftest.py ``stack_tar``: the same packages and wheelhouse hook),
    built with mmdebstrap when missing."""
    packages = stack_packages()
    wheels = _stackwheels()
    path = REPO / ".cache" / f"stack-bookworm-{wheels.stack_key(packages)}.tar"
    if path.exists():
        return path
    if shutil.which("mmdebstrap") is None:
        raise BenchError(f"{path} is missing and mmdebstrap is not installed (run ./install.sh)")
    print(f"-----> Building {path.name} with mmdebstrap (once, ~1 min)", flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f"{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the test suite may be building it too
        if not path.exists():
            tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.tar")
            try:
                run(["mmdebstrap", "--variant=minbase", "--format=tar",
                     f"--include={','.join(packages)}", *wheels.customize_hooks(sys.executable),
                     "bookworm", str(tmp)], timeout=1800)
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
    return path


def processes_with_env(name: str, value: str) -> list[tuple[int, str]]:
    """(pid, cmdline) of every process whose environment has ``name=value`` (paasd, its
    keeper and gunicorn name no path on their command line, but inherit PAAS_ROOT)."""
    needle = f"{name}={value}".encode()
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if needle in environ and cmdline:
            out.append((int(entry.name), cmdline.replace(b"\0", b" ").decode(errors="replace")))
    return out


def _alive(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _kill_group(proc: subprocess.Popen[bytes], what: str, grace: float = 10) -> None:
    """SIGTERM a child started with ``start_new_session`` and its group, SIGKILL after
    ``grace`` s."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            print(f" !     {what} (pid {proc.pid}) ignored SIGTERM for {grace:.0f}s, killing it",
                  file=sys.stderr)
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # whatever of the group is left
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass


class SampleApp:
    """The sample buildpack app (``wsgi.py`` with ``application``, an empty
    ``requirements.txt``) in a git work tree; ``commit(version)`` changes one line."""

    def __init__(self, path: Path, home: Path) -> None:
        self.path = path
        self.env = dict(os.environ, HOME=str(home), GIT_TERMINAL_PROMPT="0",
                        GIT_CONFIG_NOSYSTEM="1", GIT_AUTHOR_NAME="bench",
                        GIT_AUTHOR_EMAIL="bench@localhost", GIT_COMMITTER_NAME="bench",
                        GIT_COMMITTER_EMAIL="bench@localhost")
        self.env.pop("GIT_DIR", None)
        self.env.pop("GIT_WORK_TREE", None)

    def git(self, *args: str, timeout: float = 600) -> str:
        return run(["git", "-C", str(self.path), *args], env=self.env, timeout=timeout)

    def init(self, version: str) -> None:
        self.path.mkdir(parents=True)
        (self.path / "requirements.txt").write_text("")
        self.git("init", "-q", "-b", "main")
        self.commit(version)

    def commit(self, version: str) -> None:
        (self.path / "wsgi.py").write_text(SAMPLE_WSGI.format(version=version))
        self.git("add", "-A")
        self.git("commit", "-q", "-m", f"version {version}")

    def push(self, url: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """``git push URL main`` (not checked: the caller reports a rejected push)."""
        return subprocess.run(["git", "-C", str(self.path), "push", "--porcelain", url,
                               "main"], env=self.env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout, check=False)


def timed_push(app: SampleApp, url: str, log: Path, t0: float | None = None,
               timeout: float = 600) -> tuple[int, list[tuple[float, str]]]:
    """``git push --progress URL main`` with the arrival time of every output line (s
    since ``t0``, default: the fork), written to ``log``; (exit status, lines)."""
    start = time.monotonic() if t0 is None else t0
    proc = subprocess.Popen(["git", "-C", str(app.path), "push", "--progress", url, "main"],
                            env=app.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    lines: list[tuple[float, str]] = []
    buf = b""
    deadline = time.monotonic() + timeout
    while chunk := os.read(proc.stdout.fileno(), 65536):
        now = time.monotonic() - start
        buf += chunk
        *done, buf = re.split(rb"[\r\n]", buf)
        lines += [(now, ln.decode(errors="replace")) for ln in done if ln.strip()]
        if time.monotonic() > deadline:
            proc.kill()
    if buf.strip():
        lines.append((time.monotonic() - start, buf.decode(errors="replace")))
    rc = proc.wait()
    log.write_text("".join(f"{t:8.3f} {line}\n" for t, line in lines))
    return rc, lines


def conntrack_stats() -> dict[str, int]:
    """The host's connection tracking: ``count``, ``max`` and the summed per-CPU
    ``drop`` (table full) and ``early_drop`` counters; {} without nf_conntrack."""
    out: dict[str, int] = {}
    try:
        out["count"] = int(Path("/proc/sys/net/netfilter/nf_conntrack_count").read_text())
        out["max"] = int(Path("/proc/sys/net/netfilter/nf_conntrack_max").read_text())
        rows = Path("/proc/net/stat/nf_conntrack").read_text().split("\n")
    except (OSError, ValueError):
        return out
    names = rows[0].split()
    for row in rows[1:]:
        for name, value in zip(names, row.split()):
            if name in ("drop", "early_drop", "insert_failed"):
                out[name] = out.get(name, 0) + int(value, 16)
    return out


def wait_conntrack(limit: float = 0.25, timeout: float = 150) -> None:
    """Wait until the host's conntrack table is at most ``limit`` full: every proxied
    request is a new connection to the container (gunicorn's sync workers close it)
    whose entry stays 120 s in TIME_WAIT, so a load run fills much of the table and the
    next would start with a table about to drop packets."""
    ct = conntrack_stats()
    if not ct.get("max") or ct["count"] <= limit * ct["max"]:
        return
    print(f"-----> Waiting for the host's conntrack table to drain ({ct['count']} of "
          f"{ct['max']} entries)", flush=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and ct["count"] > limit * ct["max"]:
        time.sleep(2)
        ct = conntrack_stats()


class DeployInstance:
    """A throwaway paas instance for deploys: ``PAAS_ROOT`` under ``tmp``, its own
    ``PAAS_INSTANCE``, nginx on a free port of 127.0.0.1 (``PAAS_HTTP_PORT``), paasd,
    ``paas git:http-serve`` on another free port with a token of ``auth:add``, and the
    stack image imported. ``cleanup`` removes all of it and returns what was left."""

    def __init__(self, tmp: Path, prefix: str) -> None:
        self.tmp = tmp
        self.root = tmp / "paas"
        self.instance = prefix + secrets.token_hex(3)
        self.argv, self.env = paas_command(self.root, self.instance)
        self.http_port = free_port()
        self.git_port = free_port()
        while self.git_port == self.http_port:
            self.git_port = free_port()
        self.https_port = free_port()
        self.env.update(PAAS_HTTP_PORT=str(self.http_port), PAAS_HTTP_ADDR="127.0.0.1",
                        PAAS_HTTPS_PORT=str(self.https_port))
        self.env.pop("PAAS_HTTP_GIT_PORT", None)
        self.token = ""
        self.gunicorn: subprocess.Popen[bytes] | None = None
        self.bugs: list[str] = []  # what cleanup had to do that system:uninstall should have

    def paas(self, *args: str, timeout: float = 600) -> str:
        return run([*self.argv, *args], env=self.env, timeout=timeout)

    def setup(self, stack_tar: Path) -> None:
        self.paas("image:import", str(stack_tar), STACK_IMAGE)
        self.paas("daemon:start", timeout=60)
        self.paas("nginx:start", timeout=60)
        self.token = self.paas("auth:add", "bench").strip().splitlines()[-1]
        log = open(self.tmp / "git-http.log", "wb")  # noqa: SIM115 (the child keeps it)
        with log:
            self.gunicorn = subprocess.Popen(
                [*self.argv, "git:http-serve", "--bind", f"127.0.0.1:{self.git_port}"],
                env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.gunicorn.poll() is not None:
                raise BenchError(f"paas git:http-serve exited {self.gunicorn.returncode}, "
                                 f"see {self.tmp / 'git-http.log'}")
            try:
                socket.create_connection(("127.0.0.1", self.git_port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise BenchError(f"paas git:http-serve did not listen on {self.git_port} within 30s")

    def push_url(self, app: str) -> str:
        return f"http://bench:{self.token}@127.0.0.1:{self.git_port}/{app}.git"

    def nginx_pids(self) -> list[int]:
        """The instance's nginx master and its workers (from its pid file)."""
        try:
            master = int((self.root / "nginx" / "nginx.pid").read_text().strip())
        except (OSError, ValueError):
            return []
        if not _alive(master):
            return []
        pids = [master]
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rpartition(")")[2].split()
                except OSError:
                    continue
                if int(fields[1]) == master:
                    pids.append(int(entry.name))
        return pids

    def cleanup(self) -> list[str]:
        """Stop gunicorn, ``system:uninstall --purge --yes`` (PAAS_ROOT = the temp root,
        never without), stop what it left (recorded in ``bugs``), delete the temp dir;
        returns what is still on the host."""
        if self.gunicorn is not None:
            _kill_group(self.gunicorn, "paas git:http-serve")
        for pid, cmdline in processes_with_env("PAAS_ROOT", str(self.root)):
            if "gunicorn" in cmdline:  # a worker that left the group (it does not, normally)
                stop_pid(pid, "gunicorn", grace=10)
        nginx_before = self.nginx_pids()
        # the environment names the temp instance: never uninstall without PAAS_ROOT
        assert self.env.get("PAAS_ROOT") == str(self.root), "PAAS_ROOT must name the temp root"
        assert self.env.get("PAAS_INSTANCE") == self.instance
        if (self.root / "state.db").exists():
            res = quiet([*self.argv, "system:uninstall", "--purge", "--yes"], env=self.env)
            if res.returncode != 0:
                self.bugs.append(f"paas system:uninstall --purge --yes exited {res.returncode}: "
                                 f"{(res.stderr or res.stdout).strip()[-500:]}")
            elif self.root.exists():
                files = sum(len(f) for _, _, f in os.walk(self.root))
                self.bugs.append(f"system:uninstall --purge left {self.root} ({files} files)")
        nginx_left = [p for p in nginx_before if _alive(p)]
        if nginx_left:
            self.bugs.append(f"system:uninstall left the instance's nginx running "
                             f"(pids {nginx_left}); stopped by the bench")
            try:  # the master (its config may be gone with --purge): QUIT, workers follow
                os.kill(nginx_before[0], signal.SIGQUIT)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and any(_alive(p) for p in nginx_left):
                time.sleep(0.05)
            for pid in nginx_left:
                if _alive(pid):
                    os.kill(pid, signal.SIGKILL)
        for pid, cmdline in processes_with_env("PAAS_ROOT", str(self.root)):
            self.bugs.append(f"left after system:uninstall: pid {pid} {cmdline[:80]}")
            stop_pid(pid, cmdline.split()[0] if cmdline else "?", grace=10)
        delete_runc_containers(self.root / "run" / "runc")
        unmount_under(self.tmp)
        remove_cgroups(f"paas-{self.instance}")
        if not mounts_under(self.tmp):  # never rmtree through a mount
            shutil.rmtree(self.tmp, ignore_errors=True)
        return self.leftovers(nginx_before)

    def leftovers(self, nginx_before: list[int]) -> list[str]:
        left = [f"nginx pid {p}" for p in nginx_before if _alive(p)]
        left += [f"process {pid}: {cmd[:100]}" for pid, cmd in
                 processes_with_env("PAAS_ROOT", str(self.root)) + bench_processes(self.tmp)]
        links = link_names()
        if f"pb-{self.instance}" in links:
            left.append(f"bridge pb-{self.instance}")
        left += [f"veth {n}" for n in sorted(links) if n.startswith(f"v{self.instance}")]
        left += [f"mount {m}" for m in mounts_under(self.tmp)]
        left += [f"cgroup {c}" for c in cgroups_named(f"paas-{self.instance}")]
        chain = f"PAAS-{self.instance.upper()}"
        rules = [ln for ln in firewall_snapshot() if chain in ln]
        left += [f"iptables: {ln}" for ln in rules[:5]]
        if self.tmp.exists():
            left.append(f"temp dir {self.tmp}")
        return left
