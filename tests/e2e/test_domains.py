"""Domain ownership end to end (issue 12, item 6), through real pushes and the
instance's real nginx.

The attack: ``domains:add sec-a sec-c.localhost`` before sec-c exists; sec-c's first
push used to print ``http://sec-c.localhost`` while nginx answered that name from sec-a
("conflicting server name ... ignored"). Now the push is refused naming the owner, and
once the name is free again each name is answered by the one app that owns it. Also:
wildcards next to exact names of other apps, public suffixes refused, and nginx -t of
the live config never warns about a conflicting server name.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable

from e2e_helpers import AppRepo, Platform
from test_deploy import deploy

from paas.config import load_context
from paas.proxy import nginx
from paas.proxy.params import params_from_env


def _body(platform: Platform, host: str) -> tuple[int, str]:
    r = platform.get("", host=host)
    return r.status, r.body.strip()


def _hello(app_repo: Callable[..., AppRepo], version: str) -> AppRepo:
    repo = app_repo("hello")
    repo.commit(version, VERSION=f"{version}\n")
    return repo


def _nginx_warnings(platform: Platform) -> str:
    """``nginx -t`` of the live config, all of its output."""
    params = params_from_env(load_context(platform.env), platform.env)
    res = subprocess.run(nginx.test_argv(params, params.main_conf), capture_output=True,
                         text=True, check=False)
    assert res.returncode == 0, res.stderr
    return res.stderr + res.stdout


def test_a_domain_claimed_before_its_app_exists_is_never_answered_by_two_apps(
        platform: Platform, app_repo: Callable[..., AppRepo]) -> None:
    deploy(platform, _hello(app_repo, "sec-a"), "sec-a")
    platform.cli("domains:add", "sec-a", "sec-c.localhost")  # sec-c does not exist yet
    assert _body(platform, "sec-c.localhost")[1].startswith("sec-a")  # sec-a's, as added

    repo_c = _hello(app_repo, "sec-c")
    res = repo_c.push(platform.http_url("sec-c"), "main")
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    assert "sec-c.localhost of app sec-c belongs to app sec-a" in out, out
    assert "http://sec-c.localhost" not in out  # no URL that another app answers
    assert "sec-c" not in platform.cli("apps:list").stdout.split()

    # the owner frees it: sec-c's push prints its URL and nginx answers it from sec-c
    platform.cli("domains:remove", "sec-a", "sec-c.localhost")
    out = deploy(platform, repo_c, "sec-c")
    assert "http://sec-c.localhost" in out
    assert _body(platform, "sec-c.localhost")[1].startswith("sec-c")
    assert _body(platform, "sec-a.localhost")[1].startswith("sec-a")
    taken = platform.cli("domains:add", "sec-a", "sec-c.localhost", check=False)
    assert taken.returncode != 0
    assert taken.stderr.strip().splitlines() == [
        ("error: domain sec-c.localhost belongs to app sec-c (it is the default domain of "
        "app sec-c; pick another name)")], taken.stderr
    assert "conflicting server name" not in _nginx_warnings(platform)


def test_wildcards_yield_to_exact_names_and_public_suffixes_are_refused(
        platform: Platform, app_repo: Callable[..., AppRepo]) -> None:
    deploy(platform, _hello(app_repo, "wild"), "wild")
    deploy(platform, _hello(app_repo, "exact"), "exact")
    platform.cli("domains:add", "exact", "shop.example.com")
    added = platform.cli("domains:add", "wild", "*.example.com")
    assert "shop.example.com stays with app exact" in added.stdout, added.stdout
    assert _body(platform, "shop.example.com")[1].startswith("exact")
    assert _body(platform, "blog.example.com")[1].startswith("wild")
    assert _body(platform, "a.b.example.com")[1].startswith("wild")
    taken = platform.cli("domains:add", "exact", "*.example.com", check=False)
    assert taken.returncode != 0 and "belongs to app wild" in taken.stderr
    for bad in ("*.com", "com", "co.uk", "*.co.uk", "localhost", "*.localhost"):
        res = platform.cli("domains:add", "exact", bad, check=False)
        assert res.returncode == 2, (bad, res.stderr)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and "public suffix" in lines[0], (bad, res.stderr)
    for bad in ("com", "co.uk"):
        res = platform.cli("domains:set-global", bad, check=False)
        assert res.returncode == 2 and "public suffix" in res.stderr, (bad, res.stderr)
    assert _body(platform, "wild.localhost")[1].startswith("wild")  # defaults unchanged
    assert "conflicting server name" not in _nginx_warnings(platform)
    for app in ("wild", "exact"):
        platform.cli("apps:destroy", app, "--force")
