"""Push tokens for git over HTTP: ``auth:add NAME`` makes a random token, shown once;
only a salted scrypt hash is kept, in ``PAAS_ROOT/auth/tokens.json`` (mode 0600).

A pusher authenticates with HTTP Basic auth, user NAME and password TOKEN. Every
token may push to every app (one operator's instance, like Dokku). Not covered:
per-app permissions, expiry.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import time
from dataclasses import dataclass

from ..errors import AlreadyExists, InvalidArgument, NotFound
from ..filelock import file_lock

__all__ = ["TOKEN_NAME_RE", "TokenInfo", "TokenStore", "hash_token", "new_token", "verify_token"]

TOKEN_NAME_RE = re.compile(r"^[a-zA-Z0-9_.@-]{1,64}$")
# scrypt cost: ~30 ms per check; git makes 2-3 authenticated requests per push
_N, _R, _P = 2**14, 8, 1


@dataclass(frozen=True)
class TokenInfo:
    name: str
    created: float


def new_token() -> str:
    """A random token: 32 bytes of entropy, URL-safe (it may end up in a push URL)."""
    return "paas_" + secrets.token_urlsafe(32)


def hash_token(token: str, salt: bytes | None = None) -> str:
    """``scrypt$N$r$p$SALT$HASH`` (base64) for storage."""
    salt = secrets.token_bytes(16) if salt is None else salt
    digest = hashlib.scrypt(token.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_token(token: str, stored: str) -> bool:
    """Whether ``token`` matches a ``hash_token`` value (constant-time compare)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(token.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r),
                             p=int(p), dklen=len(want))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


def validate_token_name(name: str) -> str:
    if not TOKEN_NAME_RE.fullmatch(name):
        raise InvalidArgument(f"{name!r} is not a valid token name",
                              "use 1-64 letters, digits, '_', '.', '@' or '-'")
    return name


class TokenStore:
    """Named token hashes in one JSON file: ``{"NAME": {"hash": ..., "created": ...}}``."""

    def __init__(self, path: str) -> None:
        self.path = path

    @classmethod
    def for_root(cls, root: str) -> TokenStore:
        return cls(os.path.join(root, "auth", "tokens.json"))

    def _load(self) -> dict[str, dict[str, object]]:
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return {}
        return data if isinstance(data, dict) else {}

    def _save(self, data: dict[str, dict[str, object]]) -> None:
        directory = os.path.dirname(self.path)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tokens.", dir=directory)  # mkstemp: mode 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise

    @property
    def _lockfile(self) -> str:
        return self.path + ".lock"

    def add(self, name: str) -> str:
        """Create a token for ``name``; returns the token (the only time it is seen)."""
        validate_token_name(name)
        with file_lock(self._lockfile):
            data = self._load()
            if name in data:
                raise AlreadyExists(f"a token named {name!r} exists",
                                    f"remove it first: paas auth:remove {name}")
            token = new_token()
            data[name] = {"hash": hash_token(token), "created": time.time()}
            self._save(data)
        return token

    def remove(self, name: str) -> None:
        with file_lock(self._lockfile):
            data = self._load()
            if name not in data:
                raise NotFound(f"no token named {name!r}", "see paas auth:list")
            del data[name]
            self._save(data)

    def list(self) -> list[TokenInfo]:
        return [TokenInfo(name=k, created=float(v.get("created", 0)))  # type: ignore[arg-type]
                for k, v in sorted(self._load().items())]

    def check(self, name: str, token: str) -> bool:
        """Whether ``token`` is the token of ``name``."""
        entry = self._load().get(name)
        if not isinstance(entry, dict) or not isinstance(entry.get("hash"), str):
            # spend the same time as a real check: no timing oracle for valid names
            verify_token(token, _dummy_hash())
            return False
        return verify_token(token, str(entry["hash"]))


@functools.cache
def _dummy_hash() -> str:
    return hash_token("x", salt=b"\0" * 16)
