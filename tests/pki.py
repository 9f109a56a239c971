"""A tiny test PKI: a root CA, an intermediate, leaves for any names and dates.

Used by the unit tests of ``paas.certs`` and by the HTTPS integration tests (curl
trusts ``Pki.root_pem`` with ``--cacert``). Pure Python (``cryptography``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

NOW = datetime.now(UTC)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str,
          issuer_key: ec.EllipticCurvePrivateKey, *, ca: bool, names: Sequence[str] = (),
          start: datetime | None = None, end: datetime | None = None,
          ocsp: str = "") -> x509.Certificate:
    b = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(start or NOW - timedelta(days=1))
         .not_valid_after(end or NOW + timedelta(days=90))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if names:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                            critical=False)
    if ocsp:  # Authority Information Access: OCSP;URI:ocsp
        b = b.add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
            AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp))]),
            critical=False)
    return b.sign(issuer_key, hashes.SHA256())


@dataclass
class Pki:
    root_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    inter_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))

    def __post_init__(self) -> None:
        self.root = _cert("Test Root", self.root_key, "Test Root", self.root_key, ca=True,
                          end=NOW + timedelta(days=3650))
        self.inter = _cert("Test Intermediate", self.inter_key, "Test Root", self.root_key,
                           ca=True, end=NOW + timedelta(days=3650))

    @property
    def root_pem(self) -> bytes:
        return pem(self.root)

    def leaf(self, *names: str, start: datetime | None = None, end: datetime | None = None,
             cn: str = "", ocsp: str = "") -> tuple[bytes, bytes]:
        """(chain PEM: leaf then intermediate, key PEM) for ``names``; ``ocsp``: the
        leaf's OCSP responder URL."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(cn or (names[0] if names else "nameless"), key, "Test Intermediate",
                     self.inter_key, ca=False, names=names, start=start, end=end, ocsp=ocsp)
        return pem(cert) + pem(self.inter), key_pem(key)

    def leaf_only(self, chain: bytes) -> bytes:
        return chain.split(b"-----END CERTIFICATE-----")[0] + b"-----END CERTIFICATE-----\n"
