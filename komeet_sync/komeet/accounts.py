"""A domain's accounts in Komeet, as the engine reads them (ARCHITECTURE.md, "Configuration":
a domain's accounts are those whose userName is in the domain or an alias domain): whole, for
a full sync (``read_accounts``), or only those holding some keys, for an incremental one
(``KomeetSide``).

Accounts outside the domain are left out by the engine; unmanaged ones are kept, so that a
person can be matched to them, and are never touched otherwise (ARCHITECTURE.md,
"Situations").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

import pandas as pd

from komeet_sync.engine.reconcile import account_keys
from komeet_sync.komeet.client import (
    ENTERPRISE_SCHEMA,
    KomeetClient,
    KomeetError,
    domain_forms,
    in_domains,
    quote,
)
from komeet_sync.komeet.parallel import DEFAULT_CONCURRENCY, in_parallel
from komeet_sync.model import scim_resources
from komeet_sync.model.domain_config import DomainConfig
from komeet_sync.model.emails import InvalidEmail, normalise_email
from komeet_sync.model.frames import KOMEET_ACCOUNTS, READ_ERRORS, Source, contains
from komeet_sync.model.scim_keys import Key
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


EMPLOYEE_NUMBER = f"{ENTERPRISE_SCHEMA}:employeeNumber"
# Terms joined by ``or`` in one search, and the length of its filter once in the URL: a
# request line of a few KB passes every server and proxy (RFC 9112 §3 asks for 8,000 octets).
MAX_TERMS = 40
MAX_FILTER_LENGTH = 6000
# Holders of an employee id counted one by one, up to this many; beyond it, Komeet's count.
# Either way well above MAX_EMPLOYEE_ID_HOLDERS, the only number the count is compared with.
FEW_HOLDERS = 100


class KomeetSide:
    """A domain's accounts in Komeet, read by key (the AccountSide of an incremental sync,
    ``runs.incremental``; ARCHITECTURE.md, "Full and incremental syncs"): only the accounts
    that could match some people, found with SCIM filters (RFC 7644 §3.4.2.2), each of them
    as ``read_accounts`` frames it.

    The searches ask Komeet for a superset of the holders, and the sync's own rule picks
    them out (``engine.reconcile.node_keys``: the domain's accounts, keys normalised), so
    that a holder is found however its values are written, where Komeet's comparison
    allows: a userName or email in any case (``caseExact`` false, RFC 7643 §4.1.1 and
    §4.1.2), an internationalised domain in either form. An externalId is compared exactly
    (RFC 7643 §3.1), and a value with spaces around it is found by no equality filter.

    A target that does not filter is read whole, once, and the holders picked out of it."""

    def __init__(
        self, client: KomeetClient, config: DomainConfig, concurrency: int = DEFAULT_CONCURRENCY
    ) -> None:
        self.client = client
        self.config = config
        self.concurrency = concurrency
        self._whole: KomeetAccounts | None = None

    def holding(self, keys: Collection[Key]) -> KomeetAccounts:
        """The domain's accounts holding any of ``keys`` (unreadable ones left out: they
        match nobody), searched for in batches of terms joined by ``or``, sent
        ``concurrency`` at a time."""
        started_at, clock = datetime.now(UTC), time.monotonic()
        found = self._searched(sorted({term for key in keys for term in _terms(key)}))
        held = _held(found, self.config, set(keys))
        return KomeetAccounts.of(
            found.restricted_to(held["id"]).accounts,
            None,
            started_at,
            time.monotonic() - clock,
        )

    def holders(self, employee_ids: Collection[str]) -> dict[str, int]:
        """How many of the domain's accounts hold each employee id (those held by none are
        left out). Komeet counts each id's holders first (``count=0``), then, for an id it
        counts more than FEW_HOLDERS of, its holders within the domain (as ``list_users``
        reads the domain). Where either count is FEW_HOLDERS or fewer, those holders are
        read and counted by the sync's rule; otherwise the count is Komeet's. So a
        placeholder held by thousands of accounts is counted, not read."""
        ids = sorted(set(employee_ids))
        if self._whole_read():
            return _counts(self._whole_accounts(), self.config, ids)
        searched = {value: _employee_number(value) for value in ids}
        counts = self._counted(searched)
        domain = in_domains(self.config.domains)
        for value in ids:
            if counts[value] > FEW_HOLDERS:
                searched[value] = f"({searched[value]} and ({domain}))"
        in_domain = self._counted(
            {value: searched[value] for value in ids if counts[value] > FEW_HOLDERS}
        )
        most = {value: count for value, count in in_domain.items() if count > FEW_HOLDERS}
        few = [value for value in ids if value not in most]
        found = self._searched([searched[value] for value in few])
        return _counts(found, self.config, few) | most

    def _searched(self, terms: list[str]) -> KomeetAccounts:
        """The accounts matching any of ``terms``, each once; the whole domain's where
        Komeet does not filter."""
        if self._whole_read():
            return self._whole_accounts()
        batches = _batches(terms)
        resources: dict[int, list[dict[str, Any]]] = {}

        def search(batch: int) -> None:
            resources[batch] = self.client.find_users(" or ".join(batches[batch]))

        self._in_parallel(search, range(len(batches)), resources)
        seen: dict[Any, dict[str, Any]] = {}
        for batch in range(len(batches)):
            for resource in resources[batch]:
                known = resource.get("id") if isinstance(resource, dict) else None
                seen.setdefault(known or id(resource), resource)
        return accounts_from_resources(seen.values())

    def _counted(self, filters: dict[str, str]) -> dict[str, int]:
        """Komeet's count of the accounts matching each filter."""
        counts: dict[str, int] = {}

        def count(value: str) -> None:
            counts[value] = self.client.count_users(filters[value])

        self._in_parallel(count, list(filters), counts)
        return counts

    def _in_parallel(self, work: Callable[[Any], None], items: Sequence[Any], done: dict) -> None:
        in_parallel(
            work, items, self.concurrency, self.client.stopping, name="komeet-find", drain=False
        )
        if len(done) < len(items):  # stopped before every request was sent
            raise KomeetError(
                f"the search of Komeet's accounts was stopped with {len(done)} of its "
                f"{len(items)} requests answered; nothing was planned"
            )

    def _whole_read(self) -> bool:
        return not self.client.capabilities().filter

    def _whole_accounts(self) -> KomeetAccounts:
        if self._whole is None:
            self._whole = read_accounts(self.client, self.config, None, self.concurrency)
        return self._whole


def _terms(key: Key) -> list[str]:
    """The filter terms that find the accounts holding ``key`` (and maybe others)."""
    namespace, value = key
    if namespace == "id":
        return [f"externalId eq {quote(value)}"]
    if namespace == "employee id":
        return [_employee_number(value)]
    local, at, domain = value.rpartition("@")
    forms = [f"{local}{at}{form}" for form in domain_forms(domain)] if at else [value]
    # An account's email is a key only when it is a valid address; a userName, always (an
    # invalid one lower-cased). Komeet may refuse a filter whose emails.value is no address.
    attributes = ("userName", "emails.value") if _is_address(value) else ("userName",)
    return [f"{attribute} eq {quote(form)}" for form in forms for attribute in attributes]


def _is_address(value: str) -> bool:
    try:
        normalise_email(value)
    except InvalidEmail:
        return False
    return True


def _employee_number(value: str) -> str:
    return f"{EMPLOYEE_NUMBER} eq {quote(value)}"


def _batches(terms: list[str]) -> list[list[str]]:
    """``terms`` in runs of at most MAX_TERMS whose filter, in the URL, is at most
    MAX_FILTER_LENGTH long (a term longer than that alone)."""
    batches: list[list[str]] = []
    length = 0
    for term in terms:
        size = len(quote_plus(f" or {term}"))
        if not batches or len(batches[-1]) == MAX_TERMS or length + size > MAX_FILTER_LENGTH:
            batches.append([])
            length = 0
        batches[-1].append(term)
        length += size
    return batches


def _held(found: KomeetAccounts, config: DomainConfig, keys: set[Key]) -> pd.DataFrame:
    """The keys of the domain's accounts among ``found`` that are among ``keys`` (``id``,
    ``namespace``, ``value``), by the rule of matching."""
    held = account_keys(found, config)
    wanted = pd.Series([f"{namespace}\n{value}" for namespace, value in keys], dtype="str")
    return held[contains(held["namespace"] + "\n" + held["value"], wanted)]


def _counts(found: KomeetAccounts, config: DomainConfig, employee_ids: list[str]) -> dict[str, int]:
    held = _held(found, config, {("employee id", value) for value in employee_ids})
    holders = held.groupby("value")["id"].nunique()
    return {str(value): int(count) for value, count in holders.items()}
