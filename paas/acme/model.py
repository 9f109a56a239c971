"""The values and small protocols the ACME stages exchange.

``issue.obtain`` (the issuance sequence) and ``renew`` depend only on the protocols
here: a ``CertificateAuthority`` (the ACME server, ``paas.acme.server`` in
production), a ``Webroot`` (where HTTP-01 answers go, ``paas.acme.webroot``) and a
``CertSink`` (the certificate store, ``paas.certs`` through ``paas.acme.sink``), so
unit tests drive every failure path with fakes. Values between stages are frozen
dataclasses. Nothing here does I/O or imports the ``acme`` library.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

__all__ = [
    "LETSENCRYPT_PRODUCTION",
    "LETSENCRYPT_STAGING",
    "AcmeSettings",
    "AppState",
    "CertSink",
    "CertificateAuthority",
    "Challenge",
    "DomainFailure",
    "InstalledCert",
    "Order",
    "Progress",
    "Webroot",
]

LETSENCRYPT_PRODUCTION = "https://acme-v02.api.letsencrypt.org/directory"
LETSENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"

Progress = Callable[[str], None]  # one line of progress (the CLI prints "-----> LINE")


@dataclass(frozen=True)
class AcmeSettings:
    """The instance-wide settings (``letsencrypt:set --global``), defaults applied."""

    email: str = ""
    server: str = LETSENCRYPT_PRODUCTION
    graceperiod: int = 30 * 86400  # seconds before expiry a renewal is due (Dokku's key)


@dataclass(frozen=True)
class AppState:
    """One app's ACME record: enabled, and how the last attempts went."""

    app: str
    enabled: bool = True
    last_error: str = ""
    failures: int = 0  # failed attempts in a row
    last_attempt: float | None = None
    next_attempt: float | None = None  # no automatic attempt before this (backoff)
    last_success: float | None = None


@dataclass(frozen=True)
class Challenge:
    """One pending HTTP-01 challenge: serve ``key_authorization`` at
    ``/.well-known/acme-challenge/<token>`` for ``domain``."""

    domain: str
    token: str
    key_authorization: str = field(repr=False)
    handle: object = field(default=None, compare=False, repr=False)  # the CA's own object


@dataclass(frozen=True)
class Order:
    """An order for ``domains``; ``challenges`` are those still to answer (an
    authorization the CA already holds as valid has none)."""

    domains: tuple[str, ...]
    challenges: tuple[Challenge, ...]
    handle: object = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class DomainFailure:
    """A domain the CA could not validate, with the ACME problem detail."""

    domain: str
    problem: str  # e.g. "urn:ietf:params:acme:error:connection: ... connection refused"


class InstalledCert(Protocol):
    """What renewal needs to know of an installed certificate (``paas.certs.CertInfo``
    has these fields and more)."""

    @property
    def source(self) -> str: ...  # manual | acme | self-signed

    @property
    def domains(self) -> tuple[str, ...]: ...

    @property
    def not_before(self) -> datetime: ...

    @property
    def not_after(self) -> datetime: ...


class CertificateAuthority(Protocol):
    """An ACME server, seen through the steps of RFC 8555's issuance."""

    def order(self, domains: Sequence[str], csr_pem: bytes) -> Order: ...

    def answer(self, challenge: Challenge) -> None: ...

    def validate(self, order: Order) -> tuple[DomainFailure, ...]:
        """Wait until every authorization is decided; the domains that failed."""
        ...

    def finalize(self, order: Order) -> bytes:
        """The certificate chain (PEM, leaf first) for a validated order."""
        ...

    def revoke(self, cert_pem: bytes) -> None: ...


class Webroot(Protocol):
    """Where nginx serves HTTP-01 answers from."""

    def publish(self, token: str, content: str) -> None: ...

    def withdraw(self, token: str) -> None: ...


class CertSink(Protocol):
    """The certificate store (``paas.certs``)."""

    def install(self, app: str, chain_pem: bytes, key_pem: bytes) -> InstalledCert: ...

    def info(self, app: str) -> InstalledCert | None: ...

    def key_pem(self, app: str) -> bytes: ...

    def cert_pem(self, app: str) -> bytes:
        """The installed leaf certificate (PEM)."""
        ...

    def remove(self, app: str) -> None: ...
