"""The host CA bundle for build containers: the setting, the env, the mount stubs."""

from __future__ import annotations

from pathlib import Path

import pytest

from paas.build import hostca
from paas.errors import InvalidArgument
from paas.model import BindPolicy


def test_the_setting(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    assert hostca.parse_bundle_setting(str(bundle)) == str(bundle)
    for off in ("off", "OFF", " false ", "no", "0", "none"):
        assert hostca.parse_bundle_setting(off) is None
    default = hostca.parse_bundle_setting("")
    assert default == (hostca.DEFAULT_BUNDLE if Path(hostca.DEFAULT_BUNDLE).is_file() else None)
    for bad in ("relative/ca.pem", str(tmp_path / "missing.pem"), str(tmp_path)):
        with pytest.raises(InvalidArgument, match="PAAS_BUILD_CA_BUNDLE") as err:
            hostca.parse_bundle_setting(bad)
        assert "off" in err.value.hint


def test_bind_and_env() -> None:
    b = hostca.ca_bind("/etc/ssl/certs/ca-certificates.crt")
    assert (b.target, b.readonly, b.policy) == (hostca.CA_TARGET, True, BindPolicy.INTERNAL)
    env = hostca.ca_env(("A=1", "PIP_CERT=/mine.pem"))
    assert env[:2] == ("A=1", "PIP_CERT=/mine.pem")  # the build's own value wins
    got = dict(e.split("=", 1) for e in env[2:])
    assert set(got) == set(hostca.CA_ENV) - {"PIP_CERT"}
    assert set(got.values()) == {hostca.CA_TARGET}
    env = hostca.ca_env((), ("SSL_CERT_FILE=/etc/ssl/mine.pem",))  # the image's ENV
    assert not any(e.startswith("SSL_CERT_FILE=") for e in env) and len(env) == 5


def _tree(root: Path, rels: list[str]) -> None:
    for rel in rels:
        (root / rel).mkdir(parents=True, exist_ok=True)


def test_stubs_runc_made_are_dropped_from_the_layer(tmp_path: Path) -> None:
    rootfs, upper = tmp_path / "rootfs", tmp_path / "upper"
    _tree(rootfs, ["run", "etc"])  # the image has /run, not /run/paas
    stubs = hostca.Stubs(str(rootfs))
    assert stubs.missing == ["run/paas", "run/paas/ca-certificates.crt"]
    (upper / "run" / "paas").mkdir(parents=True)  # what runc made for the mount
    (upper / "run" / "paas" / "ca-certificates.crt").touch()
    (upper / "run" / "lock").mkdir()  # the step's own
    stubs.drop(str(upper))
    assert sorted(p.name for p in (upper / "run").iterdir()) == ["lock"]


def test_stubs_keep_what_the_step_wrote_there(tmp_path: Path) -> None:
    rootfs, upper = tmp_path / "rootfs", tmp_path / "upper"
    rootfs.mkdir()
    stubs = hostca.Stubs(str(rootfs))
    assert stubs.missing == ["run", "run/paas", "run/paas/ca-certificates.crt"]
    (upper / "run" / "paas").mkdir(parents=True)
    (upper / "run" / "paas" / "ca-certificates.crt").touch()
    (upper / "run" / "paas" / "state").write_text("mine")
    stubs.drop(str(upper))
    assert (upper / "run" / "paas" / "state").read_text() == "mine"
    assert not (upper / "run" / "paas" / "ca-certificates.crt").exists()
    # and nothing to do when the image has it all already
    _tree(rootfs, ["run/paas"])
    (rootfs / "run" / "paas" / "ca-certificates.crt").touch()
    assert hostca.Stubs(str(rootfs)).missing == []


def test_the_bundle_of_an_app_that_opted_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from paas.errors import FailedPrecondition

    bundle = tmp_path / "ca.crt"
    bundle.write_text("PEM")
    assert hostca.app_bundle(str(bundle)) == str(bundle)  # PAAS_BUILD_CA_BUNDLE's file
    default = tmp_path / "default.crt"
    default.write_text("PEM")
    monkeypatch.setattr(hostca, "DEFAULT_BUNDLE", str(default))
    # off is what builds get; an app's own opt-in still gets the host's bundle
    assert hostca.app_bundle("off") == hostca.app_bundle("") == str(default)
    default.unlink()
    with pytest.raises(FailedPrecondition, match="missing") as err:
        hostca.app_bundle("off")
    assert "host-ca-bundle false" in err.value.hint
    with pytest.raises(InvalidArgument):
        hostca.app_bundle(str(tmp_path / "nope.crt"))
