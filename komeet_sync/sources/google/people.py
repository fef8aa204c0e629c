"""Some people of a Google Workspace domain, read by key without listing the directory: the
directory side of an incremental sync and of ``sync DOMAIN --person`` (ARCHITECTURE.md,
"Full and incremental syncs"; ``runs.incremental.PeopleSide``).

Each answer holds what ``DirectoryReader.extract(config.domains, config.groups)`` holds for
the same people (``restricted_to`` their ids): their User resources as the same rows,
aliases and read errors; a member row of each selected group they are in, directly or
through nested groups, as Google's derived listing gives it (their id, primary email, type
USER); a group's CUSTOMER member (the whole account), which ``restricted_to`` keeps for
everyone; and the same ``groups`` frame. It asks Google (Admin SDK Directory API):

- ``users.get`` for an "email" key (Google resolves aliases and non-editable aliases) and
  for an "id" key (the Google user id: the stable id of ARCHITECTURE.md's rule 1; a SCIM
  externalId is no Google id, and Google finds nobody by it);
- ``users.list`` with ``query=externalId='...'`` for an "employee id" key (the "Search for
  users" guide; it matches every type of external id, so the ``organization`` one is
  checked here). Google warns that search results may lag a change by up to 36 hours: the
  full sync, which lists everyone, stays the safety net;
- ``members.hasMember`` for each person and selected group (direct or nested membership);
  Google refuses it for a nested membership across two domains (a person of an alias
  domain in a group of the domain), and that group's derived listing, as ``extract`` reads
  it, answers instead;
- once per selected group: ``members.list`` of one member (does the group exist, does it
  list anyone) and ``members.get`` of the account's customer id (the CUSTOMER member).

One instance is one read: each user, search and group is asked for once and remembered,
so build a new one for the next sync. Known differences from the whole read, none of which
changes a decision: a user record whose ``suspended``/``archived`` cannot be read is
reported as record 1, not as its position in the whole listing; a person known only by an
``emails[]`` work address that is no Google alias cannot be found by that address (Google
resolves no such address), only by their other keys.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import pandas as pd

from komeet_sync.engine.reconcile import node_keys
from komeet_sync.model.domain_config import DomainConfig
from komeet_sync.model.emails import normalise_emails
from komeet_sync.model.frames import KOMEET_ACCOUNTS, empty_frame
from komeet_sync.model.scim_keys import Key
from komeet_sync.model.snapshots import DirectorySnapshot, KomeetAccounts
from komeet_sync.sources.google import resources as google_resources
from komeet_sync.sources.google.credentials import GoogleError
from komeet_sync.sources.google.reader import (
    USER_RESOURCE_FIELDS,
    USERS_PAGE,
    DirectoryReader,
    ExtractionFailed,
)

# Keys as ``engine.reconcile.node_keys`` lists them: (namespace, normalised value).
Item = TypeVar("Item")
Answer = TypeVar("Answer")

USER_GET_FIELDS = f"{USER_RESOURCE_FIELDS},customerId"
SEARCH_FIELDS = f"nextPageToken,users({USER_GET_FIELDS})"
MEMBER_FIELDS = "id,email,type"
NO_KOMEET = KomeetAccounts.of(empty_frame(KOMEET_ACCOUNTS))


@dataclass(frozen=True)
class SelectedGroup:
    """A selected group as a whole read would find it."""

    key: str  # as configured: the groupKey asked for
    name: str  # as snapshots name it (normalised)
    found: bool
    listed: int  # 1 when its derived listing has a first member, else 0
    customer: dict[str, Any] | None  # its CUSTOMER member (every user of the account)


class GooglePeople:
    """A Google Workspace domain's people, read by key (``runs.incremental.PeopleSide``)."""

    def __init__(self, reader: DirectoryReader, config: DomainConfig) -> None:
        self.reader = reader
        self.config = config
        self._domains = {domain.lower() for domain in config.domains}
        self._users: dict[str, dict[str, Any] | None] = {}  # userKey (lower-cased) -> User
        self._searched: dict[str, list[dict[str, Any]]] = {}  # employee id -> Users
        self._groups: dict[str, SelectedGroup] | None = None
        self._members: dict[tuple[str, str], bool] = {}  # (groupKey, user id) -> member
        self._listings: dict[str, list[Any]] = {}  # groupKey -> derived listing
        self._authenticated = False

    # -- the PeopleSide --

    def holding(self, keys: Collection[Key]) -> DirectorySnapshot:
        """The people of the domain holding any of ``keys``."""
        started, clock, before = self._start()
        self._look_up(
            [value for namespace, value in keys if namespace != "employee id"],
            [value for namespace, value in keys if namespace == "employee id"],
        )
        found: dict[str, dict[str, Any]] = {}
        for namespace, value in keys:
            if namespace == "employee id":
                users = self._search(value)
            else:
                users = [user for user in [self._user(value)] if user is not None]
            found.update((str(user.get("id")), user) for user in users if self._in_domain(user))
        # Google resolves more than a key holds (an "id" key with an @ is read as an email):
        # the people are those that node_keys says hold one.
        wanted = set(keys)
        held = {
            person
            for person, namespace, value in self._keys(found.values())
            if (namespace, value) in wanted
        }
        people = [user for user_id, user in found.items() if user_id in held]
        return self._read(people, started, clock, before)

    def holders(self, employee_ids: Collection[str]) -> dict[str, int]:
        """How many people of the domain hold each employee id (as ``node_keys`` reads it)."""
        self._start()
        self._look_up([], list(employee_ids))
        counts: dict[str, set[str]] = {}
        for employee_id in employee_ids:
            users = [user for user in self._search(employee_id) if self._in_domain(user)]
            for person, namespace, value in self._keys(users):
                if namespace == "employee id" and value == employee_id:
                    counts.setdefault(value, set()).add(person)
        return {value: len(people) for value, people in counts.items()}

    def by_ids(self, account_ids: Collection[str]) -> DirectorySnapshot:
        """The people of the domain with these Google user ids; unknown ids are absent."""
        started, clock, before = self._start()
        self._look_up(list(account_ids), [])
        people = []
        for account_id in dict.fromkeys(account_ids):
            user = self._user(account_id)
            if user is not None and str(user.get("id")) == account_id and self._in_domain(user):
                people.append(user)
        return self._read(people, started, clock, before)

    def groups_listed(self) -> dict[str, int]:
        """Each selected group that exists, and 1 when its derived listing has a member, else
        0: the empty-group guard only compares this count with 0 (``engine.scope``), and a
        listing has a first member exactly when it has any, so one member of one page
        answers for it without listing the group."""
        self._start()
        return {group.name: group.listed for group in self._selected().values() if group.found}

    def membership_paths(self, account_id: str) -> dict[str, list[str]]:
        """For each selected group the person is in, the nested groups from it down to the
        group that lists the person directly (``[]`` when it does itself, or lists the whole
        account). It walks only into the groups the person is in (``members.hasMember``),
        listing each one's direct members to find its nested groups: for ``explain``, one
        person at a time."""
        self._start()
        user = self._user(account_id)
        if user is None or str(user.get("id")) != account_id or not self._in_domain(user):
            return {}
        paths: dict[str, list[str]] = {}
        for group in self._selected().values():
            if group.customer is not None:
                paths[group.name] = []
            elif group.found and self._is_member(group.key, user):
                paths[group.name] = self._path(group.key, account_id, user)
        return paths

    # -- reading --

    def _start(self) -> tuple[datetime, float, int]:
        if not self._authenticated:
            self.reader.authenticate()
            self._authenticated = True
        return datetime.now(UTC), time.monotonic(), self.reader.requests

    def _look_up(self, user_keys: list[str], employee_ids: list[str]) -> None:
        """Ask Google, a few at once, for the keys not asked for yet."""
        self._each(
            self._user, [key for key in dict.fromkeys(user_keys) if key.lower() not in self._users]
        )
        self._each(
            self._search, [e for e in dict.fromkeys(employee_ids) if e not in self._searched]
        )

    def _read(
        self, people: list[dict[str, Any]], started: datetime, clock: float, before: int
    ) -> DirectorySnapshot:
        """The snapshot of ``people`` with their rows among the selected groups' members."""
        groups = self._selected().values()
        found = [(group.key, user) for group in groups if group.found for user in people]
        self._each(lambda check: self._is_member(*check), found)
        members: dict[str, list[Any] | None] = {}
        for group in groups:
            if not group.found:
                members[group.key] = None
                continue
            rows: list[Any] = [group.customer] if group.customer else []
            rows += [
                {"id": user.get("id"), "email": user.get("primaryEmail"), "type": "USER"}
                for user in people
                if self._is_member(group.key, user)
            ]
            members[group.key] = rows
        return dataclasses.replace(
            google_resources.snapshot(people, members),
            started_at=started,
            seconds=time.monotonic() - clock,
            requests=self.reader.requests - before,
        )

    def _user(self, key: str) -> dict[str, Any] | None:
        """``users.get``: the user that an address (primary or alias) or a user id names."""
        if key.lower() not in self._users:
            request = self.reader.service.users().get(userKey=key, fields=USER_GET_FIELDS)
            user = self.reader.execute(request, f"users.get {key}", missing=True)
            self._users[key.lower()] = user
            if user is not None:
                self._remember(user)
        return self._users[key.lower()]

    def _remember(self, user: dict[str, Any]) -> None:
        """Google names a user by each of its addresses and its id, and nobody else by
        them: later keys among them need no request."""
        addresses = (user.get("primaryEmail"), *_listed(user, "aliases"))
        for name in (user.get("id"), *addresses, *_listed(user, "nonEditableAliases")):
            if isinstance(name, str):
                self._users.setdefault(name.lower(), user)

    def _search(self, employee_id: str) -> list[dict[str, Any]]:
        """``users.list`` of the whole account searched by an external id value."""
        if employee_id not in self._searched:
            quoted = employee_id.replace("\\", "\\\\").replace("'", "\\'")
            users = self.reader.service.users()
            request = users.list(
                customer="my_customer",
                query=f"externalId='{quoted}'",
                maxResults=USERS_PAGE,
                fields=SEARCH_FIELDS,
            )
            found: list[dict[str, Any]] = []
            page = 1
            while request is not None:
                call = f"users.list page {page} of externalId {employee_id!r}"
                response = self.reader.execute(request, call)
                found.extend(response.get("users") or [])
                request = users.list_next(request, response)
                page += 1
            for user in found:
                self._remember(user)
            self._searched[employee_id] = found
        return self._searched[employee_id]

    def _selected(self) -> dict[str, SelectedGroup]:
        """The selected groups, each asked about once."""
        if self._groups is None:
            keys = list(self.config.groups)
            names = normalise_emails(pd.Series(keys, dtype="str"))["email"]
            customer_id = self._customer_id() if keys else ""
            probed = self._each(
                lambda group: self._probe(*group, customer_id),
                [
                    (key, name if isinstance(name, str) else key.strip().lower())
                    for key, name in zip(keys, names, strict=True)
                ],
            )
            self._groups = {group.key: group for group in probed}
        return self._groups

    def _probe(self, key: str, name: str, customer_id: str) -> SelectedGroup:
        members = self.reader.service.members()
        first = self.reader.execute(
            members.list(
                groupKey=key, includeDerivedMembership=True, maxResults=1, fields="members(type)"
            ),
            f"members.list of one member of {key}",
            missing=True,
        )
        if first is None:
            return SelectedGroup(key, name, found=False, listed=0, customer=None)
        customer = self.reader.execute(
            members.get(groupKey=key, memberKey=customer_id, fields=MEMBER_FIELDS),
            f"members.get {customer_id} of {key}",
            missing=True,
        )
        if customer is not None and str(customer.get("type")) != "CUSTOMER":
            customer = None
        return SelectedGroup(key, name, True, min(len(first.get("members") or []), 1), customer)

    def _customer_id(self) -> str:
        """The Workspace account's customer id, the id of its CUSTOMER members: from a user
        already read, else from the delegated admin's User resource."""
        for user in self._users.values():
            if user is not None and user.get("customerId"):
                return str(user["customerId"])
        admin = self._user(self.reader.subject)
        if admin is None or not admin.get("customerId"):
            raise GoogleError(
                f"Google did not give the customer id of {self.reader.subject}'s account: "
                "check that the domain's admin email is a super admin of this Workspace"
            )
        return str(admin["customerId"])

    def _is_member(self, group: str, user: dict[str, Any]) -> bool:
        """``members.hasMember``, direct or nested; across two domains Google answers only
        for a direct membership, and the group's derived listing answers instead."""
        user_id = str(user.get("id"))
        if (group, user_id) not in self._members:
            request = self.reader.service.members().hasMember(groupKey=group, memberKey=user_id)
            try:
                answer = self.reader.execute(request, f"members.hasMember {user_id} of {group}")
                member = bool(answer.get("isMember"))
            except ExtractionFailed as refused:
                if not refused.status.startswith("HTTP 400"):
                    raise
                member = any(str(m.get("id")) == user_id for m in self._listing(group))
            self._members[group, user_id] = member
        return self._members[group, user_id]

    def _listing(self, group: str) -> list[Any]:
        if group not in self._listings:
            self._listings[group] = self.reader.group_members(group) or []
        return self._listings[group]

    def _path(self, group: str, user_id: str, user: dict[str, Any]) -> list[str]:
        """The fewest nested groups from ``group`` down to one that lists the user directly
        (breadth first, into the groups the user is in)."""
        members = self.reader.service.members()
        queue: list[tuple[str, list[str]]] = [(group, [])]
        seen = {group.lower()}
        while queue:
            current, path = queue.pop(0)
            direct = self.reader.execute(
                members.get(groupKey=current, memberKey=user_id, fields=MEMBER_FIELDS),
                f"members.get {user_id} of {current}",
                missing=True,
            )
            if direct is not None:
                return path
            for entry in self.reader.group_members(current, derived=False) or []:
                nested = str(entry.get("email") or entry.get("id") or "").lower()
                if entry.get("type") != "GROUP" or not nested or nested in seen:
                    continue
                seen.add(nested)
                if self._is_member(nested, user):
                    queue.append((nested, [*path, nested]))
        return []

    def _each(self, work: Callable[[Item], Answer], items: Sequence[Item]) -> list[Answer]:
        """``work`` done for each item, ``reader.workers`` at once (the reader gives each
        thread its own Http): a person's requests for several groups wait for one another
        no longer than for one."""
        if len(items) < 2:
            return [work(item) for item in items]
        workers = min(self.reader.workers, len(items))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="people") as pool:
            return list(pool.map(work, items))

    def _keys(self, users: Iterable[dict[str, Any]]) -> list[tuple[str, str, str]]:
        """Each person's keys as ``node_keys`` lists them: (account id, namespace, value)."""
        snapshot = google_resources.snapshot(list(users), {})
        keys = node_keys(snapshot, NO_KOMEET, self.config)
        keys = keys[keys["person"]]
        return list(zip(keys["id"], keys["namespace"], keys["value"], strict=True))

    def _in_domain(self, user: dict[str, Any]) -> bool:
        """Whether ``extract`` reads this user: its primary email is in the domain or one
        of its alias domains (``users.list?domain=``)."""
        return str(user.get("primaryEmail") or "").rpartition("@")[2].lower() in self._domains


def _listed(user: dict[str, Any], field: str) -> list[Any]:
    values = user.get(field)
    return values if isinstance(values, list) else []
