"""When a certificate is due, and the renewal run over the ACME-enabled apps.

A certificate is due when the app has none, when its domains changed, or when less
than ``min(graceperiod, a third of its lifetime)`` is left (30 days for Let's
Encrypt's 90-day certificates; short-lived ones are not renewed at every check).
A failed attempt keeps the installed certificate serving, records the error and
schedules the next automatic attempt with a doubling backoff
(``PAAS_LETSENCRYPT_RETRY_SECONDS``, default an hour, at most a day). An app with a
certificate installed by hand (``certs:add``) is left alone.

``Renewer`` depends on the protocols of ``paas.acme.model`` and a clock, so unit
tests drive every path with fakes; ``paas.acme.ops`` builds the real one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..errors import PaasError
from .issue import check_domains, obtain
from .model import CertificateAuthority, CertSink, InstalledCert, Progress, Webroot
from .store import AcmeStore

__all__ = ["RETRY_MAX", "Outcome", "Renewer", "backoff", "due_reason", "renew_at"]

log = logging.getLogger(__name__)

RETRY_BASE = 3600.0
RETRY_MAX = 86400.0


@dataclass(frozen=True)
class Outcome:
    app: str
    result: str  # issued | renewed | not-due | skipped | waiting | failed
    detail: str = ""


def renew_at(cert: InstalledCert, graceperiod: int) -> datetime:
    """When ``cert`` becomes due."""
    lifetime = cert.not_after - cert.not_before
    return cert.not_after - min(timedelta(seconds=graceperiod), lifetime / 3)


def due_reason(cert: InstalledCert | None, domains: Sequence[str], now: datetime,
               graceperiod: int) -> str:
    """Why a certificate is due ('' when it is not)."""
    if cert is None:
        return "no certificate installed"
    if set(cert.domains) != set(domains):
        return "the app's domains changed"
    if now >= renew_at(cert, graceperiod):
        left = cert.not_after - now
        return f"expires in {max(left.days, 0)} days" if left.days >= 1 else "expires within a day"
    return ""


def backoff(failures: int, base: float = RETRY_BASE) -> float:
    """Seconds before the next automatic attempt after ``failures`` failures in a row."""
    return float(min(base * 2 ** max(failures - 1, 0), RETRY_MAX))


class Renewer:
    """Renews the certificates of an instance's ACME-enabled apps.

    ``connect`` gives the CA, called at most once per run and only when an app is due
    (a run with nothing due makes no request)."""

    def __init__(self, store: AcmeStore, domains_of: Callable[[str], list[str]],
                 sink: CertSink, connect: Callable[[], CertificateAuthority],
                 webroot: Webroot, *, graceperiod: int, clock: Callable[[], float],
                 retry_base: float = RETRY_BASE, progress: Progress | None = None) -> None:
        self.store = store
        self.domains_of = domains_of
        self.sink = sink
        self._connect = connect
        self._ca: CertificateAuthority | None = None
        self.webroot = webroot
        self.graceperiod = graceperiod
        self.clock = clock
        self.retry_base = retry_base
        self.progress: Progress = progress or (lambda line: log.info("%s", line))

    def ca(self) -> CertificateAuthority:
        if self._ca is None:
            self._ca = self._connect()
        return self._ca

    def issue(self, app: str) -> InstalledCert:
        """Issue now and enable renewals (``letsencrypt:enable``); on failure record the
        error (an app not enabled before stays disabled) and raise."""
        now = self.clock()
        try:
            cert = self._obtain(app)
        except PaasError as err:
            self._failed(app, err, now)
            raise
        self.store.record_success(app, now)
        self.store.set_enabled(app, True)
        return cert

    def _obtain(self, app: str) -> InstalledCert:
        domains = check_domains(app, self.domains_of(app))
        current = self.sink.info(app)
        reuse = current is not None and current.source == "acme"
        return obtain(app, domains, self.ca(), self.webroot, self.sink, self.progress,
                      reuse_key=reuse)

    def _failed(self, app: str, err: PaasError, now: float) -> None:
        state = self.store.get(app)
        failures = (state.failures if state else 0) + 1
        self.store.record_failure(app, err.render(), now,
                                  now + backoff(failures, self.retry_base))

    def renew_app(self, app: str, *, force: bool = False) -> Outcome:
        """One app: renew if due (``force``: also within its backoff)."""
        now = self.clock()
        state = self.store.get(app)
        if state is None or not state.enabled:
            return Outcome(app, "skipped", "letsencrypt is not enabled")
        if not force and state.next_attempt is not None and now < state.next_attempt:
            return Outcome(app, "waiting", f"retrying after {state.last_error}")
        try:
            current = self.sink.info(app)
            if current is not None and current.source != "acme":
                return Outcome(app, "skipped", f"a {current.source} certificate is installed")
            domains = list(self.domains_of(app))
            reason = due_reason(current, domains, datetime.fromtimestamp(now, UTC),
                                self.graceperiod)
            if not reason:
                return Outcome(app, "not-due")
            self.progress(f"Renewing the certificate of {app}: {reason}")
            self._obtain(app)
        except PaasError as err:
            self._failed(app, err, now)
            log.warning("renewal of %s failed: %s", app, err.render())
            return Outcome(app, "failed", err.render())
        self.store.record_success(app, now)
        return Outcome(app, "issued" if current is None else "renewed", reason)

    def run(self, apps: Sequence[str] | None = None, *, force: bool = False) -> list[Outcome]:
        names = apps if apps is not None else [s.app for s in self.store.list(enabled_only=True)]
        return [self.renew_app(app, force=force) for app in names]

    def next_wake(self) -> float | None:
        """The earliest scheduled retry among the enabled apps, if any."""
        times = [s.next_attempt for s in self.store.list(enabled_only=True)
                 if s.next_attempt is not None]
        return min(times) if times else None
