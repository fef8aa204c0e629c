"""A domain, its directory and a Komeet, for the tests that apply plans: the directory is
given as Directory API User resources, all in the selected group unless said otherwise."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from komeet_sync.komeet.client import KomeetClient
from komeet_sync.model.domain_config import DomainConfig
from komeet_sync.model.snapshots import DirectorySnapshot
from komeet_sync.runs import sync
from komeet_sync.sources.google import resources as google_resources
from komeet_sync.store.domains import DomainStore
from komeet_sync.store.results import ResultStore
from tests.support.google_workspace import member

DOMAIN = "acme.com"
GROUP = "all@acme.com"


def configure(engine: Engine, **options: Any) -> DomainConfig:
    return DomainStore(engine).add(
        DomainConfig.create(
            DOMAIN, "google", admin_email="admin@acme.com", groups=[GROUP], **options
        )
    )


def person(number: int, email: str | None = None, **fields: Any) -> dict[str, Any]:
    """A Directory API user, ``user00042@acme.com`` by default."""
    email = email or f"user{number:05d}@{DOMAIN}"
    local = email.split("@")[0]
    return {
        "id": f"g{number}",
        "primaryEmail": email,
        "name": {"givenName": local.title(), "familyName": "Person"},
        **fields,
    }


def directory(
    people: Iterable[dict[str, Any]], outside: Iterable[dict[str, Any]] = ()
) -> Callable[[], DirectorySnapshot]:
    """A read of ``people`` (in the selected group) and ``outside`` (in none)."""
    people, outside = list(people), list(outside)

    def read() -> DirectorySnapshot:
        snapshot = google_resources.snapshot(
            people + outside, {GROUP: [member(user) for user in people]}
        )
        return dataclasses.replace(snapshot, started_at=datetime.now(UTC))

    return read


def synced(
    config: DomainConfig,
    read: Callable[[], DirectorySnapshot],
    client: KomeetClient,
    engine: Engine,
    **options: Any,
) -> sync.SyncRun:
    """``komeet-sync sync`` of ``config``'s domain, stored where the settings say."""
    return sync.sync(
        config,
        engine,
        ResultStore.from_settings(),
        read_directory=lambda _advance: read(),
        client=client,
        **options,
    )


def account_for(user: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The Komeet account the sync would have made for a directory user."""
    return {
        "userName": user["primaryEmail"],
        "externalId": user["id"],
        "active": True,
        "name": dict(user["name"]),
        **changes,
    }
