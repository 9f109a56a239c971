"""Shared fixtures: a throwaway paas instance, a CLI runner, a cached Debian rootfs.

- ``paas_root``: a fresh ``PAAS_ROOT`` with a unique ``PAAS_INSTANCE``, yielded as the
  environment to hand to subprocesses. Teardown removes everything the instance may
  have left on the host: the daemon and its keeper, runc containers, mounts, loop
  devices (containers' size-limited layers), cgroups, the directory.
  Leftovers that cannot be removed make the test error, so leaks never go unnoticed.
- ``cli``: runs ``python -m paas ...`` inside that instance.
- ``instance_tools``: the same two as plain functions (``paas_instance()``, a context
  manager, and ``cli_for(env)``) for module- or session-scoped instances.
- ``rootfs_tar``: a Debian bookworm minbase tar built once with mmdebstrap and cached
  in ``<repo>/.cache``.
- ``host_ports_taken``: 0.0.0.0:80, 443 and 8022 (and [::]) occupied for a module, as on
  a host where paas is installed and serving: every instance listens on its own free
  ports (``PAAS_HTTP_PORT``, ``PAAS_HTTPS_PORT``, ``PAAS_HTTP_GIT_PORT`` on 127.0.0.1),
  never on those.

In CI (``CI=true``) every tool is installed, so a skipped test is a failure there.
Not covered here: network objects (netns, veths, iptables chains); the stages that
create them own their cleanup.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest
from prereq import IN_CI, unavailable
from procs import free_port

REPO = Path(__file__).resolve().parent.parent

CliRunner = Callable[..., "subprocess.CompletedProcess[str]"]


# --- CI: no skips -----------------------------------------------------------------

_ci_skips: list[str] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where every tool must be present: {reason}"
    return report


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if IN_CI and report.skipped:
        _ci_skips.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _ci_skips and exitstatus == 0:
        sys.stderr.write(f"\nskipped in CI: {', '.join(_ci_skips)}\n")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_configure(config: pytest.Config) -> None:
    # pyproject.toml declares it too; this keeps `pytest -p no:cacheprovider tests/x.py`
    # from a different rootdir warning-free.
    config.addinivalue_line("markers", "integration: needs root, runc, overlayfs and cgroups")


# --- instance teardown ------------------------------------------------------------


_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")  # mountinfo writes " " as \040


def _quiet(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a cleanup command; the caller looks at the exit code."""
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def _mountinfo() -> list[tuple[str, str]]:
    """(mount point, fs type) of every mount, in mount order."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            point = _OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), fields[4])
            out.append((point, fields[sep + 1]))
    return out


def _stop_daemon(root: Path) -> list[str]:
    """The keeper first (it stops its worker and does not restart it), then a worker
    that runs without keeper."""
    return _stop_pidfile(root / "run" / "keeper.pid") + _stop_pidfile(root / "run" / "paasd.pid")


def _stop_pidfile(pidfile: Path) -> list[str]:
    try:
        pid = int(pidfile.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return []
    if b"paas" not in cmdline:  # stale pid file, pid reused by someone else
        return []
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
        return [f"{pidfile.name} (pid {pid}) ignored SIGTERM for 10s"]
    return []


def _alive(pid: int) -> bool:
    """False once the process is gone or a zombie (reaped here if it is our child)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _delete_runc_containers(runc_root: Path) -> list[str]:
    if not runc_root.is_dir() or shutil.which("runc") is None:
        return []
    problems = []
    for cid in _quiet(["runc", "--root", str(runc_root), "list", "-q"]).stdout.split():
        res = _quiet(["runc", "--root", str(runc_root), "delete", "--force", cid])
        if res.returncode != 0:
            problems.append(f"runc delete {cid}: {res.stderr.strip()}")
    return problems


def _unmount_under(root: Path) -> list[str]:
    prefix = str(root) + "/"
    points = [p for p, _ in _mountinfo() if p == str(root) or p.startswith(prefix)]
    problems = []
    # deepest first; among equals, most recently mounted first
    for _, point in sorted(
        enumerate(points), key=lambda ip: (ip[1].count("/"), ip[0]), reverse=True
    ):
        res = _quiet(["umount", "-l", point])
        if res.returncode != 0 and "not mounted" not in res.stderr:
            problems.append(f"umount {point}: {res.stderr.strip()}")
    return problems


def _remove_cgroups(instance: str) -> list[str]:
    """rmdir every cgroup named paas-<instance>, under every v1 or v2 hierarchy."""
    name = f"paas-{instance}"
    problems = []
    hierarchies = {os.path.realpath(p) for p, t in _mountinfo() if t in ("cgroup", "cgroup2")}
    for top in sorted(hierarchies):
        for dirpath, dirnames, _ in os.walk(top):
            if name not in dirnames:
                continue
            dirnames.remove(name)  # don't descend twice
            tree = [d for d, _, _ in os.walk(os.path.join(dirpath, name))]
            for cg in sorted(tree, key=lambda p: p.count("/"), reverse=True):
                problems.extend(_rmdir_cgroup(cg))
    return problems


def _rmdir_cgroup(cg: str) -> list[str]:
    for attempt in range(50):
        try:
            os.rmdir(cg)
            return []
        except FileNotFoundError:
            return []
        except OSError:
            # processes left behind by a container: they belong to this instance
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
    return [f"cgroup {cg} could not be removed"]


def _uninstall(root: Path, instance: str) -> list[str]:
    """``paas system:uninstall``: what a user runs, so teardown tests it too."""
    if not (root / "state.db").exists():
        return []
    env = dict(os.environ, PAAS_ROOT=str(root), PAAS_INSTANCE=instance)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    res = subprocess.run([sys.executable, "-m", "paas", "system:uninstall"], env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    if res.returncode != 0:
        return [f"system:uninstall exited {res.returncode}: {res.stderr.strip()}"]
    return []


def _network_leftovers(instance: str) -> list[str]:
    """The instance's bridge or iptables chains still present (removed, and reported)."""
    problems = []
    bridge = f"pb-{instance}"
    if Path("/sys/class/net", bridge).exists():
        problems.append(f"bridge {bridge} left behind")
        subprocess.run(["ip", "link", "del", bridge], capture_output=True, check=False)
    if shutil.which("iptables-save"):
        dump = subprocess.run(["iptables-save"], capture_output=True, text=True,
                              check=False).stdout
        chain = f"PAAS-{instance.upper()}"
        if f":{chain} " in dump or f":{chain}-" in dump:
            problems.append(f"iptables chains {chain}* left behind")
    if shutil.which("nft"):
        table = f"paas-{instance}"
        listed = subprocess.run(["nft", "list", "tables", "bridge"], capture_output=True,
                                text=True, check=False).stdout.split()
        if table in listed:
            problems.append(f"nftables table bridge {table} left behind")
            subprocess.run(["nft", "delete", "table", "bridge", table], capture_output=True,
                           check=False)
    return problems


def _loop_devices_under(root: Path) -> list[str]:
    """Loop devices backed by a file under ``root`` (containers' size-limited layers)."""
    prefix = f"{root}/"
    found = []
    for f in Path("/sys/block").glob("loop*/loop/backing_file"):
        try:
            backing = f.read_text().strip()
        except OSError:
            continue  # detached meanwhile
        if backing.startswith(prefix):
            found.append(f"/dev/{f.parent.parent.name} ({backing})")
    return found


def _loop_leftovers(root: Path) -> list[str]:
    """Loop devices of the instance still attached once its mounts are gone (autoclear
    frees them at the last unmount, a moment later): reported, and detached."""
    deadline = time.monotonic() + 5
    while (left := _loop_devices_under(root)) and time.monotonic() < deadline:
        time.sleep(0.05)
    for entry in left:
        _quiet(["losetup", "-d", entry.split()[0]])
    return [f"loop device {entry} left behind" for entry in left]


def cleanup_instance(root: Path, instance: str) -> list[str]:
    """Remove everything of one instance from the host; return what could not be."""
    problems = _uninstall(root, instance)
    problems += _network_leftovers(instance)
    problems += _stop_daemon(root)
    problems += _delete_runc_containers(root / "run" / "runc")
    problems += _unmount_under(root)
    problems += _remove_cgroups(instance)
    leftover = _unmount_under(root)  # anything a dying process mounted meanwhile
    problems += leftover
    problems += _loop_leftovers(root)
    if not leftover:
        shutil.rmtree(root, ignore_errors=True)
    if root.exists():
        problems.append(f"{root} could not be removed")
    return problems


# --- fixtures ---------------------------------------------------------------------


@contextlib.contextmanager
def paas_instance(root: Path | None = None) -> Iterator[dict[str, str]]:
    """A fresh, unique paas instance as the environment for its subprocesses.

    The root lives directly in the temp dir (not pytest's deep tmp_path) so socket
    paths under it stay well below the 108-byte AF_UNIX limit; ``root``: an empty
    directory to use instead (e.g. a small filesystem's mount point), emptied and
    unmounted at the end.
    """
    instance = "t" + secrets.token_hex(3)
    root = root or Path(tempfile.mkdtemp(prefix=f"paas-{instance}-"))
    root.chmod(0o755)  # mkdtemp's 0700 would lock out containers' mapped uids
    env = dict(os.environ)
    env.update(PAAS_ROOT=str(root), PAAS_INSTANCE=instance)
    # not the host's /etc/paas/paas.conf (install.sh's: the real ssh user's key file...):
    # a file of the instance's own, absent unless a test writes it
    env["PAAS_CONFIG"] = str(root / "paas.conf")
    env.update(subid_files(Path(f"{root}.subid")))
    # its own listeners, never an installed paas's 0.0.0.0:80 (nginx) and :8022 (git)
    env.update(PAAS_HTTP_ADDR="127.0.0.1", PAAS_HTTP_PORT=str(free_port()),
               PAAS_HTTPS_PORT=str(free_port()), PAAS_HTTP_GIT_PORT=str(free_port()))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    try:
        yield env
    finally:
        shutil.rmtree(f"{root}.subid", ignore_errors=True)
        problems = cleanup_instance(root, instance)
        if problems:
            pytest.fail("instance teardown left things behind:\n  " + "\n  ".join(problems))


TEST_SUBIDS = "root:1000000:65536000\n"  # 1,000 apps' id ranges, above the default range


def subid_files(d: Path, text: str = TEST_SUBIDS) -> dict[str, str]:
    """An instance's own subuid/subgid files (the pool of apps' id ranges) in ``d``: tests
    never read or edit the host's /etc/subuid."""
    d.mkdir(mode=0o700, exist_ok=True)
    for name in ("subuid", "subgid"):
        (d / name).write_text(text)
    return {"PAAS_SUBUID_FILE": str(d / "subuid"), "PAAS_SUBGID_FILE": str(d / "subgid")}


def cli_for(env: dict[str, str]) -> CliRunner:
    """``run(*args, check=True, input=None, timeout=120)``: ``paas`` in the instance ``env``."""

    def run(
        *args: str, check: bool = True, input: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        _check_own_ports(env)
        res = subprocess.run(
            [sys.executable, "-m", "paas", *args],
            env=env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and res.returncode != 0:
            pytest.fail(
                f"paas {' '.join(args)} exited {res.returncode}\n"
                f"--- stdout\n{res.stdout}--- stderr\n{res.stderr}"
            )
        return res

    return run


HOST_PORTS = (80, 443, 8022)  # what an installed paas (nginx, git over HTTP) listens on


def _check_own_ports(env: dict[str, str]) -> None:
    """A test instance must not take the host's ports (``./install.sh`` then ``./test.sh``
    on one host: issue 12, 9)."""
    for key in ("PAAS_HTTP_PORT", "PAAS_HTTPS_PORT", "PAAS_HTTP_GIT_PORT"):
        value = env.get(key, "")
        if not value.isdigit() or int(value) in HOST_PORTS:
            pytest.fail(f"{key}={value!r}: a test instance needs its own free port "
                        "(use procs.free_port()), not a port an installed paas serves")


@pytest.fixture(scope="module")
def host_ports_taken() -> Iterator[list[int]]:
    """Occupy 0.0.0.0 and [::] ports 80, 443, 8022 (bound, not listening: a stray client
    gets a reset) for a module; ports some other process holds already are left to it.
    Yields the ports held here."""
    held: list[socket.socket] = []
    ports: list[int] = []
    for port in HOST_PORTS:
        for family, addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
            try:
                s = socket.socket(family, socket.SOCK_STREAM)
            except OSError:  # no IPv6 on this host
                continue
            try:
                if family == socket.AF_INET6:
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                s.bind((addr, port))
            except OSError:
                s.close()  # in use already: the condition this simulates
                continue
            held.append(s)
            ports.append(port)
    try:
        yield sorted(set(ports))
    finally:
        for s in held:
            s.close()


@pytest.fixture
def paas_root() -> Iterator[dict[str, str]]:
    """Environment of a fresh instance for this test (see ``paas_instance``)."""
    with paas_instance() as env:
        yield env


@pytest.fixture
def cli(paas_root: dict[str, str]) -> CliRunner:
    """``cli(*args, check=True, input=None, timeout=120)`` runs ``paas`` in ``paas_root``."""
    return cli_for(paas_root)


@pytest.fixture(scope="session")
def instance_tools() -> tuple[
    Callable[[], contextlib.AbstractContextManager[dict[str, str]]],
    Callable[[dict[str, str]], CliRunner],
]:
    """``(paas_instance, cli_for)`` for fixtures of a wider scope, e.g. one instance
    shared by a module::

        @pytest.fixture(scope="module")
        def engine(instance_tools, rootfs_tar):
            paas_instance, cli_for = instance_tools
            with paas_instance() as env:
                cli = cli_for(env)
                cli("image:import", str(rootfs_tar), "debian:bookworm")
                yield cli
    """
    return paas_instance, cli_for


@pytest.fixture(scope="session")
def rootfs_tar() -> Path:
    """A Debian bookworm minbase rootfs tar, built once per checkout (~30s, ~170 MB)."""
    return _debian_tar("bookworm-minbase.tar", ())


@pytest.fixture(scope="session")
def stack_tar() -> Path:
    """The buildpack stack's rootfs (minbase + python3, venv, pip, gunicorn, nginx-light...),
    built once per checkout (~30s, ~260 MB); the packages and the wheelhouse hook are
    paas's own (``image:bootstrap --stack`` builds the same)."""
    from paas.build.buildpacks import STACK_PACKAGES
    from paas.build.stackwheels import customize_hooks, stack_key

    return _debian_tar(f"stack-bookworm-{stack_key(STACK_PACKAGES)}.tar", STACK_PACKAGES,
                       tuple(customize_hooks()))


def _debian_tar(name: str, includes: tuple[str, ...], hooks: tuple[str, ...] = ()) -> Path:
    path = REPO / ".cache" / name
    if path.exists():
        return path
    if shutil.which("mmdebstrap") is None:
        unavailable("mmdebstrap is not installed (run ./install.sh)")
    path.parent.mkdir(exist_ok=True)
    with open(path.parent / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another session may be building it
        if not path.exists():
            tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.tar")
            extra = [f"--include={','.join(includes)}"] if includes else []
            res = _quiet(["mmdebstrap", "--variant=minbase", "--format=tar", *extra, *hooks,
                          "bookworm", str(tmp)])
            if res.returncode != 0:
                tmp.unlink(missing_ok=True)
                pytest.fail(f"mmdebstrap failed:\n{res.stderr}")
            os.replace(tmp, path)
    return path
