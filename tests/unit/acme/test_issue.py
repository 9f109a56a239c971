"""The issuance sequence against fakes: one order for all domains, challenge files
published before answering and withdrawn always, nothing installed on any failure."""

from __future__ import annotations

import pytest
from fakes import FakeCA, FakeSink, FakeWebroot

from paas.acme.issue import check_domains, obtain
from paas.errors import FailedPrecondition, InvalidArgument

DOMAINS = ("a.example.com", "b.example.com")


def _run(ca: FakeCA, web: FakeWebroot, sink: FakeSink, *, reuse: bool = False,
         lines: list[str] | None = None):
    return obtain("web", DOMAINS, ca, web, sink, (lines if lines is not None else []).append,
                  reuse_key=reuse)


def test_one_certificate_for_all_domains_files_served_while_validating_then_removed() -> None:
    ca, web, sink = FakeCA(), FakeWebroot(), FakeSink()
    ca.webroot = web
    lines: list[str] = []
    cert = _run(ca, web, sink, lines=lines)
    assert ca.orders == [DOMAINS] and cert.domains == DOMAINS
    assert ca.answered == list(DOMAINS)
    assert ca.seen_files == {"tok-0": "ka-a.example.com", "tok-1": "ka-b.example.com"}
    assert web.files == {}  # withdrawn
    assert b"PRIVATE KEY" in sink.certs["web"].key
    assert lines[0] == "Ordering a certificate for a.example.com, b.example.com"
    assert "Validating b.example.com (http-01)" in lines


def test_a_failed_domain_is_named_with_the_problem_and_nothing_is_installed() -> None:
    ca, web, sink = FakeCA(), FakeWebroot(), FakeSink()
    ca.fail["b.example.com"] = "connection refused (urn:ietf:params:acme:error:connection)"
    with pytest.raises(FailedPrecondition) as exc:
        _run(ca, web, sink)
    msg = exc.value.render()
    assert "b.example.com: connection refused" in msg and "a.example.com" not in msg.split("(")[0]
    assert "\n" not in msg and "nothing was installed" in msg
    assert sink.certs == {} and web.files == {}


@pytest.mark.parametrize("what", ["finalize", "install"])
def test_a_failure_after_validation_installs_nothing_and_removes_files(what: str) -> None:
    ca, web, sink = FakeCA(), FakeWebroot(), FakeSink()
    if what == "finalize":
        ca.refuse_finalize = "the ACME server refused: bad CSR"
    else:
        sink.refuse = "the chain is not in order"
    with pytest.raises((FailedPrecondition, InvalidArgument)):
        _run(ca, web, sink)
    assert sink.certs == {} and web.files == {} and web.published


def test_a_token_that_is_not_base64url_is_refused_before_any_file() -> None:
    ca, web, sink = FakeCA(), FakeWebroot(), FakeSink()
    ca.token = "../../etc/passwd"
    with pytest.raises(FailedPrecondition, match="unusable token"):
        _run(ca, web, sink)
    assert web.published == [] and sink.certs == {}


def test_a_renewal_reuses_the_installed_key() -> None:
    ca, web, sink = FakeCA(), FakeWebroot(), FakeSink()
    first = _run(ca, web, sink)
    second = _run(ca, web, sink, reuse=True)
    assert second.key == first.key and sink.installs == 2
    third = _run(ca, web, sink)
    assert third.key != first.key


@pytest.mark.parametrize("domains, match", [
    ((), "has no domains"),
    (("*.example.com",), "wildcard"),
    (("web.localhost",), "no public CA"),
])
def test_domains_http01_cannot_prove(domains: tuple[str, ...], match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        check_domains("web", domains)


def test_duplicate_domains_are_ordered_once() -> None:
    assert check_domains("web", ["a.example.com", "a.example.com"]) == ("a.example.com",)
