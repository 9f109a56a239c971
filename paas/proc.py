"""The one subprocess chokepoint.

Every external program paas runs (runc, mount, mmdebstrap, iptables, nginx...)
goes through ``run`` or ``spawn`` with an argv list: never a shell string.
Values of environment variables and arguments marked secret are redacted
from logs and error messages.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # not typing's: importing typing costs ~3 ms on every CLI call
if TYPE_CHECKING:
    import subprocess
    from collections.abc import Mapping, Sequence
    from typing import IO

    _FD = int | IO[bytes] | IO[str] | None

from .errors import CommandFailed, FailedPrecondition

__all__ = ["Child", "Result", "exit_code_from_status", "redact", "run", "spawn", "spawn_light"]



def _debug(msg: str, argv: Sequence[str], secrets: Sequence[str]) -> None:
    """Log at debug level, but only where logging is in use (paasd configures it).

    Importing ``logging`` costs ~5 ms, paid on every CLI call otherwise; a process
    that never imported it has no handler that would show the message anyway."""
    logging = sys.modules.get("logging")
    if logging is not None:
        logging.getLogger(__name__).debug(msg, redact(argv, secrets))

class Result:
    """What a finished command gave. A plain class, not a dataclass or NamedTuple:
    importing ``dataclasses`` or ``typing`` costs ms, and this module is on every CLI path."""

    __slots__ = ("argv", "returncode", "stderr", "stdout")

    def __init__(self, argv: tuple[str, ...], returncode: int, stdout: str, stderr: str) -> None:
        self.argv = argv
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr

    def __repr__(self) -> str:
        return f"Result(argv={self.argv!r}, returncode={self.returncode})"


def exit_code_from_status(status: int) -> int:
    """Shell convention: the exit status, or 128 + signal number if killed by a signal."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def redact(argv: Sequence[str], secrets: Sequence[str] = ()) -> str:
    """A loggable rendering of ``argv`` with every secret value replaced."""
    out = []
    for a in argv:
        for s in secrets:
            if s:
                a = a.replace(s, "***")
        out.append(a)
    return " ".join(out)


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    input: str | bytes | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    timeout: float | None = None,
    secrets: Sequence[str] = (),
    stdin: _FD = None,
    capture: bool = True,
    what: str = "",
    umask: int = -1,
) -> Result:
    """Run ``argv`` to completion; raise ``CommandFailed`` on a non-zero exit when ``check``.

    ``what`` names the operation for the error message ("mount the rootfs"); ``umask``
    (when >= 0) is the child's, e.g. 0o077 for a daemon whose files must be root-only.
    """
    import subprocess  # here, not at the top: container:run's path never needs it (~4 ms)

    argv = [str(a) for a in argv]
    _debug("run: %s", argv, secrets)
    text_input = input.decode() if isinstance(input, bytes) else input
    try:
        cp = subprocess.run(
            argv,
            check=False,
            input=text_input,
            stdin=None if input is not None else (stdin if stdin is not None else subprocess.DEVNULL),
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE if capture else None,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            timeout=timeout,
            text=True,
            errors="replace",
            umask=umask,
        )
    except FileNotFoundError as err:
        raise FailedPrecondition(
            f"{argv[0]} is not installed", "run ./install.sh to install paas's system packages"
        ) from err
    except subprocess.TimeoutExpired as err:
        raise CommandFailed(
            f"{what or argv[0]} timed out after {timeout}s", returncode=-1
        ) from err
    res = Result(tuple(argv), cp.returncode, cp.stdout or "", cp.stderr or "")
    if check and cp.returncode != 0:
        tail = (res.stderr.strip() or res.stdout.strip()).splitlines()[-3:]
        detail = "; ".join(tail)
        for s in secrets:
            if s:
                detail = detail.replace(s, "***")
        raise CommandFailed(
            f"{what or os.path.basename(argv[0])} failed (exit {cp.returncode}): {detail}",
            returncode=cp.returncode,
            stderr=res.stderr,
        )
    return res


def spawn(
    argv: Sequence[str],
    *,
    stdin: _FD = None,
    stdout: _FD = None,
    stderr: _FD = None,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    pass_fds: Sequence[int] = (),
    secrets: Sequence[str] = (),
    start_new_session: bool = False,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` without waiting (daemons, log pumps)."""
    import subprocess

    argv = [str(a) for a in argv]
    _debug("spawn: %s", argv, secrets)
    try:
        return subprocess.Popen(
            argv,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            pass_fds=tuple(pass_fds),
            start_new_session=start_new_session,
        )
    except FileNotFoundError as err:
        raise FailedPrecondition(
            f"{argv[0]} is not installed", "run ./install.sh to install paas's system packages"
        ) from err


class Child:
    """A process started by ``spawn_light``."""

    __slots__ = ("pid", "returncode")

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def wait(self) -> int:
        """Its exit code (128 + N when killed by signal N)."""
        if self.returncode is None:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = exit_code_from_status(status)
        return self.returncode


def spawn_light(argv: Sequence[str], *, stdin: int | None = None, stdout: int | None = None,
                stderr: int | None = None) -> Child:
    """``spawn`` for ``container:run``'s hot path (runc): ``posix_spawn`` with the given
    fds as 0, 1, 2, no ``subprocess`` module. Every other fd of ours is close-on-exec
    already (Python's default), so the child gets only these."""
    argv = [str(a) for a in argv]
    _debug("spawn: %s", argv, ())
    actions = [(os.POSIX_SPAWN_DUP2, fd, target)
               for target, fd in ((0, stdin), (1, stdout), (2, stderr))
               if fd is not None and fd != target]
    try:
        return Child(os.posix_spawnp(argv[0], argv, os.environ, file_actions=actions))
    except FileNotFoundError as err:
        raise FailedPrecondition(
            f"{argv[0]} is not installed", "run ./install.sh to install paas's system packages"
        ) from err
