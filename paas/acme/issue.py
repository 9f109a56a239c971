"""The issuance sequence, top to bottom: key, CSR, order, challenges, validate,
finalize, install; the challenge files are withdrawn whatever happens.

``obtain`` depends only on the protocols of ``paas.acme.model``, so a unit test
drives every failure path with fakes. Nothing is installed unless the CA issued a
certificate for every domain; a failed domain is named with the CA's problem
detail. A renewal of an ACME certificate reuses its key (``CertSink.key_pem``).
Not here: accounts and the network (``paas.acme.server``), when to renew (``renew``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from ..errors import FailedPrecondition, InvalidArgument
from .model import CertificateAuthority, CertSink, DomainFailure, InstalledCert, Progress, Webroot

__all__ = ["check_domains", "failure_error", "new_key_pem", "obtain"]

log = logging.getLogger(__name__)

_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")


def new_key_pem() -> bytes:
    """A new ECDSA P-256 private key (PKCS#8 PEM)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_csr(key_pem: bytes, domains: Sequence[str]) -> bytes:
    from acme import crypto_util

    return crypto_util.make_csr(key_pem, list(domains))


def check_domains(app: str, domains: Sequence[str]) -> tuple[str, ...]:
    """The domains to order: HTTP-01 proves names, never wildcards or addresses."""
    if not domains:
        raise InvalidArgument(f"{app} has no domains to get a certificate for",
                              f"add one with 'paas domains:add {app} DOMAIN'")
    for d in domains:
        if d.startswith("*."):
            raise InvalidArgument(
                f"{d}: a wildcard domain cannot be validated over HTTP-01",
                "install a wildcard certificate with 'paas certs:add', or list the names")
        if d.endswith(".localhost") or d == "localhost" or "." not in d:
            raise InvalidArgument(f"{d}: no public CA issues certificates for this name",
                                  f"set a public domain with 'paas domains:set {app} DOMAIN'")
    return tuple(dict.fromkeys(domains))


def failure_error(failures: Sequence[DomainFailure]) -> FailedPrecondition:
    """One line naming every domain that failed and why."""
    what = "; ".join(f"{f.domain}: {f.problem}" for f in failures)
    first = failures[0].domain
    return FailedPrecondition(
        f"the ACME server could not validate {what}",
        f"check that {first} resolves to this host and that port 80 reaches paas's nginx; "
        "nothing was installed")


def obtain(app: str, domains: Sequence[str], ca: CertificateAuthority, webroot: Webroot,
           sink: CertSink, progress: Progress, *, reuse_key: bool) -> InstalledCert:
    """Get a certificate for all ``domains`` of ``app`` and install it."""
    key_pem = sink.key_pem(app) if reuse_key else new_key_pem()
    csr = make_csr(key_pem, domains)
    progress(f"Ordering a certificate for {', '.join(domains)}")
    order = ca.order(domains, csr)
    published: list[str] = []
    try:
        for ch in order.challenges:
            if not _TOKEN_RE.fullmatch(ch.token):  # the CA's text becomes a file name
                raise FailedPrecondition(f"the ACME server sent an unusable token for {ch.domain}",
                                         "check letsencrypt:set --global server")
            webroot.publish(ch.token, ch.key_authorization)
            published.append(ch.token)
        for ch in order.challenges:
            progress(f"Validating {ch.domain} (http-01)")
            ca.answer(ch)
        failures = ca.validate(order)
        if failures:
            raise failure_error(failures)
        progress("Finalizing the order")
        chain = ca.finalize(order)
    finally:
        for token in published:
            try:
                webroot.withdraw(token)
            except OSError as err:  # must not hide the outcome; the next run overwrites
                log.warning("could not remove the challenge file %s: %s", token, err)
    progress(f"Installing the certificate of {app}")
    return sink.install(app, chain, key_pem)
