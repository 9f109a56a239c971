"""Self-signed certificates (``certs:generate``): for tests and internal hosts.

``generate(domains, now, days)`` makes a new ECDSA P-256 key and a certificate
for ``domains`` (subjectAltName, the first as common name), signed by that key:
the certificate is its own chain, so clients trust it only when told to
(``curl --cacert tls.crt``). Pure apart from the key's randomness.

Not here: installing it (``paas.certs.store.install``, source ``self-signed``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..errors import InvalidArgument

__all__ = ["DEFAULT_DAYS", "generate"]

DEFAULT_DAYS = 365


def generate(domains: Sequence[str], now: datetime,
             days: int = DEFAULT_DAYS) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) for ``domains``, valid from an hour before ``now``
    (clocks drift) for ``days`` days."""
    if not domains:
        raise InvalidArgument("a certificate needs at least one domain",
                              "add a domain to the app, or name one")
    key = ec.generate_private_key(ec.SECP256R1())
    cn = domains[0] if len(domains[0]) <= 64 else domains[0][-64:].lstrip(".*")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "paas self-signed")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in domains]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False,
                                     decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem
