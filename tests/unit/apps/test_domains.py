"""Domain ownership (issue 12, item 6): the public suffix list parser, which names can be
claimed, and the rules of ``AppStore`` when names of apps meet (temp SQLite, the
system's /usr/share/publicsuffix list where named, a small list elsewhere)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from paas.apps.domains import check_claimable, check_global, covers, notes
from paas.apps.publicsuffix import DEFAULT_PATH, ICANN, IMPLICIT, PRIVATE, SuffixList, load
from paas.apps.store import AppStore
from paas.errors import Conflict, FailedPrecondition, InvalidArgument
from paas.state import connect

SMALL = """\
// ===BEGIN ICANN DOMAINS===
com
uk
co.uk
*.ck
!www.ck
// idn
公司.cn
cn
// ===END ICANN DOMAINS===
// ===BEGIN PRIVATE DOMAINS===
github.io
*.compute.example.net
// ===END PRIVATE DOMAINS===
"""


@pytest.fixture(scope="module")
def psl() -> SuffixList:
    return SuffixList(SMALL)


@pytest.mark.parametrize(("domain", "suffix", "section"), [
    ("example.com", "com", ICANN),
    ("a.b.example.com", "com", ICANN),
    ("com", "com", ICANN),
    ("example.co.uk", "co.uk", ICANN),
    ("co.uk", "co.uk", ICANN),
    ("foo.ck", "foo.ck", ICANN),  # *.ck
    ("a.foo.ck", "foo.ck", ICANN),
    ("www.ck", "ck", ICANN),  # !www.ck: registrable
    ("a.www.ck", "ck", ICANN),
    ("xn--55qx5d.cn", "xn--55qx5d.cn", ICANN),  # 公司.cn in punycode
    ("me.github.io", "github.io", PRIVATE),
    ("x.y.compute.example.net", "y.compute.example.net", PRIVATE),
    ("localhost", "localhost", IMPLICIT),  # the implicit "*" rule
    ("app.localhost", "localhost", IMPLICIT),
    ("Example.COM.", "com", ICANN),
])
def test_public_suffix(psl: SuffixList, domain: str, suffix: str, section: str) -> None:
    assert psl.public_suffix(domain) == (suffix, section)


@pytest.mark.parametrize("domain", ["com", "*.com", "co.uk", "*.co.uk", "uk", "localhost",
                                    "*.localhost", "github.io", "*.github.io", "foo.ck",
                                    "*.foo.ck", "lan", "*.lan"])
def test_public_suffixes_and_their_wildcards_are_nobodys(psl: SuffixList, domain: str) -> None:
    with pytest.raises(InvalidArgument, match="public suffix") as exc:
        check_claimable(domain, psl)
    assert exc.value.hint


@pytest.mark.parametrize("domain", ["example.com", "*.example.com", "example.co.uk",
                                    "*.example.co.uk", "app.localhost", "*.app.localhost",
                                    "me.github.io", "www.ck", "x.lan"])
def test_names_below_a_suffix_can_be_claimed(psl: SuffixList, domain: str) -> None:
    assert check_claimable(domain, psl) == domain


def test_global_domains(psl: SuffixList) -> None:
    for bad in ("com", "co.uk", "foo.ck"):
        with pytest.raises(InvalidArgument, match="public suffix"):
            check_global(bad, psl)
    # not ICANN suffixes: the default, a LAN name, a private suffix meant for this
    for ok in ("localhost", "lan", "github.io", "apps.example.com"):
        assert check_global(ok, psl) == ok


def test_the_system_list_refuses_what_the_issue_names() -> None:
    real = load(DEFAULT_PATH)
    assert len(real.rules) > 5000
    for bad in ("com", "*.com", "co.uk", "*.co.uk", "localhost", "*.localhost"):
        with pytest.raises(InvalidArgument):
            check_claimable(bad, real)
    for ok in ("sec-c.localhost", "example.com", "*.example.co.uk"):
        check_claimable(ok, real)


def test_a_missing_list_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FailedPrecondition, match="public suffix list .* is missing") as exc:
        load(str(tmp_path / "missing.dat"))
    assert "apt-get install publicsuffix" in exc.value.hint


def test_wildcard_coverage() -> None:
    assert covers("*.example.com", "a.example.com")
    assert covers("*.example.com", "a.b.example.com")  # nginx: any depth
    assert covers("*.example.com", "*.a.example.com")
    assert not covers("*.example.com", "example.com")
    assert not covers("*.example.com", "*.example.com")
    assert not covers("*.example.com", "aexample.com")
    assert not covers("a.example.com", "b.a.example.com")


def test_notes_say_exact_names_of_other_apps_win() -> None:
    claims = {"b.example.com": "b", "web.localhost": "web", "*.example.org": "c"}
    assert notes("web", ["*.example.com"], claims) == [
        "b.example.com stays with app b: exact names win over *.example.com"]
    assert notes("web", ["x.example.org"], claims) == [
        ("x.example.org was served by app c's *.example.org: now by web (exact and longer "
        "names win)")]
    assert notes("c", ["y.example.org"], claims) == []  # its own wildcard
    assert notes("web", ["z.example.net"], claims) == []


# -- the store ---------------------------------------------------------------------------

@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    c = connect(str(tmp_path / "state.db"))
    yield c
    c.close()


@pytest.fixture
def store(conn: sqlite3.Connection, psl: SuffixList) -> AppStore:
    return AppStore(conn, suffixes=psl)


def test_the_attack_another_apps_default_name_before_that_app_exists(store: AppStore) -> None:
    """``domains:add sec-a sec-c.localhost``, then sec-c is created (its first push):
    refused, so the push never prints a URL nginx answers from sec-a."""
    store.create("sec-a")
    store.add_domains("sec-a", ["sec-c.localhost"])
    with pytest.raises(Conflict, match="default domain sec-c.localhost of app sec-c belongs "
                                       "to app sec-a") as exc:
        store.create("sec-c")
    assert "domains:remove sec-a sec-c.localhost" in exc.value.hint
    assert not store.exists("sec-c")
    store.remove_domains("sec-a", ["sec-c.localhost"])
    store.create("sec-c")
    assert store.effective_domains("sec-c") == ["sec-c.localhost"]


def test_an_existing_apps_default_name_is_its_own(store: AppStore) -> None:
    store.create("web")
    store.create("api")
    with pytest.raises(Conflict, match="domain web.localhost belongs to app web") as exc:
        store.add_domains("api", ["web.localhost"])
    assert "default domain of app web" in exc.value.hint
    store.remove_domains("web", ["web.localhost"])  # its default vhost off: still reserved
    assert store.effective_domains("web") == []
    with pytest.raises(Conflict):
        store.set_domains("api", ["web.localhost"])
    assert store.owner_of("web.localhost") == "web"
    assert store.owner_of("nobody.localhost") is None
    store.add_domains("web", ["web.localhost"])  # its own: fine
    assert store.owner_of("web.localhost") == "web"


def test_renames_and_global_domains_that_would_collide_are_refused(store: AppStore) -> None:
    store.create("web")
    store.create("old")
    store.add_domains("web", ["new.localhost", "api.apps.example.com"])
    with pytest.raises(Conflict, match="new.localhost of app new belongs to app web"):
        store.rename("old", "new")
    assert store.exists("old")
    store.create("api")
    with pytest.raises(Conflict, match="api.apps.example.com of app api belongs to app web"):
        store.set_global_domain("apps.example.com")
    assert store.global_domain() is None
    store.set_global_domain("other.example.com")
    store.add_domains("web", ["api.localhost"])  # no one's default under other.example.com
    with pytest.raises(Conflict, match="api.localhost of app api belongs to app web"):
        store.set_global_domain(None)  # back to APP.localhost
    assert store.global_domain() == "other.example.com"


def test_public_suffixes_are_refused_and_nothing_is_written(store: AppStore) -> None:
    store.create("web")
    for bad in ("*.com", "com", "co.uk", "*.co.uk", "localhost", "*.localhost"):
        with pytest.raises(InvalidArgument, match="public suffix"):
            store.add_domains("web", ["ok.example.com", bad])
        assert store.domains("web") == []
    for bad in ("com", "co.uk"):
        with pytest.raises(InvalidArgument, match="public suffix"):
            store.set_global_domain(bad)


def test_one_wildcard_one_app_and_exact_names_coexist(store: AppStore) -> None:
    store.create("a")
    store.create("b")
    store.add_domains("a", ["*.example.com"])
    with pytest.raises(Conflict, match="belongs to app a"):
        store.add_domains("b", ["*.example.com"])
    store.add_domains("b", ["b.example.com", "*.x.example.com"])
    claims = store.claims()
    assert claims == {"a.localhost": "a", "*.example.com": "a", "b.localhost": "b",
                      "b.example.com": "b", "*.x.example.com": "b"}
    assert len(claims) == len({d for app in ("a", "b") for d in store.effective_domains(app)})


def test_a_database_from_before_the_rules_serves_each_name_once(
        store: AppStore, conn: sqlite3.Connection) -> None:
    store.create("sec-a")
    store.create("sec-c")
    conn.execute("INSERT INTO app_domains (domain, app) VALUES ('sec-c.localhost', 'sec-a')")
    conn.commit()
    assert store.effective_domains("sec-a") == ["sec-a.localhost"]  # the default's app wins
    assert store.effective_domains("sec-c") == ["sec-c.localhost"]
    assert store.claims()["sec-c.localhost"] == "sec-c"
