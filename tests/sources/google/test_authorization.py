"""An admin's OAuth consent for a domain, got, stored and revoked with the real
google-auth-oauthlib and google-auth against the emulator's consent page and token endpoint
over HTTP on loopback (the headless way: the redirected address pasted back); the directory
read with it, and a consent Google ended failing the read in one line."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text

from komeet_sync.emulators.directory import Directory
from komeet_sync.model.domain_config import DomainConfig
from komeet_sync.sources.google.authorization import authorize, revoke
from komeet_sync.sources.google.oauth import ConsentRefused, GrantExpired, OAuthClient
from komeet_sync.sources.google.reader import reader_for
from komeet_sync.store.authorizations import AuthorizationStore
from komeet_sync.store.database import open_database
from komeet_sync.store.domains import DomainStore
from komeet_sync.store.sealed import MissingKey
from tests.support.google_workspace import consent, consent_address, member, user

ADMIN = "admin@acme.com"
GROUP = "all@acme.com"


@pytest.fixture
def acme(sqlite_url, workspace, monkeypatch, tmp_path):
    """acme.com on the emulator: an admin and two people; its configuration (delegation to
    nobody who can act: only a consent reads it) and Komeet's OAuth client."""
    people = [user(1, ADMIN, isAdmin=True), user(2, "bob@acme.com"), user(3, "carol@acme.com")]
    directory = Directory.from_exports(people, {GROUP: [member(p) for p in people]})
    google = workspace(directory)
    google.env(monkeypatch)
    google.oauth_env(monkeypatch)
    engine = open_database(sqlite_url)
    config = DomainStore(engine).add(
        DomainConfig.create("acme.com", "google", groups=[GROUP], admin_email="nobody@acme.com")
    )
    return google, engine, config


def consent_as(email: str, allow: bool = True, shown: list[str] | None = None):
    """``read_line`` for the headless way: the admin answers the consent page last shown."""
    shown = [] if shown is None else shown

    def read_line() -> str:
        return consent(consent_address(shown[-1]), email, allow) + "\n"

    return shown.append, read_line


def authorized(engine, config, email: str = ADMIN, allow: bool = True, shown=None):
    announce, read_line = consent_as(email, allow, shown)
    return authorize(
        engine, config, OAuthClient.load(), prompt="Open {url}", announce=announce,
        read_line=read_line,
    )  # fmt: skip


def test_a_consent_is_stored_sealed_and_reads_the_directory(acme):
    _, engine, config = acme
    shown: list[str] = []

    done = authorized(engine, config, shown=shown)

    assert done.authorization.admin_email == ADMIN and done.replaced is None
    assert "code_challenge_method=S256" in shown[0]  # PKCE, checked by the token endpoint
    stored = AuthorizationStore(engine).get("acme.com")
    assert stored is not None and stored.admin_email == ADMIN
    with engine.connect() as connection:
        [row] = connection.execute(text("SELECT * FROM google_authorizations")).mappings()
    refresh_token = stored.refresh_token()
    assert refresh_token.startswith("1//") and refresh_token not in str(dict(row))
    assert row["refresh_token_sealed"].startswith("gAAAA")  # Fernet's version byte
    assert refresh_token not in repr(stored) and refresh_token not in repr(done)
    # The read is the consenting admin's: the delegation, to nobody@acme.com, would fail.
    reader = reader_for(config, engine=engine)
    assert reader.credential.startswith(f"authorized by {ADMIN} on ")
    snapshot = reader.extract(config.domains, config.groups)
    assert len(snapshot.users) == 3


def test_no_token_is_logged_even_at_debug(acme, caplog):
    _, engine, config = acme
    caplog.set_level(logging.DEBUG)

    authorized(engine, config)
    reader_for(config, engine=engine).extract(config.domains, config.groups)

    refresh_token = AuthorizationStore(engine).get("acme.com").refresh_token()
    assert refresh_token not in caplog.text and "ya29." not in caplog.text


def test_a_denied_consent_stores_nothing(acme):
    _, engine, config = acme

    with pytest.raises(ConsentRefused, match="denied the consent"):
        authorized(engine, config, allow=False)

    assert AuthorizationStore(engine).get("acme.com") is None


def test_a_consent_of_someone_who_is_not_an_admin_is_revoked_not_stored(acme):
    google, engine, config = acme

    with pytest.raises(ConsentRefused, match=r"bob@acme\.com consented, but cannot read"):
        authorized(engine, config, email="bob@acme.com")

    assert AuthorizationStore(engine).get("acme.com") is None
    assert google.emulator.consent.consents == []  # revoked at Google


def test_without_the_secret_key_nothing_is_asked_nor_stored(acme, monkeypatch):
    google, engine, config = acme
    monkeypatch.delenv("KOMEET_SYNC_SECRET_KEY")

    with pytest.raises(MissingKey, match="set KOMEET_SYNC_SECRET_KEY"):
        authorized(engine, config)

    assert google.emulator.requests["authorize"] == 0


def test_a_consent_google_ended_fails_the_read_in_one_line(acme):
    google, engine, config = acme
    authorized(engine, config)
    assert google.emulator.consent.expire(ADMIN) == 1

    with pytest.raises(GrantExpired) as failure:
        reader_for(config, engine=engine).extract(config.domains, config.groups)

    assert str(failure.value) == (
        f"the authorization of acme.com by {ADMIN} was revoked or expired at Google: "
        "run `komeet-sync google authorize acme.com` again"
    )


def test_revoke_revokes_at_google_then_deletes(acme):
    google, engine, config = acme
    authorized(engine, config)

    done = revoke(engine, config)

    assert done.at_google is True and done.deleted is not None
    assert AuthorizationStore(engine).get("acme.com") is None
    assert google.emulator.consent.consents == []
    assert revoke(engine, config).deleted is None  # nothing left: said, not failed
