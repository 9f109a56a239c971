"""paasd end to end through the CLI, and the supervisor with a fake ``runc run --detach``.

The fake runc forks the "container", which writes its pid file and output,
while the fake runc itself exits at once, like ``runc run -d``. No real runc,
no root needed for these.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from paas.config import load_context
from paas.daemon.client import DaemonClient
from paas.daemon.process import set_child_subreaper
from paas.daemon.supervisor import Supervisor
from paas.errors import CommandFailed, Conflict

REPO = Path(__file__).resolve().parents[2]

FAKE_RUNC = r'''
import os, sys, time
pid_file, mode = sys.argv[1], sys.argv[2]
if mode == "fail":
    sys.stderr.write('time="2026-01-01T00:00:00Z" level=error msg="runc run failed: bad \\"spec\\""\n')
    sys.exit(1)
r, w = os.pipe()
if os.fork() == 0:  # the container
    os.close(r)
    with open(pid_file + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(pid_file + ".tmp", pid_file)
    print("early line", flush=True)  # written while "runc" still runs
    os.write(w, b"x"); os.close(w)
    if mode == "cat":
        for line in sys.stdin:
            print("got " + line.strip(), flush=True)
        sys.exit(0)
    if mode == "sleep":
        time.sleep(3600)
    time.sleep(0.3)
    print("hello from stdout", flush=True)
    sys.stderr.write("warning on stderr\n"); sys.stderr.flush()
    sys.stdout.write("no newline at the end"); sys.stdout.flush()
    sys.exit(int(mode))
os.close(w)
os.read(r, 1)  # like runc: exit once the container has started
sys.exit(0)
'''


def cli(root: Path, *args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PAAS_ROOT=str(root))
    return subprocess.run([sys.executable, "-m", "paas", *args], env=env, cwd=REPO, check=False,
                          capture_output=True, text=True, timeout=timeout)


def running(pid: int) -> bool:
    """Alive and not a zombie (whoever reaps a detached daemon may be slow)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in "ZX"
    except FileNotFoundError:
        return False


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    r = tmp_path / "root"
    yield r
    cli(r, "daemon:stop", "--all", "--force")
    for name in ("paasd.pid", "keeper.pid"):
        pid_file = r / "run" / name
        if pid_file.exists():  # the stop failed: do not leak a daemon
            try:
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
            except (ValueError, ProcessLookupError):
                pass


def test_daemon_lifecycle_via_cli(root: Path) -> None:
    st = cli(root, "daemon:status")
    assert st.returncode == 3 and "not running" in st.stdout
    started = cli(root, "daemon:start")
    assert started.returncode == 0, started.stderr
    assert "paasd started" in started.stdout
    ctx = load_context({"PAAS_ROOT": str(root)})
    info = DaemonClient(ctx).request("GET", "/_ping")
    assert info["ok"] is True and info["root"] == str(root)
    pid = info["pid"]
    assert int(Path(ctx.paths.daemon_pidfile).read_text()) == pid
    assert os.stat(ctx.paths.daemon_socket).st_mode & 0o777 == 0o600
    assert os.getsid(pid) == pid  # own session: detached from the CLI that started it

    again = cli(root, "daemon:start")
    assert again.returncode == 0 and f"already running (pid {pid})" in again.stdout

    st = cli(root, "daemon:status", "--format", "json")
    assert st.returncode == 0
    assert json.loads(st.stdout)["pid"] == pid and json.loads(st.stdout)["running"] is True

    stopped = cli(root, "daemon:stop")
    assert stopped.returncode == 0 and f"stopped (pid {pid})" in stopped.stdout
    assert not running(pid)
    assert not os.path.exists(ctx.paths.daemon_socket)
    assert not os.path.exists(ctx.paths.daemon_pidfile)
    assert "not running" in cli(root, "daemon:stop").stdout


def test_garbage_gets_400_and_daemon_keeps_serving(root: Path) -> None:
    assert cli(root, "daemon:start").returncode == 0
    ctx = load_context({"PAAS_ROOT": str(root)})
    garbage_requests = [
        b"\xff\xfe\x00garbage\r\n\r\n",
        b"POST /shutdown HTTP/1.1\r\nContent-Length: 4\r\n\r\n{no}",
    ]
    for garbage in garbage_requests:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(ctx.paths.daemon_socket)
            s.sendall(garbage)
            reply = b""
            while chunk := s.recv(65536):  # the daemon closes after a 400
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 400 "), reply
        assert b'"message"' in reply
    assert DaemonClient(ctx).request("GET", "/_ping")["ok"] is True
    assert cli(root, "daemon:status").returncode == 0


def test_second_daemon_process_refuses_to_start(root: Path) -> None:
    assert cli(root, "daemon:start").returncode == 0
    env = dict(os.environ, PAAS_ROOT=str(root))
    p = subprocess.run([sys.executable, "-m", "paas.daemon"], env=env, cwd=REPO, check=False,
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 4 and "already running" in p.stderr
    assert cli(root, "daemon:status").returncode == 0  # the first one is untouched


def test_sigterm_stops_the_daemon_cleanly(root: Path) -> None:
    assert cli(root, "daemon:start").returncode == 0
    ctx = load_context({"PAAS_ROOT": str(root)})
    pid = DaemonClient(ctx).request("GET", "/_ping")["pid"]
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running(pid)
    assert not os.path.exists(ctx.paths.daemon_socket)
    assert not os.path.exists(ctx.paths.daemon_pidfile)
    assert "shutting down" in (root / "run" / "paasd.log").read_text()


# ---- supervisor ----------------------------------------------------------------------------


class Exits:
    def __init__(self) -> None:
        self.got: dict[str, tuple[int, int]] = {}
        self.cond = threading.Condition()

    def __call__(self, cid: str, code: int, pid: int) -> None:
        with self.cond:
            self.got[cid] = (code, pid)
            self.cond.notify_all()

    def wait(self, cid: str, timeout: float = 10) -> tuple[int, int]:
        with self.cond:
            assert self.cond.wait_for(lambda: cid in self.got, timeout), f"{cid} never exited"
            return self.got[cid]


@pytest.fixture
def sup(tmp_path: Path) -> Iterator[Supervisor]:
    set_child_subreaper(True)  # as paasd does: the "container" is re-parented to us
    s = Supervisor(start_timeout=10)
    s.start()
    try:
        yield s
    finally:
        for pid in s.supervised().values():
            if pid:
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
        s.stop()
        set_child_subreaper(False)


def fake(tmp_path: Path, mode: str) -> tuple[list[str], str]:
    script = tmp_path / "fake_runc.py"
    script.write_text(FAKE_RUNC)
    pid_file = str(tmp_path / f"{mode}.pid")
    return [sys.executable, str(script), pid_file, mode], pid_file


def entries(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_supervisor_reports_exit_code_logs_and_reaps(sup: Supervisor, tmp_path: Path) -> None:
    exits = Exits()
    argv, pid_file = fake(tmp_path, "3")
    log = tmp_path / "c1.log"
    pid = sup.launch("c1", argv, pid_file=pid_file, log_path=str(log), on_exit=exits)
    assert pid == int(Path(pid_file).read_text()) and pid != os.getpid()
    assert sup.supervised() == {"c1": pid}
    assert os.getsid(pid) != os.getsid(0)  # not in our session: a group kill spares it
    assert exits.wait("c1") == (3, pid)
    assert not Path(f"/proc/{pid}").exists()  # reaped, no zombie left
    recs = entries(log)
    assert [(r["stream"], r["log"]) for r in recs] == [
        ("stdout", "early line\n"),
        ("stdout", "hello from stdout\n"),
        ("stderr", "warning on stderr\n"),
        ("stdout", "no newline at the end"),
    ]
    assert all(r["time"].endswith("Z") and len(r["time"]) == 30 for r in recs)
    assert sup.supervised() == {}


def test_supervisor_signal_exit_is_128_plus_signal(sup: Supervisor, tmp_path: Path) -> None:
    exits = Exits()
    argv, pid_file = fake(tmp_path, "sleep")
    pid = sup.launch("c2", argv, pid_file=pid_file, log_path=str(tmp_path / "c2.log"),
                     on_exit=exits)
    with pytest.raises(Conflict):
        sup.launch("c2", argv, pid_file=pid_file, log_path=str(tmp_path / "x.log"), on_exit=exits)
    os.kill(pid, signal.SIGKILL)
    assert exits.wait("c2") == (137, pid)
    assert not Path(f"/proc/{pid}").exists()


def test_supervisor_runc_failure_raises_with_its_message(sup: Supervisor, tmp_path: Path) -> None:
    argv, pid_file = fake(tmp_path, "fail")
    log = tmp_path / "c3.log"
    with pytest.raises(CommandFailed) as ei:
        sup.launch("c3", argv, pid_file=pid_file, log_path=str(log), on_exit=Exits())
    assert ei.value.returncode == 1
    assert 'runc run failed: bad "spec"' in ei.value.message
    assert "level=error" in ei.value.stderr
    assert not log.exists()
    assert sup.supervised() == {}


def test_supervisor_stdin(sup: Supervisor, tmp_path: Path) -> None:
    exits = Exits()
    argv, pid_file = fake(tmp_path, "cat")
    log = tmp_path / "c4.log"
    sup.launch("c4", argv, pid_file=pid_file, log_path=str(log), open_stdin=True, on_exit=exits)
    sup.write_stdin("c4", b"one\ntwo\n")
    sup.close_stdin("c4")
    assert exits.wait("c4")[0] == 0
    assert [r["log"] for r in entries(log)] == ["early line\n", "got one\n", "got two\n"]


def test_supervisor_many_parallel_launches(sup: Supervisor, tmp_path: Path) -> None:
    exits = Exits()
    argv, _ = fake(tmp_path, "5")
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            pid_file = str(tmp_path / f"p{i}.pid")
            sup.launch(f"c{i}", argv[:2] + [pid_file, "5"], pid_file=pid_file,
                       log_path=str(tmp_path / f"c{i}.log"), on_exit=exits)
        except Exception as err:  # noqa: BLE001 - collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert errors == []
    for i in range(8):
        assert exits.wait(f"c{i}")[0] == 5
        assert len(entries(tmp_path / f"c{i}.log")) == 4


HOLDER = r'''
import sys
from paas.daemon.process import set_child_subreaper
from paas.daemon.supervisor import Supervisor
set_child_subreaper()
s = Supervisor(); s.start()
pid = s.launch("k1", sys.argv[1:], pid_file=sys.argv[3], log_path=sys.argv[5],
               on_exit=lambda *a: None)
print(pid, flush=True)
import time; time.sleep(3600)
'''


def test_container_survives_sigkill_of_supervisor_group(tmp_path: Path) -> None:
    argv, _ = fake(tmp_path, "sleep")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, *argv, str(tmp_path / "k1.log")],
                              cwd=REPO, stdout=subprocess.PIPE, text=True, start_new_session=True)
    container = 0
    try:
        assert holder.stdout is not None
        container = int(holder.stdout.readline())
        os.killpg(holder.pid, signal.SIGKILL)  # the daemon and everything in its group
        holder.wait(10)
        time.sleep(0.3)
        stat = Path(f"/proc/{container}/stat").read_text()
        assert stat.split(") ")[1][0] in "SR", stat  # alive, not a zombie
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        if container:
            os.kill(container, signal.SIGKILL)


# ---- supervisor with the real runc -----------------------------------------------------------


def runc_bundle(tmp_path: Path, script: str) -> tuple[str, str]:
    """A bundle whose rootfs borrows the host's /usr read-only; returns (bundle, runc root)."""
    bundle = tmp_path / "bundle"
    rootfs = bundle / "rootfs"
    for d in ("usr", "proc", "dev", "sys", "tmp"):
        (rootfs / d).mkdir(parents=True)
    for link in ("bin", "lib", "lib64", "sbin"):
        if os.path.islink(f"/{link}"):
            (rootfs / link).symlink_to(os.readlink(f"/{link}"))
    subprocess.run(["runc", "spec", "--bundle", str(bundle)], check=True)
    cfg = json.loads((bundle / "config.json").read_text())
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["sh", "-c", script]
    cfg["mounts"].append({"destination": "/usr", "type": "bind", "source": "/usr",
                          "options": ["rbind", "ro"]})
    (bundle / "config.json").write_text(json.dumps(cfg))
    return str(bundle), str(tmp_path / "runc-root")


def test_supervisor_with_real_runc(sup: Supervisor, tmp_path: Path) -> None:
    from paas.runtime.runc import Runc

    bundle, runc_root = runc_bundle(tmp_path, "echo out; echo err >&2; sleep 0.3; exit 7")
    runc = Runc("runc", runc_root)
    cid = f"paas-test-{os.getpid()}"
    pid_file = str(tmp_path / "init.pid")
    exits = Exits()
    log = tmp_path / "real.log"
    try:
        pid = sup.launch(cid, runc.run(cid, bundle, detach=True, pid_file=pid_file),
                         pid_file=pid_file, log_path=str(log), on_exit=exits)
        # exit 7 can only be known if the init was re-parented to us (subreaper) and reaped
        assert exits.wait(cid) == (7, pid)
        assert not Path(f"/proc/{pid}").exists()
        assert sorted((r["stream"], r["log"]) for r in entries(log)) == [
            ("stderr", "err\n"), ("stdout", "out\n")]
    finally:
        subprocess.run(runc.delete(cid, force=True), check=False, capture_output=True)


def test_supervisor_real_runc_failure(sup: Supervisor, tmp_path: Path) -> None:
    from paas.runtime.runc import Runc

    bundle, runc_root = runc_bundle(tmp_path, "true")
    cfg_path = Path(bundle) / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["process"]["args"] = ["/no/such/binary"]
    cfg_path.write_text(json.dumps(cfg))
    runc = Runc("runc", runc_root)
    cid = f"paas-test-fail-{os.getpid()}"
    pid_file = str(tmp_path / "init.pid")
    try:
        with pytest.raises(CommandFailed) as ei:
            sup.launch(cid, runc.run(cid, bundle, detach=True, pid_file=pid_file),
                       pid_file=pid_file, log_path=str(tmp_path / "f.log"), on_exit=Exits())
        assert "/no/such/binary" in ei.value.message
        assert "level=error" not in ei.value.message  # the msg="..." part, not the raw line
        assert sup.supervised() == {}
    finally:
        subprocess.run(runc.delete(cid, force=True), check=False, capture_output=True)


def test_cli_says_how_to_start_a_missing_daemon(root: Path) -> None:
    """No paasd: container commands that need it say so in one line, exit 5, create nothing."""
    for args, code in ((["container:run", "--rm", "debian:bookworm", "true"], 125),  # docker's
                       (["container:run", "-d", "debian:bookworm", "true"], 125),
                       (["container:start", "nosuch"], 5)):
        res = cli(root, *args)
        assert res.returncode == code, (args, res.stderr)
        assert "paasd is not running" in res.stderr and "daemon:start" in res.stderr, res.stderr
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert not (root / "containers").exists() or not os.listdir(root / "containers")
