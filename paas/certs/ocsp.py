"""OCSP stapling of certificates that name a responder: the marker nginx's renderer reads.

nginx can staple an OCSP response only to a certificate it loaded itself (at start or
reload), not to one read per handshake through a variable. So an app whose installed
leaf names an OCSP responder (Authority Information Access, ``OCSP;URI:http://...``)
gets, next to ``tls.pem``:

    ocsp       the responder's URL and the leaf's sha256, a line each: "staple it"
               (both files 0600 root: nginx's master reads them, not its workers)
    chain.pem  the CA certificates nginx trusts to verify the responses
               (``ssl_trusted_certificate``): the chain after the leaf, plus the root
               of the host's trust store that issued its last one, when there is one

and its vhost loads ``tls.pem`` statically with ``ssl_stapling on`` (``paas.proxy``
reads ``marker``; the fingerprint goes into the vhost, so a new certificate is a
new vhost and reloads nginx). That is the trade-off: a change of such a certificate is a
graceful nginx reload (``paas.deploy.tls``), not the zero-reload rename of the others.
Certificates without a responder (Let's Encrypt's since 2025) get neither file.

Not here: parsing the chain for install (``validate``), rendering, reloading.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import secrets
import warnings
from urllib.parse import urlsplit

from .. import modes

__all__ = ["CHAIN", "MARKER", "SYSTEM_BUNDLE", "forget", "marker", "responder", "responder_of",
           "trusted_chain", "valid_url", "write"]

MARKER = "ocsp"
CHAIN = "chain.pem"
SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
_HOST_RE = re.compile(r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)"
                      r"(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?", re.IGNORECASE)
_URL_RE = re.compile(r"[A-Za-z0-9._~:/?#\[\]@!&'()*+,;=%-]{1,512}")


def valid_url(url: str) -> str | None:
    """``url`` when it is an http(s) URL of a host name or IP address, else None."""
    if not _URL_RE.fullmatch(url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or port == 0 or not host:
        return None
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOST_RE.fullmatch(host):
            return None
    return url


def responder_of(leaf_pem: bytes) -> str | None:
    """The first valid OCSP responder URL of a PEM certificate's AIA, None without one."""
    from cryptography import x509
    from cryptography.x509.oid import AuthorityInformationAccessOID

    try:
        leaf = x509.load_pem_x509_certificate(leaf_pem)
        aia = leaf.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
    except (ValueError, x509.ExtensionNotFound):
        return None
    for desc in aia.value:
        if (desc.access_method == AuthorityInformationAccessOID.OCSP
                and isinstance(desc.access_location, x509.UniformResourceIdentifier)):
            url = valid_url(desc.access_location.value)
            if url:
                return url
    return None


def trusted_chain(chain_pem: bytes, bundle: str = SYSTEM_BUNDLE) -> bytes:
    """The CA certificates that verify OCSP responses: the chain after the leaf, then
    the host trust store's root that issued the last one (when the chain does not end
    at a root); the leaf itself when there is nothing else (nginx needs a file)."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.serialization import Encoding

    certs = x509.load_pem_x509_certificates(chain_pem)
    cas = certs[1:]
    top = certs[-1]
    if top.issuer != top.subject:
        with contextlib.suppress(OSError, ValueError):
            with open(bundle, "rb") as f, warnings.catch_warnings():
                warnings.simplefilter("ignore")  # old roots with odd serials
                roots = x509.load_pem_x509_certificates(f.read())
            for root in roots:
                if root.subject == top.issuer:
                    try:
                        top.verify_directly_issued_by(root)
                    except (ValueError, TypeError, InvalidSignature):
                        continue
                    cas.append(root)
                    break
    return b"".join(c.public_bytes(Encoding.PEM) for c in (cas or certs[:1]))


def _replace(directory: str, name: str, data: bytes) -> None:
    """``name`` in ``directory`` atomically, 0600 root: only the master reads it."""
    tmp = os.path.join(directory, f".{name}.{secrets.token_hex(6)}")
    fd = modes.create(tmp, os.O_WRONLY | os.O_EXCL)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, os.path.join(directory, name))
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def write(directory: str, chain_pem: bytes, fingerprint: str) -> str | None:
    """After an install in ``directory``: the marker (URL and the leaf's sha256) and
    ``chain.pem`` when the leaf (the first certificate of ``chain_pem``) names a
    responder, else neither; the URL."""
    url = responder_of(chain_pem)
    if url is None:
        forget(directory)
        return None
    _replace(directory, CHAIN, trusted_chain(chain_pem))
    _replace(directory, MARKER, f"{url}\n{fingerprint}\n".encode())
    return url


def forget(directory: str) -> None:
    """No stapling for the certificate in ``directory`` (the marker first)."""
    for name in (MARKER, CHAIN):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(directory, name))


def marker(directory: str) -> tuple[str, str] | None:
    """(responder URL, leaf sha256 hex) the marker in ``directory`` records (both
    validated), None when the certificate there is not to be stapled."""
    try:
        with open(os.path.join(directory, MARKER), encoding="ascii", errors="replace") as f:
            lines = f.read(1024).split()
    except (FileNotFoundError, NotADirectoryError):
        return None
    if len(lines) != 2 or not os.path.exists(os.path.join(directory, CHAIN)):
        return None
    url, fingerprint = lines
    if valid_url(url) is None or not re.fullmatch(r"[0-9a-f]{64}", fingerprint):
        return None
    return url, fingerprint


def responder(directory: str) -> str | None:
    """The responder URL of the marker in ``directory``, None without a valid one."""
    found = marker(directory)
    return found[0] if found else None
