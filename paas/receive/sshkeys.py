"""SSH public keys of pushers and the ``authorized_keys`` lines that pin them to
``paas git:ssh-command``.

Pure functions build and parse lines; ``KeyStore`` reads and atomically rewrites the
file, keeping every line paas did not write. A paas line looks like::

    restrict,command="env PAAS_ROOT=/var/lib/paas /usr/local/bin/paas git:ssh-command --key alice" ssh-ed25519 AAAA... paas-key:alice

``restrict`` (OpenSSH >= 7.2) turns off pty allocation and every kind of forwarding;
``command`` forces the one program whatever the client asks for (the request itself
arrives in ``SSH_ORIGINAL_COMMAND``). The trailing comment ``paas-key:NAME`` marks
the line as paas's own. Not covered: sshd configuration (see the README of
``paas.receive``) and keys with certificates or options of their own.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import hashlib
import os
import re
import shlex
import struct
import tempfile
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from ..errors import AlreadyExists, InvalidArgument, NotFound
from ..filelock import file_lock

__all__ = [
    "KEY_NAME_RE",
    "KeyStore",
    "PublicKey",
    "SshKey",
    "build_line",
    "command_env",
    "fingerprint",
    "forced_command",
    "paas_argv",
    "parse_line",
    "parse_public_key",
    "ssh_command_for",
    "validate_key_name",
]

KEY_NAME_RE = re.compile(r"^[a-zA-Z0-9_.@-]{1,64}$")
MARKER = "paas-key:"
# key types paas accepts (no DSA: OpenSSH itself refuses it by default)
KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)
_ALL_TYPES = (*KEY_TYPES, "ssh-dss")
_PAAS_LINE_RE = re.compile(
    r'^restrict,command="(?P<cmd>(?:[^"\\]|\\.)*)" (?P<type>\S+) (?P<blob>[A-Za-z0-9+/=]+) '
    + re.escape(MARKER)
    + r"(?P<name>[a-zA-Z0-9_.@-]{1,64})$"
)
_MIN_RSA_BITS = 2048


@dataclass(frozen=True)
class PublicKey:
    """A validated OpenSSH public key."""

    type: str
    blob: str  # base64, as in the .pub file
    comment: str = ""

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.blob)


@dataclass(frozen=True)
class SshKey:
    """A pusher's key as paas registered it."""

    name: str
    key: PublicKey
    command: str

    @property
    def fingerprint(self) -> str:
        return self.key.fingerprint


def validate_key_name(name: str) -> str:
    if not KEY_NAME_RE.fullmatch(name):
        raise InvalidArgument(
            f"{name!r} is not a valid key name",
            "use 1-64 letters, digits, '_', '.', '@' or '-'",
        )
    return name


def fingerprint(blob: str) -> str:
    """``SHA256:...`` as ``ssh-keygen -l`` prints it."""
    digest = hashlib.sha256(base64.b64decode(blob)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _ssh_strings(raw: bytes) -> list[bytes]:
    """Split the wire format (uint32 length + bytes, repeated); ValueError if malformed."""
    out, i = [], 0
    while i < len(raw):
        if i + 4 > len(raw):
            raise ValueError("truncated length")
        (n,) = struct.unpack(">I", raw[i:i + 4])
        i += 4
        if i + n > len(raw):
            raise ValueError("truncated field")
        out.append(raw[i:i + n])
        i += n
    return out


def _check_blob(key_type: str, raw: bytes) -> None:
    fields = _ssh_strings(raw)
    if not fields or fields[0].decode("ascii", "replace") != key_type:
        raise ValueError("the key data does not match its type")
    if key_type == "ssh-ed25519" and (len(fields) != 2 or len(fields[1]) != 32):
        raise ValueError("bad ed25519 key")
    if key_type == "ssh-rsa":
        if len(fields) != 3:
            raise ValueError("bad rsa key")
        bits = int.from_bytes(fields[2], "big").bit_length()
        if bits < _MIN_RSA_BITS:
            raise ValueError(f"rsa keys need at least {_MIN_RSA_BITS} bits (this one: {bits})")
    if key_type.startswith("ecdsa-") and len(fields) != 3:
        raise ValueError("bad ecdsa key")


def parse_public_key(text: str) -> PublicKey:
    """The one key in ``text`` (an ``id_*.pub`` file: ``TYPE BASE64 [COMMENT]``).

    Blank lines and ``#`` comments are ignored; options, several keys, unknown
    types and blobs that do not decode to their declared type are refused."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    hint = "pass a public key file such as ~/.ssh/id_ed25519.pub (one line: TYPE KEY [COMMENT])"
    if "PRIVATE KEY-----" in text:
        raise InvalidArgument("this is a private key", "pass the .pub file, never the private key")
    if len(lines) != 1:
        raise InvalidArgument(f"expected exactly one public key, found {len(lines)} lines", hint)
    parts = lines[0].split(None, 2)
    if len(parts) < 2 or parts[0] not in _ALL_TYPES:
        raise InvalidArgument("not an OpenSSH public key", hint)
    key_type, blob = parts[0], parts[1]
    if key_type not in KEY_TYPES:
        raise InvalidArgument(f"{key_type} keys are not accepted", "use an ed25519, ecdsa or rsa key")
    try:
        raw = base64.b64decode(blob, validate=True)
        _check_blob(key_type, raw)
    except (binascii.Error, ValueError) as err:
        raise InvalidArgument(f"the public key is malformed: {err}", hint) from err
    comment = parts[2] if len(parts) > 2 else ""
    comment = "".join(c for c in comment if c.isprintable())
    return PublicKey(type=key_type, blob=base64.b64encode(raw).decode(), comment=comment)


_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def forced_command(paas_argv: Sequence[str], env: Mapping[str, str], key_name: str) -> str:
    """The shell command sshd runs for a key: ``env K=V... PAAS git:ssh-command --key NAME``,
    every word shell-quoted (sshd runs it with the user's shell)."""
    words = []
    for k, v in sorted(env.items()):
        if not _ENV_NAME_RE.fullmatch(k) or not v.isprintable():
            raise InvalidArgument(f"environment variable {k!r} cannot be embedded in a key line")
        words.append(f"{k}={v}")
    if words:
        words.insert(0, "env")
    words += [*paas_argv, "git:ssh-command", "--key", validate_key_name(key_name)]
    for w in words:
        if not w.isprintable():
            raise InvalidArgument(f"{w!r} cannot be embedded in a key line")
    return " ".join(shlex.quote(w) for w in words)


def build_line(name: str, key: PublicKey, command: str) -> str:
    """One ``authorized_keys`` line (no newline). Inside ``command="..."`` sshd
    understands exactly one escape, ``\\"``."""
    validate_key_name(name)
    quoted = command.replace('"', '\\"')
    return f'restrict,command="{quoted}" {key.type} {key.blob} {MARKER}{name}'


def parse_line(line: str) -> SshKey | None:
    """The paas key on this line, or None for a line paas did not write."""
    m = _PAAS_LINE_RE.fullmatch(line.rstrip("\n"))
    if m is None:
        return None
    command = re.sub(r'\\"', '"', m.group("cmd"))
    key = PublicKey(type=m.group("type"), blob=m.group("blob"))
    return SshKey(name=m.group("name"), key=key, command=command)


def _foreign_blobs(line: str) -> list[str]:
    """Key blobs on a line paas did not write (any token following a key type)."""
    tokens = line.split()
    return [tokens[i + 1] for i, t in enumerate(tokens[:-1]) if t in _ALL_TYPES]


class KeyStore:
    """The ``authorized_keys`` file paas manages its lines in."""

    def __init__(self, path: str) -> None:
        self.path = path

    @property
    def _lockfile(self) -> str:
        return os.path.join(os.path.dirname(self.path) or ".", ".paas-keys.lock")

    def _read(self) -> builtins.list[str]:
        try:
            with open(self.path, encoding="utf-8", errors="surrogateescape") as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def list(self) -> builtins.list[SshKey]:
        return [k for k in map(parse_line, self._read()) if k is not None]

    def add(self, name: str, key: PublicKey, command: str) -> SshKey:
        validate_key_name(name)
        with file_lock(self._lockfile):
            return self._add(name, key, command)

    def _add(self, name: str, key: PublicKey, command: str) -> SshKey:
        lines = self._read()
        fp = key.fingerprint
        for line in lines:
            existing = parse_line(line)
            if existing is not None:
                if existing.name == name:
                    raise AlreadyExists(f"a key named {name!r} exists",
                                        f"remove it first: paas ssh-keys:remove {name}")
                if existing.fingerprint == fp:
                    raise AlreadyExists(f"this key is already registered as {existing.name!r}",
                                        "each key can belong to one name")
            elif any(_safe_fp(b) == fp for b in _foreign_blobs(line)):
                raise AlreadyExists(f"this key is already in {self.path} (not added by paas)",
                                    "sshd uses the first matching line: remove that line first")
        line = build_line(name, key, command)
        self._write([*lines, line])
        return SshKey(name=name, key=key, command=command)

    def remove(self, name: str) -> None:
        with file_lock(self._lockfile):
            self._remove(name)

    def _remove(self, name: str) -> None:
        lines = self._read()
        kept = [ln for ln in lines if (k := parse_line(ln)) is None or k.name != name]
        if len(kept) == len(lines):
            raise NotFound(f"no key named {name!r}", "see paas ssh-keys:list")
        self._write(kept)

    def _write(self, lines: builtins.list[str]) -> None:
        """Temp file + rename, keeping the old file's mode and owner (sshd reads the file
        as the login user, and with StrictModes checks who may write it)."""
        directory = os.path.dirname(self.path) or "."
        os.makedirs(directory, mode=0o700, exist_ok=True)
        try:
            st: os.stat_result | None = os.stat(self.path)
        except FileNotFoundError:
            st = None
        fd, tmp = tempfile.mkstemp(prefix=".authorized_keys.", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as f:
                f.write("".join(f"{ln}\n" for ln in lines))
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, (st.st_mode & 0o7777) if st else 0o644)
            if st is not None and (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
                os.chown(tmp, st.st_uid, st.st_gid)
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise


def _safe_fp(blob: str) -> str:
    try:
        return fingerprint(blob)
    except (binascii.Error, ValueError):
        return ""


def paas_argv(env: Mapping[str, str], argv0: str, executable: str) -> list[str]:
    """How sshd should start this paas: ``PAAS_BIN``, else the running launcher
    (``sys.argv[0]`` made absolute), else ``python -m paas`` for ``python -m paas``."""
    if env.get("PAAS_BIN"):
        return [os.path.abspath(env["PAAS_BIN"])]
    if os.path.basename(argv0) == "__main__.py" or not argv0:
        return [executable, "-m", "paas"]
    if os.sep not in argv0:
        import shutil

        argv0 = shutil.which(argv0) or argv0
    return [os.path.abspath(argv0)]


# settings of ssh-keys:add and git:url that git:ssh-command does not need: kept out of
# the line, so production lines stay exactly `env PAAS_ROOT=... paas ...` (a sudoers
# rule has to match them)
_NOT_EMBEDDED = ("PAAS_BIN", "PAAS_SSH_", "PAAS_SSHD_", "PAAS_HTTP_GIT_",
                 "PAAS_AUTHORIZED_KEYS")


def command_env(env: Mapping[str, str], root: str,
                from_file: Collection[str] = ()) -> dict[str, str]:
    """The instance's ``PAAS_*`` settings git:ssh-command needs (PAAS_ROOT always, made
    absolute), and ``PYTHONPATH`` when set (a checkout run without install). Settings
    that came from the settings file (``from_file``) stay out: git:ssh-command reads
    that file itself."""
    out = {k: v for k, v in env.items()
           if k.startswith("PAAS_") and not k.startswith(_NOT_EMBEDDED) and v
           and k not in from_file}
    out["PAAS_ROOT"] = root
    if env.get("PYTHONPATH"):
        out["PYTHONPATH"] = env["PYTHONPATH"]
    return out


def ssh_command_for(env: Mapping[str, str], root: str, key_name: str, argv0: str,
                    executable: str, from_file: Collection[str] = ()) -> str:
    """The forced command of a key; with ``PAAS_SSH_SUDO=1`` prefixed by ``sudo -n``
    (sshd logs in as an unprivileged ``paas`` user, deploys need root)."""
    cmd = forced_command(paas_argv(env, argv0, executable),
                         command_env(env, root, from_file), key_name)
    return f"sudo -n {cmd}" if env.get("PAAS_SSH_SUDO") in ("1", "true", "yes") else cmd
