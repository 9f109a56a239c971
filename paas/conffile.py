"""The host's settings file, ``/etc/paas/paas.conf``: every ``PAAS_*`` setting, whatever
the shell that runs paas.

install.sh writes it (the ssh user, the file its keys live in, how sshd starts paas), so
``paas ssh-keys:add`` from a non-login root shell, a cron job or ``sudo`` sees the same
settings as a login shell. The entry points (the CLI's ``main``, paasd's) call
``apply(os.environ)`` first: the file's values fill in what the environment does not set
(an empty variable counts as unset), so the environment still overrides the file, and
every later reader of ``os.environ`` (``paas.config.load_context``, the settings read
where they are used) sees one merged view. ``PAAS_CONFIG`` names another file (tests);
a missing file is no settings at all.

The format is strict, and nothing of a shell: one ``PAAS_NAME=value`` per line, ``#``
comment lines and blank lines; no ``export``, no quotes (they would be part of the
value), no spaces around ``=``, each name once. A line that breaks a rule is an error
naming its line. The file configures commands that run as root, so it must belong to
root (or the caller) and not be writable by group or others.

A leaf module (only ``os`` and ``paas.errors``): it runs on every CLI call (~20 us).
"""

from __future__ import annotations

import os

from .errors import FailedPrecondition, InvalidArgument

TYPE_CHECKING = False  # not typing's: ~3 ms of CLI start
if TYPE_CHECKING:
    from collections.abc import MutableMapping

__all__ = ["DEFAULT_PATH", "ENV", "apply", "parse", "read"]

DEFAULT_PATH = "/etc/paas/paas.conf"
ENV = "PAAS_CONFIG"
_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def _bad(path: str, lineno: int, what: str, hint: str) -> InvalidArgument:
    return InvalidArgument(f"{path}, line {lineno}: {what}", hint)


def parse(text: str, path: str = DEFAULT_PATH) -> dict[str, str]:
    """The settings of a paas.conf text; InvalidArgument naming the first bad line."""
    out: dict[str, str] = {}
    usage = "write one PAAS_NAME=value per line (no quotes, no spaces around '=')"
    for lineno, line in enumerate(text.split("\n"), 1):
        line = line.removesuffix("\r")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise _bad(path, lineno, "not a NAME=value line", usage)
        if key.startswith("export "):
            raise _bad(path, lineno, "'export' is shell syntax, not paas.conf's", usage)
        if (not key.startswith("PAAS_") or len(key) <= 5 or not _NAME_CHARS.issuperset(key)
                or key[5].isdigit()):
            raise _bad(path, lineno, f"{key[:64]!r} is not a paas setting",
                       "names are PAAS_ followed by capitals, digits and '_'")
        if key == ENV:
            raise _bad(path, lineno, f"{ENV} cannot be set in the file it names",
                       f"set {ENV} in the environment")
        if value != value.strip():
            raise _bad(path, lineno, f"the value of {key} starts or ends with a space", usage)
        if value[:1] in ("'", '"'):
            raise _bad(path, lineno, f"the value of {key} is quoted",
                       "write it without quotes: they would be part of the value")
        if not value.isprintable():
            raise _bad(path, lineno, f"the value of {key} has a control character", usage)
        if key in out:
            raise _bad(path, lineno, f"{key} is set twice", "keep one line per setting")
        out[key] = value
    return out


def read(path: str = DEFAULT_PATH) -> dict[str, str]:
    """The settings in ``path``; {} when it does not exist."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY)
    except FileNotFoundError:
        return {}
    except OSError as err:
        raise FailedPrecondition(f"cannot read {path}: {err.strerror}",
                                 f"run paas as root, or point {ENV} at a readable file") from None
    try:
        st = os.fstat(fd)
        if st.st_uid not in (0, os.geteuid()) or st.st_mode & 0o022:
            raise FailedPrecondition(
                f"{path} may be changed by others than root: its settings are not used",
                f"chown root:root {path} && chmod 644 {path}")
        data = b""
        while chunk := os.read(fd, 65536):
            data += chunk
            if len(data) > 1 << 20:
                raise FailedPrecondition(f"{path} is larger than 1 MiB", "keep settings only")
    finally:
        os.close(fd)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidArgument(f"{path} is not UTF-8 text", "write it as UTF-8") from None
    return parse(text, path)


def apply(environ: MutableMapping[str, str]) -> dict[str, str]:
    """Fill ``environ`` with the settings file's values it does not set (an empty value
    is unset); returns the settings taken from the file."""
    taken = {k: v for k, v in read(environ.get(ENV) or DEFAULT_PATH).items()
             if not environ.get(k)}
    environ.update(taken)
    return taken
