"""Properties of what reaches nginx: domain validation, the ``safe`` filters and the
rendered vhost.

For any input the validators accept, the rendered config has exactly the directives
and blocks of a config rendered from harmless values (same upstream count, same
settings): no value can add a directive, a block or an argument. ``nginx -t`` of a
sample is in tests/integration/proxy/test_proxy_render_fuzz.py.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st

from paas.apps.settings import validate_setting as validate_app_setting
from paas.apps.validate import validate_app_name, validate_domain
from paas.errors import InvalidArgument
from paas.model import Route, Upstream
from paas.proxy import ProxyParams, render_app, render_main, safe
from paas.proxy.params import templates_dir

from . import nginxconf
from .strategies import PROPERTY, nasty_text

P = ProxyParams(nginx_dir="/srv/paas root/nginx", http_addr="127.0.0.1", http_port=8080,
                templates=templates_dir())

# --- validators ------------------------------------------------------------------------

_LABEL = st.from_regex(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?", fullmatch=True)
_DOMAIN_LIKE = st.builds(
    lambda wild, labels, dot: ("*." if wild else "") + ".".join(labels) + ("." if dot else ""),
    st.booleans(), st.lists(_LABEL, min_size=1, max_size=4), st.booleans())
_ANY_DOMAIN = st.one_of(_DOMAIN_LIKE, nasty_text(40),
                        st.builds(lambda d, t: d + t, _DOMAIN_LIKE, nasty_text(3)),
                        st.builds(lambda t, d: t + d, nasty_text(3), _DOMAIN_LIKE))

_UNQUOTED_BAD = set(" \t\r\n\v\f;{}\"'$#\\") | {chr(c) for c in range(32)} | {"\x7f"}


def _accepted(validate: Any, value: object) -> str | None:
    try:
        out = validate(value)
    except InvalidArgument as err:
        assert err.message and err.hint
        return None
    assert isinstance(out, str)
    return out


@PROPERTY
@given(_ANY_DOMAIN)
def test_a_valid_domain_is_a_plain_hostname(text: str) -> None:
    d = _accepted(validate_domain, text)
    if d is None:
        return
    assert d == d.lower() and d.isascii() and not d.endswith(".") and len(d) <= 253
    assert not set(d) & _UNQUOTED_BAD
    assert validate_domain(d) == d  # normalised once and for all
    assert safe.domain(d) == d  # the nginx filter agrees with the app validator


@PROPERTY
@given(st.one_of(nasty_text(30), _DOMAIN_LIKE, st.from_regex(r"[a-z][a-z0-9-]{0,62}\n?",
                                                            fullmatch=True)))
def test_safe_tokens_cannot_break_out_of_a_directive(text: str) -> None:
    for validate in (safe.app_name, safe.domain, safe.ip, safe.port, safe.size, safe.time,
                     safe.onoff):
        out = _accepted(validate, text)
        if out is not None:
            assert isinstance(out, safe.Safe)
            assert out and not set(out) & _UNQUOTED_BAD, (validate.__name__, out)
            assert nginxconf.tokens(out) == ["\0" + out]


@PROPERTY
@given(nasty_text(60))
def test_quoted_values_are_one_word(text: str) -> None:
    for validate, prefix in ((safe.path, "/"), (safe.text, "")):
        out = _accepted(validate, prefix + text)
        if out is not None:
            assert isinstance(out, safe.Safe)
            (word,) = nginxconf.tokens(out)
            assert word == "\0" + prefix + text
            assert "$" not in out


@PROPERTY
@given(st.sampled_from(sorted(safe.NGINX_SETTINGS)), st.one_of(
    nasty_text(12), st.from_regex(r"[0-9]{1,9}(ms|s|m|h|k|g)?\n?", fullmatch=True)))
def test_settings_accepted_by_both_validators_are_one_token(key: str, value: str) -> None:
    stored = _accepted(lambda v: validate_app_setting("nginx." + key, v), value)
    rendered = _accepted(lambda v: safe.validate_setting(key, v), value)
    if rendered is not None:
        assert not set(rendered) & _UNQUOTED_BAD
    if stored is not None and rendered is not None:
        assert nginxconf.tokens(rendered) == ["\0" + rendered]


# --- the rendered vhost ----------------------------------------------------------------

_APP = st.from_regex(r"[a-z][a-z0-9-]{0,62}", fullmatch=True).filter(
    lambda n: not n.endswith("-"))
_IP = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)).map(str)
_UPSTREAMS = st.lists(st.builds(Upstream, _IP, st.integers(1, 65535)), max_size=4)
_SETTING_VALUES = {
    "client-max-body-size": st.from_regex(r"[0-9]{1,9}[kmgKMG]?", fullmatch=True),
    "proxy-buffering": st.sampled_from(["on", "off"]),
    "proxy-buffer-size": st.from_regex(r"[0-9]{1,9}[kmg]?", fullmatch=True),
    "proxy-connect-timeout": st.from_regex(r"[0-9]{1,9}(ms|s|m|h)?", fullmatch=True),
    "proxy-read-timeout": st.from_regex(r"[0-9]{1,9}(ms|s|m|h)?", fullmatch=True),
    "proxy-send-timeout": st.from_regex(r"[0-9]{1,9}(ms|s|m|h)?", fullmatch=True),
    "x-forwarded-proto-value": st.sampled_from(["http", "https"]),
}
_HARMLESS = {"client-max-body-size": "1m", "proxy-buffering": "on", "proxy-buffer-size": "4k",
             "proxy-connect-timeout": "5s", "proxy-read-timeout": "60s",
             "proxy-send-timeout": "60s", "x-forwarded-proto-value": "https"}


@st.composite
def routes(draw: st.DrawFn) -> Route:
    app = draw(_APP)
    domains = [d for d in draw(st.lists(_ANY_DOMAIN, max_size=4))
               if _accepted(validate_domain, d) is not None]
    keys = draw(st.sets(st.sampled_from(sorted(_SETTING_VALUES))))
    settings = {k: draw(st.one_of(_SETTING_VALUES[k], nasty_text(8))) for k in sorted(keys)}
    settings = {k: v for k, v in settings.items()
                if _accepted(lambda v, k=k: validate_app_setting("nginx." + k, v), v) is not None}
    return Route(validate_app_name(app), tuple(validate_domain(d) for d in domains),
                 tuple(draw(_UPSTREAMS)), tuple(sorted(settings.items())))


def _harmless(route: Route) -> Route:
    return Route("x", tuple(f"d{i}.example" for i in range(len(route.domains))),
                 tuple(Upstream("10.0.0.1", 80) for _ in route.upstreams),
                 tuple((k, _HARMLESS[k]) for k, _ in route.settings))


def _find(tree: tuple[nginxconf.Directive, ...], name: str) -> list[nginxconf.Directive]:
    out = []
    for d in tree:
        if d.name == name:
            out.append(d)
        if d.block:
            out += _find(d.block, name)
    return out


def _render_or_refused(route: Route) -> str | None:
    try:
        return render_app(route, P)
    except InvalidArgument as err:  # a value the nginx filters refuse, said so
        assert err.message.startswith(("invalid ", "nginx setting ")), err.message
        return None


@PROPERTY
@given(routes())
def test_rendered_vhost_has_exactly_the_expected_directives(route: Route) -> None:
    text = _render_or_refused(route)
    assume(text is not None)
    assert text is not None
    tree = nginxconf.parse(text)
    expected = nginxconf.parse(render_app(_harmless(route), P))
    assert nginxconf.shape(tree) == nginxconf.shape(expected)
    assert [len(d.args) for d in _find(tree, "server") + _find(tree, "server_name")] == [
        len(d.args) for d in _find(expected, "server") + _find(expected, "server_name")]

    if route.domains:
        assert _find(tree, "server_name")[0].args == route.domains
    servers = [d.args[0] for d in _find(tree, "server") if d.block is None]
    assert servers == [f"[{u.host}]:{u.port}" if ipaddress.ip_address(u.host).version == 6
                       else f"{u.host}:{u.port}" for u in route.upstreams]
    if route.upstreams and route.domains:
        assert _find(tree, "proxy_pass")[0].args == (f"http://paas-{route.app}",)


@PROPERTY
@given(st.one_of(st.just("auto"), st.integers(1, 999).map(str)), _IP,
       st.integers(1, 65535))
def test_main_config_shape(workers: str, addr: str, port: int) -> None:
    params = ProxyParams(nginx_dir="/r/nginx", http_addr=addr, http_port=port,
                         worker_processes=workers, templates=templates_dir())
    tree = nginxconf.parse(render_main(params))
    assert nginxconf.shape(tree) == nginxconf.shape(nginxconf.parse(render_main(P)))


# --- an app's own template -------------------------------------------------------------

_JINJA = st.lists(st.one_of(
    nasty_text(10),
    st.sampled_from(["{{ listen }}", "{{ domains|join }}", "{{ app }}", "{{ 1/0 }}",
                     "{{ domains[9] }}", "{{ upstreams[0].host|ip }}", "{{ 'x' * 99999 }}",
                     "{% for d in domains %}{{ d }}{% endfor %}", "{{ settings|size }}",
                     "{{ access_log }}", "{{ nope }}", "{{ app.__class__ }}", "{%", "}}",
                     "{{ app|join }}", "{{ [app]|join }}", "{{ range(10**9)|length }}",
                     "{{ page_502|text }}", "{{ '%s'|format(app) }}", "{{ app ~ ';' }}",
                     "server { listen {{ listen }}; server_name {{ domains|join }}; }",
                     "include /etc/passwd;", "{{ app|int }}", "{{ -1|port }}", "{{ 'x' * 10**10 }}", "{{ [1] * 2**40 }}",
                     "{{ 10**64**64**64**64**64 }}", "{{ 2 ** 8 }}"])),
    max_size=6).map("".join)


@PROPERTY
@given(_JINJA)
def test_any_app_template_renders_or_is_refused(template: str) -> None:
    route = Route("web", ("web.example.com",), (Upstream("10.0.0.2", 5000),),
                  template=template or "# empty")
    try:
        text = render_app(route, P)
    except InvalidArgument as err:
        assert err.message
        return
    for directive in ("include", "root", "load_module"):
        assert not _find(nginxconf.parse(text), directive) if _parses(text) else True


def _parses(text: str) -> bool:
    try:
        nginxconf.parse(text)
    except nginxconf.ParseError:
        return False
    return True


def test_templates_dir_is_the_shipped_one() -> None:
    assert os.path.isfile(os.path.join(templates_dir(), "app.conf.j2"))


def test_app_template_expressions_are_bounded() -> None:
    for template in ("{{ 'x' * 10**10 }}", "{{ [1] * 2**40 }}", "{{ 10**64**64**64 }}",
                     "{{ 1/0 }}", "{{ range(10**9)|length }}"):
        try:
            render_app(Route("web", ("web.example.com",), template=template), P)
        except InvalidArgument as err:
            assert err.message.startswith("the nginx template of app web failed:"), err.message
        else:
            raise AssertionError(f"{template} was rendered")


def test_proxy_buffer_size_is_one_nginx_accepts() -> None:
    for ok in ("1k", "1024", "8k", "16m", "16M"):
        assert safe.validate_setting("proxy-buffer-size", ok) == ok.lower()
    for bad in ("0", "1000", "17m", "1g", "999999999"):
        assert _accepted(lambda v: safe.validate_setting("proxy-buffer-size", v), bad) is None
