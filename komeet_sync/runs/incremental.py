"""Incremental syncs: decide for the people who changed, and for nobody else, exactly what a
full sync would decide for them (ARCHITECTURE.md, "Full and incremental syncs";
docs/incremental.md).

A person's decision depends only on the component of the matching graph it is in (the
people and accounts linked to it by shared keys: ``engine.matching``). ``gather`` reads the
components of some people to a fixed point, following every key of every person and account
it finds, from a directory side and a Komeet side that can each be asked who holds a key.
``engine.reconcile`` then decides for those whole components what it decides for them in the
whole domain, given the few facts only the whole domain knows (``DomainFacts``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import pandas as pd
from sqlalchemy import Engine

from komeet_sync.engine import scope
from komeet_sync.engine.guards import rolling_budget
from komeet_sync.engine.matching import MAX_EMPLOYEE_ID_HOLDERS
from komeet_sync.engine.planning import build_plan
from komeet_sync.engine.reconcile import DomainFacts, Reconciliation, node_keys, reconcile
from komeet_sync.komeet.client import KomeetClient
from komeet_sync.model.domain_config import DomainConfig
from komeet_sync.model.frames import DIRECTORY_USERS, KOMEET_ACCOUNTS, Source, empty_frame
from komeet_sync.model.plan import Plan
from komeet_sync.model.scim_keys import Key
from komeet_sync.model.situations import Action
from komeet_sync.model.snapshots import DirectorySnapshot, KomeetAccounts
from komeet_sync.runs import alerts
from komeet_sync.runs.sync import Applied, apply
from komeet_sync.store.leases import domain_lease, holder_name
from komeet_sync.store.plans import PlanStore, Scope, StoredPlan

EMPLOYEE_ID = "employee id"


class PeopleSide(Protocol):
    """A directory, read by key: staging for a SCIM domain, the Directory API for Google."""

    def holding(self, keys: Collection[Key]) -> DirectorySnapshot:
        """The people holding any of ``keys`` (a snapshot of just them)."""
        ...

    def holders(self, employee_ids: Collection[str]) -> dict[str, int]:
        """How many people of the domain hold each employee id."""
        ...

    def by_ids(self, account_ids: Collection[str]) -> DirectorySnapshot:
        """The people named by these account ids (a snapshot of just them)."""
        ...

    def groups_listed(self) -> dict[str, int]:
        """Each selected group that exists, and its member rows in the whole directory
        (``DomainFacts.groups_listed``)."""
        ...


class AccountSide(Protocol):
    """Komeet's accounts, read by key."""

    def holding(self, keys: Collection[Key]) -> KomeetAccounts:
        """The accounts holding any of ``keys`` (others may come with them)."""
        ...

    def holders(self, employee_ids: Collection[str]) -> dict[str, int]:
        """How many accounts of the domain hold each employee id."""
        ...


@dataclass(frozen=True)
class Gathered:
    """Whole components of a domain's matching graph: their people and accounts."""

    snapshot: DirectorySnapshot
    komeet: KomeetAccounts
    # Employee ids found that more than MAX_EMPLOYEE_ID_HOLDERS nodes of the domain hold.
    common_employee_ids: frozenset[str]
    followed: int  # keys asked for
    rounds: int


def gather(
    config: DomainConfig,
    people: PeopleSide,
    accounts: AccountSide,
    seed: DirectorySnapshot,
    seed_keys: Iterable[Key] = (),
) -> Gathered:
    """The components of ``seed``'s people and of the nodes holding ``seed_keys``: every key
    of every person and account found is asked for on both sides, until a round finds no
    key that was not asked for. An employee id is followed only when at most
    MAX_EMPLOYEE_ID_HOLDERS nodes of the whole domain hold it (more make it a placeholder,
    which links nobody)."""
    snapshot = seed
    komeet = KomeetAccounts.of(empty_frame(KOMEET_ACCOUNTS))
    followed: set[Key] = set()
    common: set[str] = set()
    due = set(seed_keys)
    rounds = 0
    while True:
        due |= _keys_of(snapshot, komeet, config)
        due -= followed
        due = {key for key in due if not (key[0] == EMPLOYEE_ID and key[1] in common)}
        if not due:
            break
        rounds += 1
        employee_ids = {value for namespace, value in due if namespace == EMPLOYEE_ID}
        if employee_ids:
            in_people, in_komeet = people.holders(employee_ids), accounts.holders(employee_ids)
            placeholders = {
                value
                for value in employee_ids
                if in_people.get(value, 0) + in_komeet.get(value, 0) > MAX_EMPLOYEE_ID_HOLDERS
            }
            common |= placeholders
            due = {key for key in due if not (key[0] == EMPLOYEE_ID and key[1] in placeholders)}
        snapshot = snapshot.joined(people.holding(due))
        komeet = komeet.joined(accounts.holding(due))
        followed |= due
        due = set()
    return Gathered(snapshot, komeet, frozenset(common), len(followed), rounds)


def _keys_of(snapshot: DirectorySnapshot, komeet: KomeetAccounts, config: DomainConfig) -> set[Key]:
    keys = node_keys(snapshot, komeet, config)
    return set(zip(keys["namespace"], keys["value"], strict=True))


# Incremental syncs share the domain's deactivation budget over this rolling window.
WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class PeopleSync:
    """An incremental sync of some people: what it read and decided, the plan it sent
    (None: nothing to do), the deactivations it held over the rolling budget, and what was
    applied (None: nothing sent, or a dry run)."""

    gathered: Gathered
    reconciliation: Reconciliation
    sent: StoredPlan | None
    held: StoredPlan | None
    applied: Applied | None
    read_at: datetime

    def summary(self) -> dict[str, Any]:
        applied, stopped = (
            (self.applied.result, self.applied.stopped) if self.applied else (None, None)
        )
        return {
            "people": len(self.gathered.snapshot.users),
            "accounts": len(self.gathered.komeet.accounts),
            "rounds": self.gathered.rounds,
            "plan_id": self.sent.plan_id if self.sent else None,
            "actions": dict(self.sent.counts) if self.sent else {},
            "held_plan_id": self.held.plan_id if self.held else None,
            "held": [hold.as_dict() for hold in self.held.holds] if self.held else [],
            "applied": applied.summary() if applied else None,
            "stopped": {"kind": stopped.kind, "detail": str(stopped)} if stopped else None,
            "quarantine": self.applied.quarantine_dict() if self.applied else None,
        }


def sync_people(
    config: DomainConfig,
    engine: Engine,
    client: KomeetClient | None,
    people: PeopleSide,
    accounts: AccountSide,
    *,
    ids: Collection[str] = (),
    keys: Iterable[Key] = (),
    trigger: str = "komeet-sync worker",
    dry_run: bool = False,
    holder: str | None = None,
    lease_wait: float = 30.0,
    before_apply: Callable[[StoredPlan], None] | None = None,
) -> PeopleSync:
    """Decide for the people named by ``ids`` and those holding ``keys`` (their whole
    components: ``gather``) what a whole sync would, and apply it through the ledger.

    The domain's lease is held from the read of Komeet until the writes are recorded, so
    that no other incremental writer decides from a read that misses them (``store.leases``;
    waits up to ``lease_wait`` seconds, then raises ``Busy``). Deactivations are counted
    against the domain's budget over ``WINDOW``: those over it wait in a second plan, held
    until an admin approves it by id. A dry run stores its plans as such and sends nothing.
    ``before_apply`` is told the plan before anything is sent (the console's Ctrl-C).
    """
    plans = PlanStore(engine)
    with domain_lease(engine, config.domain, holder or holder_name(), wait=lease_wait):
        read_at = datetime.now(UTC)
        gathered = gather(config, people, accounts, people.by_ids(ids), keys)
        facts = DomainFacts(people.groups_listed(), gathered.common_employee_ids)
        result = reconcile(gathered.snapshot, gathered.komeet, config, facts=facts)
        actions = result.plan.actions
        leaving = (actions["action"] == Action.DEACTIVATE).to_numpy()
        spent = plans.deactivations_since(config.domain, read_at - WINDOW)
        active = plans.active_managed(config.domain)
        allowed, hold = rolling_budget(
            config,
            # The budget is a share of the accounts active when the window began.
            active_managed=active + spent if active is not None else None,
            spent=spent,
            deactivations=int(leaving.sum()),
            window="the last hour",
        )
        over = leaving & (leaving.cumsum() > allowed)
        holds = result.plan.holds

        def stored(plan: Plan) -> StoredPlan | None:
            if plan.actions.empty:
                return None
            return plans.save(
                plan,
                source=gathered.snapshot.source.value,
                snapshot_at=read_at,
                desired=result.stats["desired"],
                reports=None,
                dry_run=dry_run,
                scope=Scope.PEOPLE,
            )

        sent = stored(build_plan(config.domain, actions[~over], holds, part=True))
        held = None
        if hold is not None:
            held = stored(build_plan(config.domain, actions[over], (*holds, hold), part=True))
        if held is not None and not dry_run:
            alerts.plan_held(engine, held)
        applied = None
        if sent is not None and not dry_run:
            if client is None:
                raise ValueError("give the Komeet client, or make it a dry run")
            if before_apply is not None:
                before_apply(sent)
            applied = apply(
                engine, sent.plan_id, client, trigger=trigger, fresh_read=True, read_at=read_at
            )
    return PeopleSync(gathered, result, sent, held, applied, read_at)


class SnapshotPeople:
    """A directory read by key from a whole snapshot in memory (the last stored sync's, or a
    whole read): every answer is ``snapshot.restricted_to`` the people holding the keys, as
    a key-read side must give it."""

    def __init__(self, snapshot: DirectorySnapshot, config: DomainConfig) -> None:
        self.snapshot = snapshot
        self.config = config
        self.keys = node_keys(snapshot, KomeetAccounts.of(empty_frame(KOMEET_ACCOUNTS)), config)
        self.asked: list[Key] = []  # every key asked for, in order
        self._memberships: pd.DataFrame | None = None

    def holding(self, keys: Collection[Key]) -> DirectorySnapshot:
        self.asked += keys
        return self.snapshot.restricted_to(_holding(self.keys, keys))

    def holders(self, employee_ids: Collection[str]) -> dict[str, int]:
        return _counts(self.keys, employee_ids)

    def by_ids(self, account_ids: Collection[str]) -> DirectorySnapshot:
        return self.snapshot.restricted_to(account_ids)

    def groups_listed(self) -> dict[str, int]:
        """Each selected group the read found, and the member rows it lists."""
        listed = self.snapshot.members.groupby("group").size()
        found = self.snapshot.groups.loc[self.snapshot.groups["found"], "group"]
        return {group: int(listed.get(group, 0)) for group in found if group in self.config.groups}

    def membership_paths(self, account_id: str) -> dict[str, list[str] | None]:
        """The selected groups the person is in. A snapshot holds each group's members
        flattened (GROUP_MEMBERS), so the chain of nested groups is not in it: None, unless
        the group has no nested group at all (a Google group that lists no GROUP member:
        the person is listed directly, ``[]``). SCIM snapshots never say."""
        if self._memberships is None:
            self._memberships = scope.assess(self.snapshot, self.config).memberships
        memberships = self._memberships
        groups = sorted(set(memberships.loc[memberships["account_id"] == account_id, "group"]))
        members = self.snapshot.members
        nesting = set(members.loc[members["member_type"] == "GROUP", "group"])
        flat = self.snapshot.source is Source.GOOGLE
        return {group: [] if flat and group not in nesting else None for group in groups}


class SnapshotAccounts:
    """Komeet read by key from all of a domain's accounts in memory."""

    def __init__(self, accounts: KomeetAccounts, config: DomainConfig) -> None:
        self.accounts = accounts
        nobody = DirectorySnapshot.of(Source(config.source.value), empty_frame(DIRECTORY_USERS))
        keys = node_keys(nobody, accounts, config)
        self.keys = keys[~keys["person"]]

    def holding(self, keys: Collection[Key]) -> KomeetAccounts:
        return self.accounts.restricted_to(_holding(self.keys, keys))

    def holders(self, employee_ids: Collection[str]) -> dict[str, int]:
        return _counts(self.keys, employee_ids)


def _holding(keys: pd.DataFrame, wanted: Collection[Key]) -> set[str]:
    """The nodes holding any of ``wanted``."""
    pairs = pd.MultiIndex.from_arrays([keys["namespace"], keys["value"]])
    return set(keys["id"][pairs.isin(list(set(wanted)))])


def _counts(keys: pd.DataFrame, employee_ids: Collection[str]) -> dict[str, int]:
    held = keys[(keys["namespace"] == EMPLOYEE_ID) & keys["value"].isin(list(employee_ids))]
    return {str(k): int(v) for k, v in held.groupby("value")["id"].nunique().items()}
