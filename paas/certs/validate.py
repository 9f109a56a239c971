"""Pure checks of a certificate chain and its key, before anything is installed.

``check(chain_pem, key_pem, domains, now)`` parses both with ``cryptography`` and
refuses, with one line saying what is wrong and a hint, a PEM that holds no
certificate or no private key (or anything else), a key that does not match the
leaf, a chain out of order (each certificate must be issued, and signed, by the
next), a certificate expired or not yet valid, and a leaf that does not cover
every domain asked for (subjectAltName DNS names only, as clients do; a wildcard
``*.example.com`` covers exactly one label: ``a.example.com``, not
``example.com`` nor ``a.b.example.com``). On success it returns a ``Checked``:
the normalized PEM of key and chain (the bytes nginx reads) and what
``certs:report`` shows.

Not here: which domains an app has, files, the database (``paas.certs.store``);
whether the chain ends at a trusted root (a private CA's chain is fine; clients
decide trust).
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

from ..errors import InvalidArgument
from .names import covers, uncovered

__all__ = ["Checked", "check", "covers", "leaf_names", "parse_chain", "parse_key", "uncovered"]

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----", re.DOTALL)
_KEY_TYPES = (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey,
              ed448.Ed448PrivateKey)
PrivateKey = (rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
              | ed448.Ed448PrivateKey)


@dataclass(frozen=True)
class Checked:
    """A chain and key that passed ``check``: ``pem`` is the key then the chain."""

    pem: bytes
    key_pem: bytes
    chain_pem: bytes
    subject: str
    issuer: str
    domains: tuple[str, ...]  # the leaf's DNS names
    not_before: datetime
    not_after: datetime
    fingerprint: str  # sha256 of the leaf's DER, hex


def _blocks(data: bytes) -> list[tuple[str, bytes]]:
    return [(m.group(1).decode(), m.group(0)) for m in _PEM_BLOCK.finditer(data)]


def parse_chain(data: bytes) -> list[x509.Certificate]:
    """The certificates of a PEM file, in file order; refuses a file with none, or a
    block that is not a certificate (a key in the certificate file, say)."""
    blocks = _blocks(data)
    certs = [b for kind, b in blocks if kind == "CERTIFICATE"]
    if any(kind.endswith("PRIVATE KEY") for kind, _ in blocks):
        raise InvalidArgument("the certificate file holds a private key",
                              "give the certificate chain and the key as two files")
    if not certs:
        raise InvalidArgument("the certificate file holds no PEM certificate",
                              "give a PEM file that starts with -----BEGIN CERTIFICATE-----")
    out = []
    for i, block in enumerate(certs, 1):
        try:
            out.append(x509.load_pem_x509_certificate(block))
        except ValueError as err:
            raise InvalidArgument(f"certificate {i} of the certificate file is not valid PEM",
                                  "check the file is complete and unmodified") from err
    return out


def parse_key(data: bytes) -> PrivateKey:
    """The one private key of a PEM file (unencrypted: nginx reads it unattended)."""
    blocks = [(kind, b) for kind, b in _blocks(data) if kind.endswith("PRIVATE KEY")]
    if len(blocks) != 1:
        raise InvalidArgument("the key file holds no PEM private key" if not blocks
                              else "the key file holds more than one private key",
                              "give the certificate's private key, -----BEGIN PRIVATE KEY-----")
    if blocks[0][0] == "ENCRYPTED PRIVATE KEY" or b"ENCRYPTED" in blocks[0][1][:200]:
        raise InvalidArgument("the private key is encrypted",
                              "decrypt it first, e.g. openssl pkey -in KEY -out PLAIN")
    try:
        key = serialization.load_pem_private_key(blocks[0][1], password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as err:
        raise InvalidArgument("the key file's private key is not valid PEM",
                              "check the file is complete and unmodified") from err
    if not isinstance(key, _KEY_TYPES):
        raise InvalidArgument("the private key's type is not usable for TLS",
                              "use an RSA, ECDSA or Ed25519 key")
    return key


def leaf_names(cert: x509.Certificate) -> tuple[str, ...]:
    """The certificate's subjectAltName DNS names, lowercased (clients ignore the CN)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    return tuple(n.lower().rstrip(".") for n in san.get_values_for_type(x509.DNSName))


def _short(name: x509.Name) -> str:
    cn = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    org = name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    for attrs in (cn, org):
        if attrs:
            return str(attrs[0].value)
    return name.rfc4514_string() or "(empty name)"


def _public_bytes(key: object) -> bytes:
    der: bytes = key.public_bytes(serialization.Encoding.DER,  # type: ignore[attr-defined]
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return der


def _check_order(chain: list[x509.Certificate]) -> None:
    for i, (cert, issuer) in enumerate(itertools.pairwise(chain), 1):
        try:
            cert.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm) as err:
            raise InvalidArgument(
                f"the chain is not in order: certificate {i} ({_short(cert.subject)}) is not "
                f"issued by certificate {i + 1} ({_short(issuer.subject)})",
                "order the file leaf first, then each issuer (leave out the root)") from err


def _check_dates(chain: list[x509.Certificate], now: datetime) -> None:
    for i, cert in enumerate(chain, 1):
        what = "the certificate" if i == 1 else f"certificate {i} of the chain"
        if cert.not_valid_after_utc <= now:
            raise InvalidArgument(f"{what} ({_short(cert.subject)}) expired on "
                                  f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC",
                                  "renew it and add the new one")
        if cert.not_valid_before_utc > now:
            raise InvalidArgument(f"{what} ({_short(cert.subject)}) is not valid before "
                                  f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC",
                                  "check the host's clock, or add it once it is valid")


def _pem(obj: x509.Certificate) -> bytes:
    return obj.public_bytes(serialization.Encoding.PEM)


def check(chain_pem: bytes, key_pem: bytes, domains: Sequence[str], now: datetime) -> Checked:
    """Validate a chain (leaf first) and its key for ``domains`` at ``now`` (UTC-aware)."""
    chain = parse_chain(chain_pem)
    key = parse_key(key_pem)
    leaf = chain[0]
    if _public_bytes(key.public_key()) != _public_bytes(leaf.public_key()):
        raise InvalidArgument("the private key does not match the certificate",
                              "give the key the certificate was issued for")
    _check_order(chain)
    _check_dates(chain, now)
    names = leaf_names(leaf)
    if not names:
        raise InvalidArgument("the certificate names no DNS domain (no subjectAltName)",
                              "clients ignore the common name: get one with DNS names")
    missing = uncovered(names, domains)
    if missing:
        raise InvalidArgument(f"the certificate does not cover {', '.join(missing)} "
                              f"(it is for {', '.join(names)})",
                              "get one for every domain of the app, or remove those domains")
    plain_key = key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    chain_out = b"".join(_pem(c) for c in chain)
    return Checked(
        pem=plain_key + chain_out, key_pem=plain_key, chain_pem=chain_out,
        subject=_short(leaf.subject), issuer=_short(leaf.issuer), domains=names,
        not_before=leaf.not_valid_before_utc, not_after=leaf.not_valid_after_utc,
        fingerprint=hashlib.sha256(leaf.public_bytes(serialization.Encoding.DER)).hexdigest(),
    )
