"""The pure renderers of paas.cli.apps: config listing, shell exports, reports."""

from __future__ import annotations

import shlex

from paas.cli.apps import config_lines, push_hint, report_lines, shell_exports, shell_quote


def test_config_lines_align_like_dokku() -> None:
    assert config_lines({"A": "1", "LONG_KEY": "x y", "E": ""}) == [
        "A:         1", "LONG_KEY:  x y", "E:"]
    assert config_lines({}) == []


def test_config_lines_indent_continuations() -> None:
    assert config_lines({"K": "one\ntwo"}) == ["K:  one", "    two"]


def test_shell_quote_roundtrips_through_shlex() -> None:
    for value in ["", "plain", "it's", "''", "a\nb", "$(x) `y` \\ \"z\"", "ünï ✓", "'a'b'"]:
        assert shlex.split(shell_quote(value)) == [value]


def test_shell_exports() -> None:
    assert shell_exports({"A": "it's", "B": ""}) == "export A='it'\\''s'\nexport B=''\n"


def test_report_lines() -> None:
    assert report_lines("web app information", [("App name", "web"), ("Config vars", "0")]) == [
        "=====> web app information", "       App name:    web", "       Config vars: 0"]


def test_push_hint() -> None:
    assert push_hint("web", "paas.example.com") == "git remote add paas paas@paas.example.com:web"
