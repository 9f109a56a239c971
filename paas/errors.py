"""The one error hierarchy of paas.

Every failure a user can cause or fix is a ``PaasError`` carrying a one-line
message (what is wrong) and a hint (what to do). Only the CLI prints them and
turns them into exit codes (see ``EXIT_CODES``); library code raises, never
prints-and-continues.
"""

from __future__ import annotations

__all__ = [
    "ERROR_KINDS",
    "AlreadyExists",
    "CommandFailed",
    "Conflict",
    "FailedPrecondition",
    "InvalidArgument",
    "NotFound",
    "PaasError",
    "exit_code_for",
    "from_environment",
]


class PaasError(Exception):
    """Base class: ``message`` says what is wrong, ``hint`` what to do about it."""


    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message

    def render(self) -> str:
        """One line for stderr: ``message (hint)``."""
        return f"{self.message} ({self.hint})" if self.hint else self.message


class NotFound(PaasError):
    """The object (image, container, ...) does not exist."""


class AlreadyExists(PaasError):
    """The name or object is taken."""


class InvalidArgument(PaasError):
    """The input is malformed: a flag, name, size or request body."""


class Conflict(PaasError):
    """The object is in a state that forbids the operation (e.g. rm of a running container)."""


class FailedPrecondition(PaasError):
    """The host or instance is not ready (missing tool, daemon down, bad kernel feature)."""


class CommandFailed(PaasError):
    """An external command (runc, mmdebstrap, mount...) exited non-zero."""

    def __init__(self, message: str, hint: str = "", *, returncode: int = 1, stderr: str = "") -> None:
        super().__init__(message, hint)
        self.returncode = returncode
        self.stderr = stderr


def from_environment(err: BaseException) -> PaasError | None:
    """The one-line error for what the host refused outside paas's own checks (a full
    disk, a read-only or vanished filesystem, a permission only root has); None for
    anything else (a bug: let its traceback be seen)."""
    import errno
    import os

    if isinstance(err, PermissionError):
        what = err.strerror or "permission denied"
        where = f": {err.filename}" if err.filename else ""
        if os.geteuid() != 0:  # PAAS_ROOT, paasd's socket, the keys: all root's
            return FailedPrecondition(f"paas must run as root: {what}{where}",
                                      "run it as root, e.g. with sudo")
        return FailedPrecondition(f"{what}{where}",
                                  "check the path's mode, owner and attributes (lsattr)")

    # sqlite3's errors are matched by name: importing sqlite3 here would slow every command
    full = type(err).__module__ == "sqlite3" and "disk is full" in str(err)
    if full or (isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT)):
        where = f" writing {err.filename}" if isinstance(err, OSError) and err.filename else ""
        return FailedPrecondition(
            f"no space left on device{where}",
            "free disk space under PAAS_ROOT ('paas system:df', 'paas system:prune'), "
            "then try again; nothing was changed")
    if isinstance(err, OSError) and err.errno in (errno.EROFS, errno.EIO):
        return FailedPrecondition(f"the filesystem refused a write: {err.strerror}"
                                  + (f" ({err.filename})" if err.filename else ""),
                                  "check the disk under PAAS_ROOT (dmesg), then try again")
    return None


# kind (class name) -> class, for paasd's client to rebuild an error sent over the API
ERROR_KINDS: dict[str, type[PaasError]] = {
    cls.__name__: cls
    for cls in (PaasError, NotFound, InvalidArgument, AlreadyExists, Conflict,
                FailedPrecondition, CommandFailed)
}


EXIT_CODES: dict[type[PaasError], int] = {
    InvalidArgument: 2,
    NotFound: 3,
    AlreadyExists: 4,
    Conflict: 4,
    FailedPrecondition: 5,
    CommandFailed: 6,
}


def exit_code_for(err: PaasError) -> int:
    """The documented exit code for an error (1 for anything uncategorised)."""
    for cls in type(err).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return 1
