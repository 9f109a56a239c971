"""Process helpers shared by test modules that start servers (sshd, gunicorn, nginx):
a free loopback port, waiting for a listener, stopping a process group."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["free_port", "stop", "wait_port"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[Any], what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} does not listen on {port} after {timeout}s")


def stop(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM the process group we started (start_new_session), then SIGKILL."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers in the group (gunicorn workers, sshd)


@contextlib.contextmanager
def sshd_privsep_dir() -> Iterator[None]:
    """/run/sshd, sshd's privilege separation dir (systemd makes it on a real host):
    made when missing, and removed afterwards only when no other sshd still runs (a
    concurrent test session's sshd needs it too)."""
    made = not os.path.isdir("/run/sshd")
    if made:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    try:
        yield
    finally:
        if made and not _sshd_running():
            with contextlib.suppress(OSError):
                os.rmdir("/run/sshd")


def _sshd_running() -> bool:
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == "sshd":
                    return True
        except OSError:
            continue
    return False


def start_sshd(sshd: str, workdir: Path, port: int, host_key: Path,
               authorized_keys: Path) -> subprocess.Popen[bytes]:
    """Debian's sshd on 127.0.0.1:``port`` in the foreground (its log in
    ``workdir/sshd.log``), accepting only ``authorized_keys``' forced commands; returns
    once it listens."""
    (workdir / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n"
        f"PidFile {workdir / 'sshd.pid'}\nAuthorizedKeysFile {authorized_keys}\n"
        "PermitRootLogin forced-commands-only\nPubkeyAuthentication yes\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "StrictModes no\nPrintMotd no\nLogLevel VERBOSE\n")
    with open(workdir / "sshd.log", "wb") as log:
        proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(workdir / "sshd_config")],
                                stdout=log, stderr=log, start_new_session=True)
    wait_port(port, proc, "sshd")
    return proc
