"""Pure config rules of the metadata instructions (Docker's semantics)."""

from __future__ import annotations

import pytest

from paas.build import imageconfig as ic
from paas.errors import InvalidArgument
from paas.model import ImageConfig


def test_env_replaces_in_place_and_appends() -> None:
    cfg = ImageConfig(env=("PATH=/bin", "A=1"))
    out = ic.set_env(cfg, [("A", "2"), ("B", "x y")])
    assert out.env == ("PATH=/bin", "A=2", "B=x y")


def test_env_rejects_bad_names() -> None:
    with pytest.raises(InvalidArgument):
        ic.set_env(ImageConfig(), [("", "x")])


def test_labels_merge_and_sort() -> None:
    out = ic.set_labels(ImageConfig(labels=(("b", "1"),)), [("a", "2"), ("b", "3")])
    assert out.labels == (("a", "2"), ("b", "3"))


@pytest.mark.parametrize(("start", "path", "want"), [
    ("", "/app", "/app"),
    ("/app", "src", "/app/src"),
    ("/app", "../x/./y/", "/x/y"),
    ("/a", "/b", "/b"),
])
def test_workdir_joins_relative_paths(start: str, path: str, want: str) -> None:
    assert ic.with_workdir(ImageConfig(working_dir=start), path).working_dir == want


def test_expose_defaults_to_tcp_and_expands_ranges() -> None:
    out = ic.with_exposed(ImageConfig(exposed_ports=("22/tcp",)), ["80", "53/UDP", "8000-8002"])
    assert out.exposed_ports == ("22/tcp", "53/udp", "80/tcp", "8000/tcp", "8001/tcp",
                                 "8002/tcp")


@pytest.mark.parametrize("bad", ["http", "0", "70000", "90-80", "80/icmp"])
def test_expose_rejects_bad_ports(bad: str) -> None:
    with pytest.raises(InvalidArgument):
        ic.with_exposed(ImageConfig(), [bad])


def test_volumes() -> None:
    assert ic.with_volumes(ImageConfig(volumes=("/a",)), ["/b", "/a"]).volumes == ("/a", "/b")
    with pytest.raises(InvalidArgument):
        ic.with_volumes(ImageConfig(), [""])


@pytest.mark.parametrize("sig", ["SIGTERM", "TERM", "sigquit", "9", "SIGRTMIN+3"])
def test_stop_signal_ok(sig: str) -> None:
    assert ic.validate_stop_signal(sig) == sig


@pytest.mark.parametrize("sig", ["SIGFOO", "0", "99", ""])
def test_stop_signal_bad(sig: str) -> None:
    with pytest.raises(InvalidArgument):
        ic.validate_stop_signal(sig)


def test_shell_form_uses_the_stage_shell() -> None:
    assert ic.shell_form(ImageConfig(), "echo hi") == ("/bin/sh", "-c", "echo hi")
    cfg = ImageConfig(shell=("/bin/bash", "-eo", "pipefail", "-c"))
    assert ic.shell_form(cfg, "x") == ("/bin/bash", "-eo", "pipefail", "-c", "x")


@pytest.mark.parametrize(("text", "ns"), [
    ("30s", 30_000_000_000), ("1m30s", 90_000_000_000), ("500ms", 500_000_000),
    ("1.5s", 1_500_000_000), ("1h", 3_600_000_000_000), ("0", 0),
])
def test_durations(text: str, ns: int) -> None:
    assert ic.parse_duration(text, "interval") == ns


@pytest.mark.parametrize("text", ["", "30", "s", "1x", "1m 2s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(InvalidArgument):
        ic.parse_duration(text, "interval")


def test_healthcheck_forms() -> None:
    cfg = ImageConfig()
    none = ic.healthcheck(("NONE",), False, {}, cfg)
    assert none.test == ("NONE",)
    shell = ic.healthcheck(("CMD", "curl -f localhost"), False,
                           {"interval": "5s", "retries": "3"}, cfg)
    assert shell.test == ("CMD-SHELL", "curl -f localhost")
    assert (shell.interval, shell.retries) == (5_000_000_000, 3)
    exec_form = ic.healthcheck(("CMD", "curl", "-f"), True, {}, cfg)
    assert exec_form.test == ("CMD", "curl", "-f")
    with pytest.raises(InvalidArgument):
        ic.healthcheck(("CMD", "x"), False, {"interval": "1us"}, cfg)
    with pytest.raises(InvalidArgument):
        ic.healthcheck(("CMD", "x"), False, {"retries": "-1"}, cfg)


def test_env_dict_last_wins() -> None:
    assert ic.env_dict(["A=1", "B=x=y", "A=2"]) == {"A": "2", "B": "x=y"}
