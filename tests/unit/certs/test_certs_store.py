"""``paas.certs.store`` on a temp instance root: install, replace, remove; a refused
certificate changes nothing; file modes; the domains a certificate must cover."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from pki import NOW, Pki

from paas import certs
from paas.apps.store import AppStore
from paas.config import Context, load_context
from paas.errors import InvalidArgument, NotFound
from paas.state.db import connect

PKI = Pki()


@pytest.fixture
def ctx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Context]:
    root = tmp_path / "root"
    root.mkdir(mode=0o711)
    monkeypatch.setenv("PAAS_ROOT", str(root))
    c = load_context({"PAAS_ROOT": str(root)})
    conn = connect(c.paths.db)
    store = AppStore(conn)
    store.create("web")
    store.add_domains("web", ["web.example.com"])
    conn.close()
    yield c


def _files(ctx: Context) -> dict[str, bytes]:
    out = {}
    for dirpath, _, names in os.walk(ctx.paths.certs):
        for n in names:
            p = os.path.join(dirpath, n)
            out[os.path.relpath(p, ctx.paths.certs)] = Path(p).read_bytes()
    return out


def test_required_domains_skip_localhost_unless_alone() -> None:
    assert certs.required_domains(["web.localhost", "web.example.com"]) == ["web.example.com"]
    assert certs.required_domains(["web.localhost"]) == ["web.localhost"]


def test_install_info_key_chain_remove(ctx: Context) -> None:
    assert certs.info(ctx, "web") is None
    chain, key = PKI.leaf("web.example.com")
    got = certs.install(ctx, "web", chain, key, source="manual")
    assert got.domains == ("web.example.com",) and got.source == "manual"
    assert certs.info(ctx, "web") == got
    assert got.days_left() in (88, 89)
    path = Path(ctx.paths.certs, "web", "tls.pem")
    data = path.read_bytes()
    assert data.startswith(b"-----BEGIN PRIVATE KEY-----") and data.count(b"CERTIFICATE-----") == 4
    assert certs.key_pem(ctx, "web") in data and b"CERTIFICATE" not in certs.key_pem(ctx, "web")
    assert b"PRIVATE KEY" not in certs.chain_pem(ctx, "web")
    assert certs.chain_pem(ctx, "web").count(b"BEGIN CERTIFICATE") == 2
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode in (0o640, 0o600) and path.stat().st_uid == 0 or os.geteuid() != 0
    if os.geteuid() == 0:
        assert mode == 0o640
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o710
        assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o710
    assert list(_files(ctx)) == ["web/tls.pem"]  # nothing left aside

    chain2, key2 = PKI.leaf("web.example.com", "*.example.com")
    again = certs.install(ctx, "web", chain2, key2, source="acme")
    assert again.fingerprint != got.fingerprint and certs.info(ctx, "web") == again

    certs.remove(ctx, "web")
    assert certs.info(ctx, "web") is None and not path.exists()
    with pytest.raises(NotFound, match="has no certificate"):
        certs.remove(ctx, "web")
    with pytest.raises(NotFound):
        certs.key_pem(ctx, "web")


@pytest.mark.parametrize("bad", ["other", "expired", "key", "garbage", "order"])
def test_refused_certificate_changes_nothing(ctx: Context, bad: str) -> None:
    chain, key = PKI.leaf("web.example.com")
    before_info = certs.install(ctx, "web", chain, key, source="manual")
    before = _files(ctx)
    good_chain, good_key = PKI.leaf("web.example.com")
    new_chain, new_key = {
        "other": PKI.leaf("other.example.net"),
        "expired": PKI.leaf("web.example.com", start=NOW - timedelta(days=9),
                            end=NOW - timedelta(days=1)),
        "key": (good_chain, PKI.leaf("web.example.com")[1]),
        "garbage": (b"garbage", good_key),
        "order": (good_chain.split(b"-----END CERTIFICATE-----\n")[1]
                  + PKI.leaf_only(good_chain), good_key),
    }[bad]
    with pytest.raises(InvalidArgument):
        certs.install(ctx, "web", new_chain, new_key, source="manual")
    assert _files(ctx) == before and certs.info(ctx, "web") == before_info


def test_unknown_app_source_and_no_domains(ctx: Context) -> None:
    chain, key = PKI.leaf("web.example.com")
    with pytest.raises(NotFound):
        certs.install(ctx, "nope", chain, key, source="manual")
    with pytest.raises(InvalidArgument, match="unknown certificate source"):
        certs.install(ctx, "web", chain, key, source="stolen")
    with pytest.raises(NotFound):
        certs.remove(ctx, "nope")
    conn = connect(ctx.paths.db)
    AppStore(conn).create("bare")
    AppStore(conn).set_domains("bare", [])
    AppStore(conn).set_setting("bare", "default-domain", "off")
    conn.close()
    with pytest.raises(InvalidArgument, match="no domains"):
        certs.install(ctx, "bare", chain, key, source="manual")


def test_the_row_goes_with_the_app(ctx: Context) -> None:
    chain, key = PKI.leaf("web.example.com")
    certs.install(ctx, "web", chain, key, source="manual")
    conn = connect(ctx.paths.db)
    AppStore(conn).rename("web", "www")
    assert certs.info(ctx, "www", conn=conn) is not None
    AppStore(conn).remove("www")
    assert certs.info(ctx, "www", conn=conn) is None
    conn.close()


def test_a_responders_certificate_gets_its_stapling_files(ctx: Context) -> None:
    from paas.certs import ocsp

    d = Path(ctx.paths.certs) / "web"
    chain, key = PKI.leaf("web.example.com", ocsp="http://ocsp.example.net/x")
    info = certs.install(ctx, "web", chain, key, source="manual")
    assert ocsp.marker(str(d)) == ("http://ocsp.example.net/x", info.fingerprint)
    assert stat.S_IMODE((d / "ocsp").stat().st_mode) == 0o600
    assert b"PRIVATE" not in (d / "chain.pem").read_bytes()
    certs.install(ctx, "web", *PKI.leaf("web.example.com"), source="manual")
    assert sorted(p.name for p in d.iterdir()) == ["tls.pem"]
    certs.install(ctx, "web", chain, key, source="manual")
    certs.remove(ctx, "web")
    assert not list(d.iterdir())
