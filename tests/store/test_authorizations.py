"""A domain's stored OAuth consent: its refresh token sealed under KOMEET_SYNC_SECRET_KEY only,
and the rotation of that key (several keys, newest first; ``reseal``), which keeps the
notification URLs sealed under the same keys readable."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from komeet_sync.model.domain_config import DomainConfig
from komeet_sync.store.authorizations import AuthorizationStore
from komeet_sync.store.database import open_database
from komeet_sync.store.domains import DomainStore
from komeet_sync.store.sealed import MissingKey, SealError

TOKEN = "1//refresh-token-of-the-admin"


@pytest.fixture
def engine(database_url, monkeypatch, tmp_path):
    monkeypatch.setenv("KOMEET_SYNC_HOME", str(tmp_path / "home"))
    engine = open_database(database_url)
    DomainStore(engine).add(
        DomainConfig.create("acme.com", "google", groups=["all@acme.com"], admin_email="a@acme.com")
    )
    return engine


def stored_ciphertext(engine) -> str:
    with engine.connect() as connection:
        return connection.execute(
            text("SELECT refresh_token_sealed FROM google_authorizations")
        ).scalar_one()


def test_a_refresh_token_is_refused_without_the_key_even_with_a_key_file(engine, monkeypatch):
    monkeypatch.delenv("KOMEET_SYNC_SECRET_KEY", raising=False)
    DomainStore(engine).set_notify_urls("acme.com", ("json://127.0.0.1:9/",))  # makes the key file

    with pytest.raises(MissingKey, match="set KOMEET_SYNC_SECRET_KEY to a Fernet key first"):
        AuthorizationStore(engine).save("acme.com", "a@acme.com", "client", ["s"], TOKEN)

    assert AuthorizationStore(engine).get("acme.com") is None


def test_a_key_rotates_with_the_old_one_second_then_reseal(engine, monkeypatch):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setenv("KOMEET_SYNC_SECRET_KEY", old)
    store, domains = AuthorizationStore(engine), DomainStore(engine)
    store.save("acme.com", "a@acme.com", "client", ["s"], TOKEN)
    domains.set_notify_urls("acme.com", ("json://hooks.example/secret-path",))
    under_old = stored_ciphertext(engine)
    assert TOKEN not in under_old

    monkeypatch.setenv("KOMEET_SYNC_SECRET_KEY", new)  # the old key alone is gone too soon
    with pytest.raises(SealError, match="sealed under another key"):
        store.get("acme.com").refresh_token()

    monkeypatch.setenv("KOMEET_SYNC_SECRET_KEY", f"{new}, {old}")  # new first, old second
    assert store.get("acme.com").refresh_token() == TOKEN  # opened with the old key
    assert domains.notify_urls("acme.com") == ("json://hooks.example/secret-path",)
    assert store.reseal() == 1 and store.reseal() == 0  # once sealed under the new, done
    assert domains.reseal_notify_urls() == 1 and domains.reseal_notify_urls() == 0
    assert stored_ciphertext(engine) != under_old

    monkeypatch.setenv("KOMEET_SYNC_SECRET_KEY", new)  # the old key dropped
    assert store.get("acme.com").refresh_token() == TOKEN
    assert domains.notify_urls("acme.com") == ("json://hooks.example/secret-path",)


def test_a_key_that_is_not_one_is_named_by_its_place(engine, monkeypatch):
    monkeypatch.setenv("KOMEET_SYNC_SECRET_KEY", f"{Fernet.generate_key().decode()},nonsense")

    with pytest.raises(SealError, match="key 2 of KOMEET_SYNC_SECRET_KEY is not a key"):
        AuthorizationStore(engine).save("acme.com", "a@acme.com", "client", ["s"], TOKEN)


def test_delete_forgets_and_says_what(engine, monkeypatch):
    monkeypatch.setenv("KOMEET_SYNC_SECRET_KEY", Fernet.generate_key().decode())
    store = AuthorizationStore(engine)
    store.save("acme.com", "a@acme.com", "client", ["s"], TOKEN)

    deleted = store.delete("acme.com")

    assert deleted is not None and deleted.admin_email == "a@acme.com"
    assert store.get("acme.com") is None and store.delete("acme.com") is None
