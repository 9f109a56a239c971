"""What sshd makes of the ssh user's keys: the ``AuthorizedKeysFile`` it reads for that
user (``sshd -T -C user=...``, its config with the user's ``Match`` blocks applied), and
which lines in those files let whom in how (``audit``).

Settings: ``PAAS_SSH_USER`` (paas), ``PAAS_SSHD`` (the binary, /usr/sbin/sshd) and
``PAAS_SSHD_CONFIG`` (/etc/ssh/sshd_config; a test's own sshd names its config).
``ssh-keys:list`` shows the audit; ``paas report`` checks that an sshd runs with that
config and reads the file ``ssh-keys:add`` writes (``PAAS_AUTHORIZED_KEYS``).

Not covered: ``AuthorizedKeysCommand`` output (only reported as set), certificates
(``TrustedUserCAKeys``), keys of other users.
"""

from __future__ import annotations

import os
import pwd
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .. import proc
from ..errors import PaasError
from .sshkeys import _ALL_TYPES, _safe_fp, parse_line

__all__ = ["DEFAULT_SSHD_CONFIG", "KeyLine", "SshdView", "audit", "expand_files", "listener_argv",
           "parse_sshd_t", "query", "running_configs", "ssh_settings", "sshd_argv"]

DEFAULT_SSHD_CONFIG = "/etc/ssh/sshd_config"
DEFAULT_SSHD = "/usr/sbin/sshd"


@dataclass(frozen=True)
class SshdView:
    """sshd's view of one user: the key files it reads (absolute), or why unknown."""

    user: str
    config: str
    files: tuple[str, ...] = ()
    keys_command: str = ""  # AuthorizedKeysCommand when set
    error: str = ""  # sshd could not be asked, or the user does not exist


@dataclass(frozen=True)
class KeyLine:
    """One key line of a file: paas's (``name``) or not, and what is wrong with it."""

    file: str
    name: str  # the paas name, "" for a line paas did not write
    type: str
    fingerprint: str
    authenticates: bool  # in a file sshd reads for the user
    note: str = ""  # "" for a paas key that works as paas meant


def ssh_settings(env: Mapping[str, str]) -> tuple[str, str, str]:
    """(sshd binary, sshd config, ssh user) from the environment."""
    return (env.get("PAAS_SSHD") or DEFAULT_SSHD,
            env.get("PAAS_SSHD_CONFIG") or DEFAULT_SSHD_CONFIG,
            env.get("PAAS_SSH_USER") or "paas")


def sshd_argv(sshd: str, config: str, user: str) -> list[str]:
    """``sshd -T`` for a login of ``user`` from the local host."""
    return [sshd, "-T", "-f", config, "-C", f"user={user},host=localhost,addr=127.0.0.1"]


def parse_sshd_t(text: str) -> dict[str, list[str]]:
    """``sshd -T`` output: lower-case keyword -> its words (the last line of a keyword)."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        words = line.split()
        if words:
            out[words[0].lower()] = words[1:]
    return out


def expand_files(words: list[str], user: str, home: str, uid: int) -> tuple[str, ...]:
    """``AuthorizedKeysFile``'s words as paths: ``%h %u %U %%`` expanded, relative ones
    under the home directory, ``none`` dropped (sshd_config(5), TOKENS)."""
    out = []
    for word in words:
        if word == "none":
            continue
        path, i = "", 0
        while i < len(word):
            if word[i] == "%" and i + 1 < len(word):
                path += {"h": home, "u": user, "U": str(uid), "%": "%"}.get(word[i + 1],
                                                                         word[i:i + 2])
                i += 2
            else:
                path += word[i]
                i += 1
        out.append(os.path.normpath(path if path.startswith("/") else os.path.join(home, path)))
    return tuple(out)


def query(env: Mapping[str, str]) -> SshdView:
    """Ask sshd which files it reads for the ssh user (runs ``sshd -T``)."""
    sshd, config, user = ssh_settings(env)
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        return SshdView(user, config, error=f"the ssh user {user} does not exist")
    try:
        res = proc.run(sshd_argv(sshd, config, user), check=False, timeout=10, what="sshd -T")
    except PaasError as err:
        return SshdView(user, config, error=f"cannot run {sshd}: {err.message}")
    if res.returncode != 0:
        why = (res.stderr.strip() or res.stdout.strip()).splitlines()
        return SshdView(user, config, error=f"sshd -T -f {config} failed: "
                                            f"{why[-1] if why else res.returncode}")
    conf = parse_sshd_t(res.stdout)
    command = " ".join(conf.get("authorizedkeyscommand", ["none"]))
    return SshdView(user, config,
                    files=expand_files(conf.get("authorizedkeysfile", []), user, pw.pw_dir,
                                       pw.pw_uid),
                    keys_command="" if command == "none" else command)


def _read_lines(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            return f.read().splitlines()
    except (FileNotFoundError, NotADirectoryError):
        return []


def _foreign(file: str, line: str, user: str, reads: bool) -> KeyLine | None:
    """A line paas did not write: its key, and whether a forced command pins it."""
    words = line.split()
    if not words or words[0].startswith("#"):
        return None
    at = next((i for i, w in enumerate(words[:-1]) if w in _ALL_TYPES), None)
    if at is None:
        return None
    options = " ".join(words[:at])
    if "command=" in options:
        note = "not added by paas (a forced command of its own)"
    else:
        note = f"not added by paas, no forced command: a login shell as {user}"
    return KeyLine(file, "", words[at], _safe_fp(words[at + 1]), reads, note)


def _command_words(command: str) -> list[str]:
    try:
        return shlex.split(command)
    except ValueError:
        return []


def audit(view: SshdView, paas_file: str,
          read: Callable[[str], list[str]] = _read_lines) -> list[KeyLine]:
    """Every key in the files sshd reads, and paas's keys wherever they are: with a note
    for a paas key sshd never reads, a paas line whose forced command is not
    ``git:ssh-command --key NAME``, and every line paas did not write."""
    files = list(dict.fromkeys([*view.files, paas_file]))
    out = []
    for file in files:
        reads = file in view.files
        for line in read(file):
            key = parse_line(line)
            if key is None:
                found = _foreign(file, line, view.user, reads) if reads else None
                if found is not None:
                    out.append(found)
                continue
            note = ""
            if not reads:
                note = (f"sshd does not read this file for user {view.user} "
                        f"(it reads {', '.join(view.files) or 'none'})" if not view.error
                        else f"unknown whether sshd reads it: {view.error}")
            elif _command_words(key.command)[-3:] != ["git:ssh-command", "--key", key.name]:
                note = "its forced command is not paas git:ssh-command"
            out.append(KeyLine(file, key.name, key.key.type, key.fingerprint,
                               reads and not view.error, note))
    return out


def listener_argv(cmdline: list[str]) -> list[str] | None:
    """The argv of a listening sshd from its ``/proc/PID/cmdline``: OpenSSH >= 8.x
    retitles it ``sshd: /usr/sbin/sshd -D -f X [listener] 0 of 10-100 startups``;
    older ones keep their argv. None for anything else (per-connection processes are
    ``sshd: user@notty``, ``sshd: user [priv]``)."""
    if not cmdline:
        return None
    first = cmdline[0]
    if first.startswith("sshd: ") and " [listener]" in first:
        return first[len("sshd: "):].split(" [listener]")[0].split()
    return cmdline if os.path.basename(first) == "sshd" else None


def running_configs() -> set[str]:
    """The configs (real paths) of every listening sshd on the host (``-f``, else the
    default)."""
    out = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        except OSError:
            continue
        argv = listener_argv(cmdline)
        if argv is None:
            continue
        config = DEFAULT_SSHD_CONFIG
        for i, arg in enumerate(argv[1:], 1):
            if arg == "-f" and i + 1 < len(argv):
                config = argv[i + 1]
            elif arg.startswith("-f") and len(arg) > 2:
                config = arg[2:]
        out.add(os.path.realpath(config))
    return out
