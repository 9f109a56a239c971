"""letsencrypt:set keys validated; per-app records follow apps (rename, destroy)."""

from __future__ import annotations

import pytest
from fakes import state_db

from paas.acme.model import LETSENCRYPT_PRODUCTION, LETSENCRYPT_STAGING
from paas.acme.store import AcmeStore, validate_email, validate_server
from paas.errors import InvalidArgument


@pytest.mark.parametrize("bad", ["", "admin", "admin@", "@example.com", "a@b", "a b@c.org",
                                 "a@-x.org", "a@example.com\n"])
def test_bad_emails_are_one_line(bad: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        validate_email(bad)
    assert "\n" not in exc.value.render().replace(repr(bad), "")


def test_good_email_and_servers() -> None:
    assert validate_email("ops+tls@example.co.uk") == "ops+tls@example.co.uk"
    assert validate_server("staging") == LETSENCRYPT_STAGING
    assert validate_server("https://127.0.0.1:14000/dir") == "https://127.0.0.1:14000/dir"
    for bad in ("http://insecure.example/dir", "ftp://x", "staging2", "https://a b/"):
        with pytest.raises(InvalidArgument):
            validate_server(bad)


def test_settings_defaults_env_and_unset() -> None:
    store = AcmeStore(state_db())
    s = store.settings({})
    assert s.server == LETSENCRYPT_PRODUCTION and s.email == "" and s.graceperiod == 30 * 86400
    assert store.settings({"PAAS_LETSENCRYPT_RENEW_DAYS": "10"}).graceperiod == 10 * 86400
    with pytest.raises(InvalidArgument):
        store.settings({"PAAS_LETSENCRYPT_RENEW_DAYS": "ten"})
    store.set_setting("server", "staging")
    store.set_setting("graceperiod", "86400")
    assert store.settings({}).server == LETSENCRYPT_STAGING
    assert store.settings({"PAAS_LETSENCRYPT_RENEW_DAYS": "10"}).graceperiod == 86400
    store.unset_setting("server")
    assert store.settings({}).server == LETSENCRYPT_PRODUCTION
    with pytest.raises(InvalidArgument, match="unknown letsencrypt setting"):
        store.set_setting("emial", "a@b.org")


def test_app_records_follow_the_app() -> None:
    conn = state_db()
    conn.execute("INSERT INTO apps (name, created) VALUES ('web', 0)")
    store = AcmeStore(conn)
    store.set_enabled("web", True)
    conn.execute("UPDATE apps SET name = 'www' WHERE name = 'web'")
    assert store.get("web") is None and store.get("www") is not None
    conn.execute("DELETE FROM apps WHERE name = 'www'")
    assert store.list() == []
