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
from scim2_models import EnterpriseUser

from komeet_sync.komeet.client import KomeetClient
from komeet_sync.komeet.parallel import DEFAULT_CONCURRENCY
from komeet_sync.model.domain_config import DomainConfig
from komeet_sync.model.frames import KOMEET_ACCOUNTS, READ_ERRORS, Source
from komeet_sync.model.scim_resources import USER, parse
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
    parsed, errors = parse(resources, USER, Source.KOMEET)
    rows = []
    for user in parsed:
        enterprise = user[EnterpriseUser]
        primary = next((e.value for e in user.emails or [] if e.primary), None)
        rows.append(
            (
                user.id,
                user.user_name,
                primary,
                user.external_id,
                user.name.given_name if user.name else None,
                user.name.family_name if user.name else None,
                user.active is not False,
                enterprise.employee_number if enterprise else None,
            )
        )
    return KomeetAccounts(
        accounts=pd.DataFrame(rows, columns=list(KOMEET_ACCOUNTS)).astype(KOMEET_ACCOUNTS),
        unreadable=pd.DataFrame(errors, columns=list(READ_ERRORS)).astype(READ_ERRORS),
    )
