"""OCSP stapling in the pure renderer and its inputs: a certificate naming a responder
is loaded statically with ``ssl_stapling``; everything else stays per handshake; the
marker and resolv.conf reading (``paas.proxy.stapling``, ``paas.certs.ocsp``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509
from pki import Pki, pem

from paas.certs import ocsp
from paas.errors import InvalidArgument
from paas.model import Route, Upstream
from paas.proxy import ProxyParams, render_app
from paas.proxy.lint import directives
from paas.proxy.params import templates_dir
from paas.proxy.stapling import Stapling, nameservers, stapling_of

P = ProxyParams(nginx_dir="/srv/paas root/nginx", http_addr="127.0.0.1", http_port=8080,
                https_port=8443, templates=templates_dir())
WEB = Route("web", ("web.example.com",), (Upstream("10.88.0.2", 5000),))
STATIC = '"/srv/paas root/certs/web/tls.pem"'
FP = "ab" * 32
IP_RESPONDER = Stapling("http://127.0.0.1:8888", FP)
NAMED = Stapling("http://ocsp.example.net/ca", FP, ("10.0.0.53", "2001:db8::53"))
PKI = Pki()


def _https(text: str) -> list[tuple[str, list[str]]]:
    return directives(text.split("\nserver {")[2])


def _args(text: str, name: str) -> list[list[str]]:
    return [a for n, a in _https(text) if n == name]


def test_stapled_certificate_is_loaded_by_the_master_and_stapled() -> None:
    text = render_app(WEB, P, IP_RESPONDER)
    assert _args(text, "ssl_certificate") == [[STATIC]]
    assert _args(text, "ssl_certificate_key") == [[STATIC]]
    assert _args(text, "ssl_stapling") == [["on"]]
    assert _args(text, "ssl_stapling_verify") == [["on"]]
    assert _args(text, "ssl_trusted_certificate") == [['"/srv/paas root/certs/web/chain.pem"']]
    assert not _args(text, "resolver")  # an IP address needs no resolver
    assert f"sha256:{FP}" in text  # a new certificate is a new vhost: nginx reloads
    assert "ssl_stapling" not in text.split("\nserver {")[1]  # not on plain HTTP


def test_a_named_responder_gets_the_hosts_nameservers() -> None:
    text = render_app(WEB, P, NAMED)
    assert _args(text, "resolver") == [["10.0.0.53", "[2001:db8::53]", "valid=300s"]]
    assert _args(text, "resolver_timeout") == [["5s"]]


@pytest.mark.parametrize("route,params,stapling", [
    (WEB, P, None),
    (replace(WEB, settings=(("ocsp-stapling", "false"),)), P, IP_RESPONDER),
    (replace(WEB, template="server { listen {{ listen }}; server_name {{ domains|join }}; }"),
     P, IP_RESPONDER),
])
def test_otherwise_per_handshake(route: Route, params: ProxyParams,
                                 stapling: Stapling | None) -> None:
    text = render_app(route, params, stapling)
    assert "ssl_stapling" not in text and "resolver" not in text
    if not route.template:
        assert _args(text, "ssl_certificate") == [['"/srv/paas root/certs/web/tls.pem$paas_tls"']]


def test_no_https_no_stapling() -> None:
    assert "ssl" not in render_app(WEB, replace(P, https_port=0), IP_RESPONDER)


@pytest.mark.parametrize("stapling", [
    Stapling("http://127.0.0.1/;root /", FP), Stapling("file:///etc/passwd", FP),
    Stapling("http://127.0.0.1/", "x; include /etc"),
    Stapling("http://ocsp.example.net/", FP, ("10.0.0.1; include /etc",)),
])
def test_bad_stapling_values_refused(stapling: Stapling) -> None:
    with pytest.raises(InvalidArgument):
        render_app(WEB, P, stapling)


def test_ocsp_stapling_setting_validated() -> None:
    with pytest.raises(InvalidArgument, match="ocsp-stapling"):
        render_app(replace(WEB, settings=(("ocsp-stapling", "no"),)), P, IP_RESPONDER)


@pytest.mark.parametrize("url,ok", [
    ("http://ocsp.example.com", True), ("http://127.0.0.1:8888/x", True),
    ("https://[2001:db8::1]/", True), ("ftp://ocsp.example.com", False),
    ("http://", False), ("http://a b/", False), ('http://x/"', False),
    ("http://x:0/", False), ("http://x:99999/", False), ("http://bad_host/", False),
    ("http://x/$var", False), ("http://x/a;b=c", True),
])
def test_valid_url(url: str, ok: bool) -> None:
    assert (ocsp.valid_url(url) == url) is ok


def test_responder_of_and_the_trusted_chain(tmp_path: Path) -> None:
    chain, _ = PKI.leaf("web.example.com", ocsp="http://127.0.0.1:8888")
    assert ocsp.responder_of(chain) == "http://127.0.0.1:8888"
    assert ocsp.responder_of(PKI.leaf("web.example.com")[0]) is None
    assert ocsp.responder_of(PKI.leaf("a.example", ocsp="ldap://x/")[0]) is None
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(pem(Pki().root) + PKI.root_pem)
    assert ocsp.trusted_chain(chain, str(bundle)) == pem(PKI.inter) + PKI.root_pem
    assert ocsp.trusted_chain(chain, str(tmp_path / "none")) == pem(PKI.inter)
    leaf_only = PKI.leaf_only(chain)
    assert x509.load_pem_x509_certificate(ocsp.trusted_chain(leaf_only, "/nonexistent"))


def test_marker_written_read_and_forgotten(tmp_path: Path) -> None:
    params = replace(P, nginx_dir=str(tmp_path / "nginx"))
    d = tmp_path / "certs" / "web"
    d.mkdir(parents=True)
    assert stapling_of(params, "web") is None
    chain, _ = PKI.leaf("web.example.com", ocsp="http://ocsp.example.net/")
    assert ocsp.write(str(d), chain, FP) == "http://ocsp.example.net/"
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("# x\nnameserver 10.1.1.1\nnameserver bogus\nnameserver fe80::1%eth0\n"
                      "search example\nnameserver 10.1.1.1\n")
    assert stapling_of(params, "web", str(resolv)) == Stapling(
        "http://ocsp.example.net/", FP, ("10.1.1.1", "fe80::1"))
    assert stapling_of(replace(params, https_port=0), "web") is None
    (d / "ocsp").write_text("http://x/ y\n")  # a damaged marker: per handshake
    assert stapling_of(params, "web") is None
    assert ocsp.write(str(d), PKI.leaf("web.example.com")[0], FP) is None
    assert not any(d.iterdir())
    assert nameservers(str(tmp_path / "missing")) == ()
