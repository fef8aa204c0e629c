"""A domain's accounts in Komeet, as the engine reads them (ARCHITECTURE.md, "Configuration":
a domain's accounts are those whose userName is in the domain or an alias domain).

Accounts outside the domain are left out by the engine; unmanaged ones are kept, so that a
person can be matched to them, and are never touched otherwise (ARCHITECTURE.md,
"Situations").
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from komeet_sync.komeet.client import KomeetClient
from komeet_sync.komeet.parallel import DEFAULT_CONCURRENCY
from komeet_sync.model import scim_resources
from komeet_sync.model.domain_config import DomainConfig
from komeet_sync.model.frames import KOMEET_ACCOUNTS, READ_ERRORS, Source
from komeet_sync.model.snapshots import KomeetAccounts
from komeet_sync.progress import Advance


def read_accounts(
    client: KomeetClient,
    config: DomainConfig,
    progress: Advance | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> KomeetAccounts:
    """The domain's accounts, read whole from Komeet's SCIM API (``GET /Users``, in pages
    asked for ``concurrency`` at a time once the first has said how many there are,
    ``progress`` told after each); a read that fails or stops short raises
    ``KomeetError``: nothing is planned from it."""
    started_at, clock = datetime.now(UTC), time.monotonic()
    resources = client.list_users(config.domains, progress, concurrency)
    accounts = accounts_from_resources(resources)
    return KomeetAccounts.of(
        accounts.accounts, accounts.unreadable, started_at, time.monotonic() - clock
    )


def accounts_from_resources(resources: Iterable[Any]) -> KomeetAccounts:
    """Komeet's SCIM User resources (RFC 7643 §4.1) as the KOMEET_ACCOUNTS frame, and those that
    could not be read."""
    read = scim_resources.read_users(resources, Source.KOMEET)
    users, emails = read.users, read.emails
    # An account's email is the value of the first of its emails marked primary.
    primary = emails[emails["primary"]].drop_duplicates("position").set_index("position")
    accounts = pd.DataFrame(
        {
            "komeet_id": users["id"],
            "user_name": users["user_name"],
            "email": users["position"].map(primary["value"]),
            "external_id": users["external_id"],
            "given_name": users["given_name"],
            "family_name": users["family_name"],
            "active": users["active"],
            "employee_id": users["employee_number"],
        }
    )
    return KomeetAccounts(
        accounts=accounts.astype(KOMEET_ACCOUNTS), unreadable=read.errors.astype(READ_ERRORS)
    )
