"""The instance's ACME account on disk: ``PAAS_ROOT/acme/`` (0700 root).

``account.key`` (0600): one ECDSA P-256 key per instance, made on first use.
``account.json`` (0600): the registration (server, account URL, contact email); a
different server registers again with the same key. ``ca-bundle.pem`` (0600): the
host's trust store plus ``PAAS_ACME_CA_BUNDLE``, what the directory's TLS is checked
against. Not here: talking to the server (``paas.acme.server``).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from .. import modes
from ..config import Context
from ..errors import FailedPrecondition, InvalidArgument

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey

__all__ = ["HOST_BUNDLE", "Registration", "acme_dir", "ca_bundle", "load_or_create_key",
           "load_registration", "save_registration"]

HOST_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


@dataclass(frozen=True)
class Registration:
    server: str
    uri: str
    email: str


def acme_dir(ctx: Context) -> str:
    path = os.path.join(ctx.paths.root, "acme")
    modes.makedirs(path, modes.PRIVATE_DIR)
    return path


def _write_private(path: str, data: bytes) -> None:
    """Write aside (0600), fsync, rename: a crash leaves the old file or the new one."""
    tmp = f"{path}.{secrets.token_hex(4)}"
    fd = modes.create(tmp, os.O_WRONLY | os.O_EXCL, modes.PRIVATE_FILE)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def load_or_create_key(ctx: Context) -> EllipticCurvePrivateKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    path = os.path.join(acme_dir(ctx), "account.key")
    try:
        with open(path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
    except FileNotFoundError:
        key = ec.generate_private_key(ec.SECP256R1())
        _write_private(path, key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return key
    except ValueError as err:
        raise FailedPrecondition(f"{path} is not a private key: {err}",
                                 "move it away: a new account is registered") from err
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise FailedPrecondition(f"{path} is not an ECDSA key",
                                 "move it away: a new account is registered")
    return key


def load_registration(ctx: Context, server: str) -> Registration | None:
    path = os.path.join(acme_dir(ctx), "account.json")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        reg = Registration(str(data["server"]), str(data["uri"]), str(data.get("email", "")))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        return None  # registered again: the server answers with the key's account
    return reg if reg.server == server else None


def save_registration(ctx: Context, reg: Registration) -> None:
    _write_private(os.path.join(acme_dir(ctx), "account.json"),
                   json.dumps(asdict(reg), indent=2).encode() + b"\n")


def ca_bundle(ctx: Context, env: Mapping[str, str]) -> str | bool:
    """What ``requests`` verifies the server with: the host's bundle (plus
    ``PAAS_ACME_CA_BUNDLE`` in a combined file); True (certifi's) without a host bundle."""
    extra = env.get("PAAS_ACME_CA_BUNDLE") or ""
    host = HOST_BUNDLE if os.path.exists(HOST_BUNDLE) else ""
    if not extra:
        return host or True
    try:
        with open(extra, "rb") as f:
            pem = f.read()
    except OSError as err:
        raise InvalidArgument(f"PAAS_ACME_CA_BUNDLE={extra}: {err.strerror}",
                              "name a readable PEM file of CA certificates") from err
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise InvalidArgument(f"PAAS_ACME_CA_BUNDLE={extra} holds no PEM certificate",
                              "name a PEM file of CA certificates")
    combined = b""
    if host:
        with open(host, "rb") as f:
            combined = f.read().rstrip(b"\n") + b"\n"
    path = os.path.join(acme_dir(ctx), "ca-bundle.pem")
    _write_private(path, combined + pem)
    return path
