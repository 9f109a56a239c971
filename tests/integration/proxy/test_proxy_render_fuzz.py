"""A sample of generated vhosts through the real ``nginx -t``: whatever the validators
accept (app names, domains, nginx settings, upstreams) renders to a config nginx loads.

The unit tier (tests/unit/property/test_nginx_config.py) checks the directive
structure of many more; this checks that nginx agrees on a sample. Each example is
rendered into a fresh instance nginx dir with the main config including it, as
``Proxy.apply`` tests a candidate.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prereq import unavailable

from paas.apps.settings import validate_setting as validate_app_setting
from paas.apps.validate import validate_app_name, validate_domain
from paas.errors import InvalidArgument
from paas.model import Route, Upstream
from paas.proxy import ProxyParams, nginx, render_app, render_main
from paas.proxy.params import templates_dir

NGINX = os.environ.get("PAAS_NGINX") or shutil.which("nginx") or "/usr/sbin/nginx"
SAMPLE = settings(max_examples=int(os.environ.get("PAAS_NGINX_SAMPLE") or 30), deadline=None,
                  database=None, suppress_health_check=[HealthCheck.too_slow,
                                                        HealthCheck.function_scoped_fixture])

_APP = st.from_regex(r"[a-z][a-z0-9-]{0,62}", fullmatch=True).filter(
    lambda n: not n.endswith("-"))
_LABEL = st.from_regex(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?", fullmatch=True)
_DOMAIN = st.builds(lambda wild, labels, dot: ("*." if wild else "") + ".".join(labels)
                    + ("." if dot else ""),
                    st.booleans(), st.lists(_LABEL, min_size=1, max_size=4), st.booleans())
_IP = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)).map(str)
_TIME = st.from_regex(r"[0-9]{1,9}(ms|s|m|h)?", fullmatch=True)
_SIZE = st.from_regex(r"[0-9]{1,9}[kmgKMG]?", fullmatch=True)
_SETTINGS = {
    "client-max-body-size": _SIZE,
    "proxy-buffer-size": st.one_of(st.integers(1024, 16 << 20).map(str),
                                   st.integers(1, 16384).map(lambda n: f"{n}k"),
                                   st.integers(1, 16).map(lambda n: f"{n}m")),
    "proxy-buffering": st.sampled_from(["on", "off"]),
    "proxy-connect-timeout": _TIME, "proxy-read-timeout": _TIME, "proxy-send-timeout": _TIME,
    "x-forwarded-proto-value": st.sampled_from(["http", "https"]),
}


def _valid_domain(text: str) -> str | None:
    try:
        return validate_domain(text)
    except InvalidArgument:
        return None


@st.composite
def routes(draw: st.DrawFn) -> Route:
    domains = [d for d in map(_valid_domain, draw(st.lists(_DOMAIN, max_size=4))) if d]
    keys = sorted(draw(st.sets(st.sampled_from(sorted(_SETTINGS)))))
    settings_ = {k: validate_app_setting("nginx." + k, draw(_SETTINGS[k])) for k in keys}
    upstreams = draw(st.lists(st.builds(Upstream, _IP, st.integers(1, 65535)), max_size=3))
    return Route(validate_app_name(draw(_APP)), tuple(dict.fromkeys(domains)),
                 tuple(upstreams), tuple(settings_.items()))


@pytest.fixture(scope="module")
def params() -> Iterator[ProxyParams]:
    if not os.path.exists(NGINX) and shutil.which(NGINX) is None:
        unavailable("nginx is not installed (apt-get install nginx)")
    root = tempfile.mkdtemp(prefix="paas-nginx-fuzz-")
    os.chmod(root, 0o755)  # nginx -t checks the workers' temp dirs
    p = ProxyParams(nginx_dir=os.path.join(root, "nginx"), http_addr="127.0.0.1",
                    http_port=18080, worker_processes="1",
                    user=("nobody", "nogroup") if os.geteuid() == 0 else None,
                    nginx=NGINX, templates=templates_dir())
    for d in (p.nginx_dir, p.apps_dir, p.logs_dir, p.tmp_dir):
        os.makedirs(d, mode=0o755, exist_ok=True)
    try:
        yield p
    finally:
        shutil.rmtree(root)


def _nginx_t(p: ProxyParams, vhost: str, app: str) -> subprocess.CompletedProcess[str]:
    conf = p.app_conf(app)
    with open(conf, "w", encoding="utf-8") as f:
        f.write(vhost)
    main = os.path.join(p.nginx_dir, "test.conf")
    with open(main, "w", encoding="utf-8") as f:
        f.write(render_main(p, [conf]))
    try:
        return subprocess.run(nginx.test_argv(p, main), capture_output=True, text=True,
                              timeout=30, check=False)
    finally:
        os.unlink(conf)


@SAMPLE
@given(route=routes())
def test_rendered_vhosts_pass_nginx_t(params: ProxyParams, route: Route) -> None:
    res = _nginx_t(params, render_app(route, params), route.app)
    assert res.returncode == 0, f"{route}\n{res.stderr}"


def test_extreme_values_pass_nginx_t(params: ProxyParams) -> None:
    """The largest values the validators accept, and the longest names."""
    app = "a" + "-b" * 31
    longest = ".".join(["x" * 63] * 3 + ["y" * 61])
    route = Route(app, (longest, "*." + "z" * 63, "localhost"),
                  (Upstream("::1", 65535), Upstream("255.255.255.255", 1)),
                  tuple((k, v) for k, v in (
                      ("client-max-body-size", "999999999g"), ("proxy-buffer-size", "16m"),
                      ("proxy-connect-timeout", "999999999"),
                      ("proxy-read-timeout", "999999999ms"), ("proxy-send-timeout", "0"))))
    res = _nginx_t(params, render_app(route, params), app)
    assert res.returncode == 0, res.stderr
