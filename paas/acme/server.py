"""The ``CertificateAuthority`` of a real ACME server, through certbot's ``acme`` library
(JWS, nonces and retries are the library's; nothing here signs by hand).

``connect`` reads the directory, loads the instance's account (``account``) or
registers one, and returns an ``AcmeServer``. The directory's TLS is verified with
the host's trust store plus ``PAAS_ACME_CA_BUNDLE`` (a private CA, tests). Every
failure of the library or the network becomes one ``PaasError`` line saying which
server and why. Not here: the issuance sequence (``issue``), file contents.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import josepy
import requests
from acme import challenges, client, errors, messages
from cryptography import x509
from josepy.jwa import ES256
from josepy.jwk import JWKEC

from ..config import Context
from ..errors import FailedPrecondition, PaasError
from . import account
from .model import AcmeSettings, Challenge, DomainFailure, Order

__all__ = ["AcmeServer", "connect"]

log = logging.getLogger(__name__)

NETWORK_TIMEOUT = 30
VALIDATION_TIMEOUT = 90.0
USER_AGENT = "paas-acme"


def _reason(err: BaseException) -> str:
    """The useful tail of a requests error (``[Errno 111] Connection refused``)."""
    text = str(err)
    m = re.search(r"\[Errno -?\d+\] [^'\")]+", text)
    if m:
        return m.group(0).strip()
    if isinstance(err, requests.exceptions.Timeout):
        return "timed out"
    m = re.search(r"certificate verify failed: ([^'\")(]+)", text)
    if m:
        return m.group(1).strip()
    return text.splitlines()[0][:200] if text else type(err).__name__


def problem_text(err: messages.Error) -> str:
    detail = err.detail or err.description or err.title or "no detail given"
    return f"{detail} ({err.typ})"


@contextlib.contextmanager
def errors_of(url: str) -> Iterator[None]:
    """The library's and the network's exceptions as one-line ``PaasError``s."""
    try:
        yield
    except PaasError:
        raise
    except requests.exceptions.SSLError as err:
        raise FailedPrecondition(
            f"the ACME server {url} has a certificate this host does not trust: {_reason(err)}",
            "for a private ACME server set PAAS_ACME_CA_BUNDLE to its CA certificate") from err
    except requests.exceptions.RequestException as err:
        raise FailedPrecondition(f"cannot reach the ACME server {url}: {_reason(err)}",
                                 "check 'paas letsencrypt:set --global server' and that "
                                 "this host reaches it") from err
    except messages.Error as err:
        raise FailedPrecondition(f"the ACME server {url} refused: {problem_text(err)}") from err
    except errors.TimeoutError as err:
        raise FailedPrecondition(f"the ACME server {url} did not finish in time",
                                 "try again later") from err
    except (errors.Error, josepy.errors.Error, ValueError, KeyError) as err:
        raise FailedPrecondition(f"unexpected answer from the ACME server {url}: {err}",
                                 "check that the URL is an ACME (RFC 8555) directory") from err


@dataclass
class _OrderHandle:  # the library's order, kept inside a frozen Order
    orderr: messages.OrderResource


class AcmeServer:
    """One ACME server with the instance's account: the production ``CertificateAuthority``."""

    def __init__(self, url: str, acme: client.ClientV2) -> None:
        self.url = url
        self.client = acme

    def order(self, domains: Sequence[str], csr_pem: bytes) -> Order:
        with errors_of(self.url):
            orderr = self.client.new_order(csr_pem)
            pending: list[Challenge] = []
            for authzr in orderr.authorizations:
                domain = authzr.body.identifier.value
                if authzr.body.status == messages.STATUS_VALID:
                    continue  # the CA remembers an earlier validation
                http = [c for c in authzr.body.challenges
                        if isinstance(c.chall, challenges.HTTP01)]
                if not http:
                    raise FailedPrecondition(
                        f"{domain}: the ACME server {self.url} offers no http-01 challenge",
                        "paas validates over HTTP only; use certs:add for this domain")
                response, validation = http[0].response_and_validation(self.client.net.key)
                pending.append(Challenge(domain=domain, token=http[0].chall.encode("token"),
                                         key_authorization=validation,
                                         handle=(http[0], response)))
        return Order(domains=tuple(domains), challenges=tuple(pending),
                     handle=_OrderHandle(orderr))

    def answer(self, challenge: Challenge) -> None:
        challb: messages.ChallengeBody
        response: challenges.ChallengeResponse
        challb, response = challenge.handle  # type: ignore[misc]
        with errors_of(self.url):
            self.client.answer_challenge(challb, response)

    def validate(self, order: Order) -> tuple[DomainFailure, ...]:
        handle: _OrderHandle = order.handle  # type: ignore[assignment]
        deadline = time.monotonic() + VALIDATION_TIMEOUT
        failures: list[DomainFailure] = []
        with errors_of(self.url):
            for authzr in handle.orderr.authorizations:
                domain = authzr.body.identifier.value
                while authzr.body.status in (messages.STATUS_PENDING,
                                             messages.STATUS_PROCESSING):
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.5)
                    authzr, _ = self.client.poll(authzr)
                if authzr.body.status == messages.STATUS_VALID:
                    continue
                problems = [problem_text(c.error) for c in authzr.body.challenges
                            if c.error is not None]
                failures.append(DomainFailure(domain, problems[0] if problems else
                                              f"authorization is {authzr.body.status.name}"))
        return tuple(failures)

    def finalize(self, order: Order) -> bytes:
        handle: _OrderHandle = order.handle  # type: ignore[assignment]
        deadline = datetime.datetime.now() + datetime.timedelta(seconds=VALIDATION_TIMEOUT)
        with errors_of(self.url):
            done = self.client.finalize_order(handle.orderr, deadline)
        return str(done.fullchain_pem).encode()

    def revoke(self, cert_pem: bytes) -> None:
        cert = x509.load_pem_x509_certificate(cert_pem)
        with errors_of(self.url):
            self.client.revoke(cert, 0)


def connect(ctx: Context, settings: AcmeSettings, env: Mapping[str, str]) -> AcmeServer:
    """The server of ``settings`` with the instance's account (registered on first use)."""
    url = settings.server
    # the library logs every request and response body at DEBUG: not in paasd's log
    logging.getLogger("acme").setLevel(max(logging.INFO, logging.getLogger("acme").level))
    verify = account.ca_bundle(ctx, env)
    key = account.load_or_create_key(ctx)
    jwk = JWKEC(key=key)
    net = client.ClientNetwork(jwk, alg=ES256, verify_ssl=verify,  # type: ignore[arg-type]
                               user_agent=USER_AGENT, timeout=NETWORK_TIMEOUT)
    with errors_of(url):
        directory = client.ClientV2.get_directory(url, net)
        acme = client.ClientV2(directory, net)
        reg = account.load_registration(ctx, url)
        if reg is not None:
            net.account = messages.RegistrationResource(uri=reg.uri,
                                                        body=messages.Registration())
            if reg.email != settings.email and settings.email:
                _update_email(acme, settings.email)
                account.save_registration(ctx, account.Registration(url, reg.uri,
                                                                    settings.email))
        else:
            _register(ctx, acme, url, settings.email)
    return AcmeServer(url, acme)


def _register(ctx: Context, acme: client.ClientV2, url: str, email: str) -> None:
    if acme.external_account_required():
        raise FailedPrecondition(f"the ACME server {url} requires external account binding",
                                 "paas does not support EAB; use a server without it")
    new = messages.NewRegistration.from_data(email=email or None, terms_of_service_agreed=True)
    try:
        regr = acme.new_account(new)
        uri = regr.uri
    except errors.ConflictError as err:  # the key has an account there already
        uri = err.location
        acme.net.account = messages.RegistrationResource(uri=uri, body=messages.Registration())
    log.info("registered ACME account %s at %s", uri, url)
    account.save_registration(ctx, account.Registration(url, str(uri), email))


def _update_email(acme: client.ClientV2, email: str) -> None:
    regr: Any = acme.net.account
    body = messages.Registration.from_data(email=email)
    acme.update_registration(regr, body)
