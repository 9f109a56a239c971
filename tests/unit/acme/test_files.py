"""The files of ACME: challenge answers (modes, atomic, withdrawn), the account key and
registration, the CA bundle the directory's TLS is checked against."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from paas.acme import account
from paas.acme.webroot import DirWebroot, challenge_dir
from paas.config import load_context
from paas.errors import InvalidArgument


def test_challenge_files_are_published_whole_and_withdrawn(tmp_path: Path) -> None:
    root = tmp_path / "nginx" / "acme"
    gid = 0 if os.geteuid() == 0 else None
    web = DirWebroot(str(root), gid)
    web.publish("tok_-1", "tok_-1.thumb")
    f = Path(challenge_dir(str(root))) / "tok_-1"
    assert f.read_text() == "tok_-1.thumb" and os.listdir(f.parent) == ["tok_-1"]
    mode = stat.S_IMODE(f.stat().st_mode)
    assert mode == (0o640 if gid is not None else 0o600)
    for d in (root, root / ".well-known", f.parent):
        assert stat.S_IMODE(d.stat().st_mode) == (0o710 if gid is not None else 0o700)
    web.withdraw("tok_-1")
    web.withdraw("tok_-1")  # twice: no error
    assert os.listdir(f.parent) == []


def test_account_key_is_made_once_root_only(tmp_path: Path) -> None:
    ctx = load_context({"PAAS_ROOT": str(tmp_path)})
    k1 = account.load_or_create_key(ctx)
    k2 = account.load_or_create_key(ctx)
    assert k1.private_numbers() == k2.private_numbers()
    assert stat.S_IMODE((tmp_path / "acme" / "account.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "acme").stat().st_mode) == 0o700
    assert account.load_registration(ctx, "https://ca/dir") is None
    account.save_registration(ctx, account.Registration("https://ca/dir", "https://ca/a/1", "x@y.z"))
    assert account.load_registration(ctx, "https://ca/dir") == account.Registration(
        "https://ca/dir", "https://ca/a/1", "x@y.z")
    assert account.load_registration(ctx, "https://other/dir") is None  # registers again


def test_ca_bundle_is_the_host_store_plus_the_extra_one(tmp_path: Path) -> None:
    ctx = load_context({"PAAS_ROOT": str(tmp_path)})
    extra = tmp_path / "extra.pem"
    extra.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    path = account.ca_bundle(ctx, {"PAAS_ACME_CA_BUNDLE": str(extra)})
    assert isinstance(path, str) and Path(path).read_text().endswith(extra.read_text())
    if os.path.exists(account.HOST_BUNDLE):
        assert account.ca_bundle(ctx, {}) == account.HOST_BUNDLE
        assert os.path.getsize(path) > extra.stat().st_size
    for bad in (tmp_path / "missing.pem", tmp_path / "acme"):
        with pytest.raises(InvalidArgument, match="PAAS_ACME_CA_BUNDLE"):
            account.ca_bundle(ctx, {"PAAS_ACME_CA_BUNDLE": str(bad)})
