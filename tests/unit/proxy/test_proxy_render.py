"""The pure renderers: main config, default vhost, app templates (sandboxed, linted)."""

from __future__ import annotations

import pytest

from paas.errors import InvalidArgument
from paas.model import Route, Upstream
from paas.proxy import ProxyParams, render_app, render_main
from paas.proxy.lint import directives
from paas.proxy.params import templates_dir

P = ProxyParams(nginx_dir="/srv/paas root/nginx", http_addr="127.0.0.1", http_port=8080,
                templates=templates_dir())
WEB = Route("web", ("web.example.com", "*.web.example.org"),
            (Upstream("10.88.0.2", 5000), Upstream("10.88.0.3", 5000)))


def _directive(text: str, name: str) -> list[list[str]]:
    return [args for n, args in directives(text) if n == name]


def test_main_config() -> None:
    text = render_main(P)
    assert 'pid "/srv/paas root/nginx/nginx.pid";' in text
    assert 'error_log "/srv/paas root/nginx/logs/error.log" warn;' in text
    assert 'include "/srv/paas root/nginx/apps/*.conf";' in text
    assert "map $http_upgrade $connection_upgrade" in text
    assert _directive(text, "listen") == [["127.0.0.1:8080", "default_server"]]
    assert "return 404" in text
    assert _directive(text, "user") == [["nobody", "nogroup"]]
    for d in ("client_body_temp_path", "proxy_temp_path"):
        assert _directive(text, d)[0][0].startswith('"/srv/paas root/nginx/tmp/')


def test_main_config_explicit_includes_and_ipv6() -> None:
    p6 = ProxyParams(nginx_dir="/r/nginx", http_addr="::", http_port=80, user=None,
                     templates=templates_dir())
    text = render_main(p6, ["/r/nginx/apps/a.conf", "/r/nginx/apps/.b.conf.x"])
    assert _directive(text, "include") == [['"/r/nginx/apps/a.conf"'],
                                           ['"/r/nginx/apps/.b.conf.x"']]
    assert _directive(text, "listen") == [["[::]:80", "default_server"]]
    assert not _directive(text, "user")


def test_vhost() -> None:
    text = render_app(WEB, P)
    assert "upstream paas-web {" in text
    assert _directive(text, "server")[:2] == [["10.88.0.2:5000", "max_fails=0"],
                                             ["10.88.0.3:5000", "max_fails=0"]]
    assert _directive(text, "keepalive") == [["16"]]
    assert _directive(text, "server_name") == [["web.example.com", "*.web.example.org"]]
    assert _directive(text, "listen") == [["127.0.0.1:8080"]]
    assert _directive(text, "proxy_pass") == [["http://paas-web"]]
    assert _directive(text, "proxy_http_version") == [["1.1"]]
    headers = {args[0]: args[1] for args in _directive(text, "proxy_set_header")}
    assert headers == {"Host": "$http_host", "Upgrade": "$http_upgrade",
                       "Connection": "$connection_upgrade",
                       "X-Forwarded-For": "$proxy_add_x_forwarded_for",
                       "X-Forwarded-Proto": "$scheme", "X-Forwarded-Port": "$server_port",
                       "X-Request-Start": '"t=${msec}"'}
    assert _directive(text, "proxy_next_upstream") == [["error", "timeout", "http_502"]]
    assert _directive(text, "client_max_body_size") == [["1m"]]
    assert _directive(text, "access_log") == [['"/srv/paas root/nginx/logs/web-access.log"',
                                               "paas"]]
    assert _directive(text, "error_log") == [['"/srv/paas root/nginx/logs/web-error.log"']]
    assert _directive(text, "error_page") == [["502", "504", "@paas_502"]]
    assert "return 503" not in text


def test_vhost_without_upstreams_answers_503() -> None:
    text = render_app(Route("idle", ("idle.example.com",)), P)
    assert "upstream" not in text and "proxy_pass" not in text
    assert [a[0] for a in _directive(text, "return")] == ["502", "503"]
    assert "Service Unavailable" in text


def test_vhost_without_domains_serves_nothing() -> None:
    text = render_app(Route("hidden", (), (Upstream("10.88.0.2", 5000),)), P)
    assert not _directive(text, "server_name")


def test_settings_reach_the_vhost() -> None:
    route = Route("web", ("web.example.com",), WEB.upstreams,
                  settings=(("client-max-body-size", "50m"), ("proxy-read-timeout", "300s"),
                            ("proxy-buffering", "off"), ("x-forwarded-proto-value", "https")))
    text = render_app(route, P)
    assert _directive(text, "client_max_body_size") == [["50m"]]
    assert _directive(text, "proxy_read_timeout") == [["300s"]]
    assert _directive(text, "proxy_buffering") == [["off"]]
    assert ["X-Forwarded-Proto", "https"] in _directive(text, "proxy_set_header")
    assert not _directive(text, "proxy_connect_timeout")


@pytest.mark.parametrize("route", [
    Route("web", ("a.com; include /etc/passwd",)),
    Route("web", ("a.com\n}",)),
    Route("web", ("a.com",), (Upstream("10.0.0.1;", 80),)),
    Route("web", ("a.com",), (Upstream("10.0.0.1", 0),)),
    Route("web", ("a.com",), settings=(("client-max-body-size", "1m; root /"),)),
    Route("web", ("a.com",), settings=(("proxy-read-timeout", "1s}"),)),
    Route("web", ("a.com",), settings=(("unknown-key", "x"),)),
    Route("we;b", ("a.com",)),
    Route("../etc", ("a.com",)),
])
def test_injections_refused(route: Route) -> None:
    with pytest.raises(InvalidArgument):
        render_app(route, P)


APP_TEMPLATE = """upstream {{ upstream_name }} {
{% for u in upstreams %}  server {{ u.host }}:{{ u.port }};
{% endfor %}}
server {
  listen {{ listen }};
  server_name {{ domains|join }} {{ "custom.example.com"|domain }};
  access_log {{ access_log }};
  location / { proxy_pass http://{{ upstream_name }}; add_header X-App {{ app }}; }
}
"""


def test_app_template_renders_with_the_same_variables() -> None:
    text = render_app(Route("web", WEB.domains, WEB.upstreams, template=APP_TEMPLATE), P)
    assert _directive(text, "server_name") == [["web.example.com", "*.web.example.org",
                                                "custom.example.com"]]
    assert _directive(text, "add_header") == [["X-App", "web"]]


@pytest.mark.parametrize("template", [
    "server_name {{ domains|join ~ '; include /etc/passwd' }};",  # plain str: refused
    "server_name {{ 'evil;' }};",
    "server_name {{ app|upper }};",
    "server_name {{ app[0:2] }};",
    "server_name {{ domains }};",
    "server_name {{ 'a.com; root /'|domain }};",
    "{{ app.__class__.__mro__ }}",
    "{{ ''.__class__.__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ nosuchvariable|domain }}",
    "{% for %}",
])
def test_app_template_cannot_emit_unvalidated_values(template: str) -> None:
    with pytest.raises(InvalidArgument):
        render_app(Route("web", WEB.domains, WEB.upstreams, template=template), P)


@pytest.mark.parametrize("body", [
    "root /;", "alias /etc/;", "include /etc/nginx/nginx.conf;", '"root" /;',
    "access_log /etc/cron.d/x;", "error_log /tmp/x;", "listen 22;",
    "listen {{ listen }} default_server;", "ssl_certificate /etc/shadow;",
    "auth_basic_user_file /etc/shadow;", "load_module x.so;", "proxy_cache_path /tmp/c;",
    "perl_modules /x;", "client_body_temp_path /etc;",
])
def test_app_template_directives_outside_the_vhost_refused(body: str) -> None:
    template = "server { listen {{ listen }}; server_name {{ domains|join }}; " + body + " }"
    with pytest.raises(InvalidArgument, match="not allowed"):
        render_app(Route("web", WEB.domains, WEB.upstreams, template=template), P)


def test_app_template_may_log_to_its_own_files() -> None:
    template = ("server { listen {{ listen }}; server_name {{ domains|join }}; "
                "access_log {{ access_log }} paas; error_log {{ error_log }}; "
                "location / { return 200; } }")
    assert "return 200" in render_app(Route("web", WEB.domains, template=template), P)


def test_params_from_env() -> None:
    from paas.config import load_context
    from paas.proxy import params_from_env

    env = {"PAAS_ROOT": "/srv/p", "PAAS_HTTP_PORT": "8081", "PAAS_HTTP_ADDR": "::1"}
    p = params_from_env(load_context(env), env)
    assert (p.nginx_dir, p.http_port, p.http_addr) == ("/srv/p/nginx", 8081, "::1")
    assert p.app_logs("web") == ("/srv/p/nginx/logs/web-access.log",
                                 "/srv/p/nginx/logs/web-error.log")
    defaults = params_from_env(load_context({"PAAS_ROOT": "/srv/p"}), {"PAAS_ROOT": "/srv/p"})
    assert (defaults.http_port, defaults.http_addr) == (80, "0.0.0.0")
    for bad in ({"PAAS_HTTP_PORT": "80;"}, {"PAAS_HTTP_ADDR": "0.0.0.0;"},
                {"PAAS_NGINX_WORKERS": "2; user root"}):
        with pytest.raises(InvalidArgument):
            params_from_env(load_context({"PAAS_ROOT": "/srv/p"}), {"PAAS_ROOT": "/srv/p", **bad})


def test_comments_and_quotes_in_app_templates_do_not_hide_directives() -> None:
    assert directives('a "x;y" \'z{\'; # root /;\nb;') == [("a", ['"x;y"', "'z{'"]), ("b", [])]
    template = "server { listen {{ listen }}; server_name {{ domains|join }}; # c\n ro\\ot /; }"
    # nginx reads ro\ot as a different (unknown) word: nginx -t refuses it later
    assert "ro\\ot" in render_app(Route("web", WEB.domains, template=template), P)
