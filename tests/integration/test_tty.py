"""``container:run -it`` gives a real terminal: a pty inside, window size, job control,
and the exit status passed back. Driven through a pseudo-terminal, as a person's shell would."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import sys
import termios
import time

import pytest


@pytest.fixture(scope="module")
def tty_engine(instance_tools, rootfs_tar):
    paas_instance, cli_for = instance_tools
    with paas_instance() as env:
        cli_for(env)("image:import", str(rootfs_tar), "debian:bookworm")
        cli_for(env)("daemon:start")
        yield env


def _read_until(fd: int, needle: bytes, timeout: float = 20.0) -> bytes:
    buf = b""
    deadline = time.monotonic() + timeout
    while needle not in buf and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
    return buf


@pytest.mark.parametrize("init", [[], ["--init"]], ids=["pid1", "tini"])
def test_interactive_shell_with_window_size_job_control_and_exit_status(tty_engine,
                                                                        init) -> None:
    """Also under tini (``--init``, as ``paas run -it APP bash`` is): it hands the terminal
    to the shell's process group, so job control and the exit status are the shell's."""
    pid, fd = pty.fork()
    if pid == 0:  # child: the user's terminal runs paas
        os.execvpe(sys.executable, [sys.executable, "-m", "paas", "container:run", "-it", "--rm",
                                    *init, "debian:bookworm", "bash", "--norc", "-i"], tty_engine)
    reaped = False
    try:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
        assert b"#" in _read_until(fd, b"#")  # root's prompt
        os.write(fd, b"tty; stty size; sleep 30 & jobs; kill %1; echo done-$((6*7))\n")
        out = _read_until(fd, b"done-42")
        assert b"/dev/pts/" in out
        assert b"33 101" in out  # the window size reached the container's terminal
        assert b"[1]" in out and b"sleep 30" in out  # job control works
        os.write(fd, b"exit 7\n")
        _read_until(fd, b"exit")
        _, status = os.waitpid(pid, 0)
        reaped = True
        assert os.WEXITSTATUS(status) == 7
    finally:
        os.close(fd)
        if not reaped:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
