"""The HTTPS half of the pure renderers: TLS settings, the per-app HTTPS server, the
redirect, the ACME challenge location, HSTS, and what app templates may do with TLS."""

from __future__ import annotations

from dataclasses import replace

import pytest

from paas.config import load_context
from paas.errors import InvalidArgument
from paas.model import Route, Upstream
from paas.proxy import ProxyParams, params_from_env, render_app, render_main
from paas.proxy.lint import directives
from paas.proxy.params import templates_dir

P = ProxyParams(nginx_dir="/srv/paas root/nginx", http_addr="127.0.0.1", http_port=8080,
                https_port=8443, templates=templates_dir())
WEB = Route("web", ("web.example.com", "*.web.example.org"), (Upstream("10.88.0.2", 5000),))
CERT = '"/srv/paas root/certs/web/tls.pem$paas_tls"'
ACME = '"/srv/paas root/nginx/acme"'


def _directive(text: str, name: str) -> list[list[str]]:
    return [args for n, args in directives(text) if n == name]


def _servers(text: str) -> list[str]:
    """The text of each top-level ``server {`` block of a vhost."""
    parts = text.split("\nserver {")[1:]
    return ["server {" + p for p in parts]


def test_main_config_tls_settings_and_default_servers() -> None:
    text = render_main(P)
    assert _directive(text, "ssl_protocols") == [["TLSv1.2", "TLSv1.3"]]
    assert _directive(text, "ssl_session_cache") == [["shared:paas_tls:10m"]]
    assert _directive(text, "ssl_session_timeout") == [["1d"]]
    assert _directive(text, "ssl_session_tickets") == [["off"]]
    assert _directive(text, "ssl_prefer_server_ciphers") == [["off"]]
    ciphers = _directive(text, "ssl_ciphers")[0][0].split(":")
    assert all(c.startswith("ECDHE-") for c in ciphers) and "ECDHE-RSA-AES128-GCM-SHA256" in ciphers
    assert _directive(text, "map")[1] == ["$ssl_server_name", "$paas_tls"]
    assert _directive(text, "listen") == [["127.0.0.1:8080", "default_server"],
                                          ["127.0.0.1:8443", "ssl", "http2", "default_server"]]
    assert _directive(text, "ssl_reject_handshake") == [["on"]]
    # challenges answered for a domain before its app has a vhost
    assert _directive(text, "location")[0] == ["^~", "/.well-known/acme-challenge/"]
    assert _directive(text, "root") == [[ACME]]


def test_main_config_without_https_has_no_tls() -> None:
    text = render_main(replace(P, https_port=0))
    assert "ssl" not in text and "acme" not in text
    assert _directive(text, "listen") == [["127.0.0.1:8080", "default_server"]]


def test_vhost_has_an_http_and_an_https_server() -> None:
    http, https = _servers(render_app(WEB, P))
    assert _directive(http, "listen") == [["127.0.0.1:8080"]]
    assert _directive(https, "listen") == [["127.0.0.1:8443", "ssl", "http2"]]
    for server in (http, https):
        assert _directive(server, "server_name") == [["web.example.com", "*.web.example.org"]]
        assert ["^~", "/.well-known/acme-challenge/"] in _directive(server, "location")
        assert _directive(server, "root") == [[ACME]]
        assert _directive(server, "try_files") == [["$uri", "=404"]]
        assert _directive(server, "proxy_pass") == [["http://paas-web"]]
        assert ["X-Forwarded-Proto", "$scheme"] in _directive(server, "proxy_set_header")
    assert _directive(https, "ssl_certificate") == [[CERT]]
    assert _directive(https, "ssl_certificate_key") == [[CERT]]
    assert not _directive(http, "ssl_certificate")
    # the redirect: only on plain HTTP, only when the certificate file exists
    assert _directive(http, "if") == [["(-f", '"/srv/paas root/certs/web/tls.pem"', ")"]]
    assert _directive(http, "return") == [
        ["502", _directive(http, "return")[0][1]],
        ["301", "https://$host:8443$request_uri"]]
    assert not _directive(https, "if")
    assert not _directive(https, "add_header")  # no HSTS unless asked


def test_redirect_on_port_443_has_no_port() -> None:
    http, _ = _servers(render_app(WEB, replace(P, https_port=443)))
    assert ["301", "https://$host$request_uri"] in _directive(http, "return")


def test_vhost_without_https_is_as_before() -> None:
    text = render_app(WEB, replace(P, https_port=0))
    assert len(_servers(text)) == 1
    assert "ssl" not in text and "acme" not in text and not _directive(text, "if")


def test_idle_app_still_answers_challenges_and_redirects() -> None:
    http, https = _servers(render_app(Route("idle", ("idle.example.com",)), P))
    assert ["301", "https://$host:8443$request_uri"] in _directive(http, "return")
    assert ["^~", "/.well-known/acme-challenge/"] in _directive(https, "location")
    assert "503" in [a[0] for a in _directive(https, "return")]


@pytest.mark.parametrize(("settings", "header"), [
    ((("hsts", "true"),), '"max-age=15724800; includeSubDomains"'),
    ((("hsts", "true"), ("hsts-max-age", "300"), ("hsts-include-subdomains", "false")),
     '"max-age=300"'),
    ((("hsts", "true"), ("hsts-preload", "true"), ("hsts-max-age", "31536000")),
     '"max-age=31536000; includeSubDomains; preload"'),
    ((("hsts", "false"), ("hsts-preload", "true")), None),
])
def test_hsts_only_on_the_https_server(settings: tuple[tuple[str, str], ...],
                                       header: str | None) -> None:
    http, https = _servers(render_app(replace(WEB, settings=settings), P))
    assert not _directive(http, "add_header")
    want = [["Strict-Transport-Security", header, "always"]] if header else []
    assert _directive(https, "add_header") == want


@pytest.mark.parametrize("pair", [("hsts", "yes"), ("hsts-max-age", "1d"),
                                  ("hsts-max-age", "99999999999"), ("hsts-preload", "on"),
                                  ("hsts-include-subdomains", "1; root /")])
def test_bad_hsts_settings_refused(pair: tuple[str, str]) -> None:
    with pytest.raises(InvalidArgument):
        render_app(replace(WEB, settings=(pair,)), P)


def test_params_https_port_from_env() -> None:
    ctx = load_context({"PAAS_ROOT": "/srv/p"})
    assert params_from_env(ctx, {}).https_port == 443
    assert params_from_env(ctx, {"PAAS_HTTPS_PORT": "8443"}).https_port == 8443
    for off in ("0", "off", "OFF"):
        assert params_from_env(ctx, {"PAAS_HTTPS_PORT": off}).https_port == 0
    for bad in ("443;", "70000", "-1", "https"):
        with pytest.raises(InvalidArgument, match="PAAS_HTTPS_PORT"):
            params_from_env(ctx, {"PAAS_HTTPS_PORT": bad})
    p = params_from_env(ctx, {})
    assert p.acme_webroot == "/srv/p/nginx/acme"
    assert p.acme_challenge_dir == "/srv/p/nginx/acme/.well-known/acme-challenge"
    assert p.cert_file("web") == "/srv/p/certs/web/tls.pem"
    with pytest.raises(InvalidArgument):
        p.cert_file("../x")


HTTPS_TEMPLATE = """server {
  listen {{ https_listen }} ssl http2;
  server_name {{ domains|join }};
  ssl_certificate {{ cert_file }};
  ssl_certificate_key {{ cert_file }};
  location ^~ /.well-known/acme-challenge/ { root {{ acme_webroot }}; }
  location / { return 200; }
}
"""


def test_app_template_may_serve_https_with_its_own_certificate() -> None:
    text = render_app(replace(WEB, template=HTTPS_TEMPLATE), P)
    assert _directive(text, "ssl_certificate") == [[CERT]]


@pytest.mark.parametrize("swap", [
    ("{{ cert_file }};", '"/srv/paas root/certs/other/tls.pem";'),
    ("root {{ acme_webroot }}", 'root "/etc"'),
    ("ssl http2;", "ssl http2 default_server;"),
    ("{{ https_listen }} ssl", "127.0.0.1:9999 ssl"),
    ("server_name", "ssl_protocols SSLv3; server_name"),
    ("server_name", "ssl_reject_handshake off; server_name"),
])
def test_app_template_tls_outside_its_own_refused(swap: tuple[str, str]) -> None:
    template = HTTPS_TEMPLATE.replace(*swap)
    assert template != HTTPS_TEMPLATE
    with pytest.raises(InvalidArgument, match="not allowed"):
        render_app(replace(WEB, template=template), P)


def test_app_template_tls_refused_without_https() -> None:
    with pytest.raises(InvalidArgument):
        render_app(replace(WEB, template=HTTPS_TEMPLATE), replace(P, https_port=0))
