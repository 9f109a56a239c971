"""In-memory fakes of the ACME protocols (``paas.acme.model``) for the unit tests."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from paas.acme.model import Challenge, DomainFailure, Order
from paas.errors import FailedPrecondition, InvalidArgument, NotFound
from paas.state.db import MIGRATIONS, _statements


def state_db() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.row_factory = sqlite3.Row
    for m in MIGRATIONS:
        for stmt in _statements(m):
            conn.execute(stmt)
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


@dataclass(frozen=True)
class Cert:
    source: str
    domains: tuple[str, ...]
    not_before: datetime
    not_after: datetime
    key: bytes = b""
    chain: bytes = b""


class FakeCA:
    """Issues a 'certificate' naming its domains; ``fail`` maps domain -> problem."""

    def __init__(self, *, lifetime: timedelta = timedelta(days=90)) -> None:
        self.fail: dict[str, str] = {}
        self.refuse_order: str = ""
        self.refuse_finalize: str = ""
        self.answered: list[str] = []
        self.orders: list[tuple[str, ...]] = []
        self.revoked: list[bytes] = []
        self.lifetime = lifetime
        self.seen_files: dict[str, str] = {}  # token -> content the webroot held at answer
        self.webroot: FakeWebroot | None = None
        self.token = "tok"

    def order(self, domains: Sequence[str], csr_pem: bytes) -> Order:
        if self.refuse_order:
            raise FailedPrecondition(self.refuse_order)
        self.orders.append(tuple(domains))
        assert b"CERTIFICATE REQUEST" in csr_pem
        return Order(tuple(domains), tuple(
            Challenge(d, f"{self.token}-{i}", f"ka-{d}") for i, d in enumerate(domains)))

    def answer(self, challenge: Challenge) -> None:
        self.answered.append(challenge.domain)
        if self.webroot is not None:
            self.seen_files[challenge.token] = self.webroot.files.get(challenge.token, "")

    def validate(self, order: Order) -> tuple[DomainFailure, ...]:
        return tuple(DomainFailure(d, self.fail[d]) for d in order.domains if d in self.fail)

    def finalize(self, order: Order) -> bytes:
        if self.refuse_finalize:
            raise FailedPrecondition(self.refuse_finalize)
        return ("CHAIN:" + ",".join(order.domains)).encode()

    def revoke(self, cert_pem: bytes) -> None:
        self.revoked.append(cert_pem)


class FakeWebroot:
    def __init__(self) -> None:
        self.files: dict[str, str] = {}
        self.published: list[str] = []

    def publish(self, token: str, content: str) -> None:
        self.files[token] = content
        self.published.append(token)

    def withdraw(self, token: str) -> None:
        self.files.pop(token, None)


@dataclass
class FakeSink:
    now: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    certs: dict[str, Cert] = field(default_factory=dict)
    lifetime: timedelta = timedelta(days=90)
    refuse: str = ""
    installs: int = 0

    def install(self, app: str, chain_pem: bytes, key_pem: bytes) -> Cert:
        if self.refuse:
            raise InvalidArgument(self.refuse)
        domains = tuple(chain_pem.decode().removeprefix("CHAIN:").split(","))
        cert = Cert("acme", domains, self.now, self.now + self.lifetime, key_pem, chain_pem)
        self.certs[app] = cert
        self.installs += 1
        return cert

    def info(self, app: str) -> Cert | None:
        return self.certs.get(app)

    def key_pem(self, app: str) -> bytes:
        if app not in self.certs:
            raise NotFound(f"{app} has no certificate")
        return self.certs[app].key

    def cert_pem(self, app: str) -> bytes:
        return self.certs[app].chain

    def remove(self, app: str) -> None:
        if self.certs.pop(app, None) is None:
            raise NotFound(f"{app} has no certificate")
