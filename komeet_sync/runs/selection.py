"""Choosing a domain's groups: the Workspace's groups with what selecting each would bring
(``komeet-sync google groups``), what a new selection would do compared with today's
(``domains set|add --preview``), and what a domain's first sync would do (``google check``).

None of them stores anything: they read the directory and Komeet as a sync reads them
(``runs.sync.read_source``, ``read_komeet``) and decide with the sync's own engine
(``engine.reconcile.reconcile``, ``engine.scope``), so a preview says what the sync will do.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import Engine

from komeet_sync.engine import scope
from komeet_sync.engine.reconcile import Reconciliation, reconcile
from komeet_sync.komeet.client import KomeetClient
from komeet_sync.model.domain_config import DomainConfig
from komeet_sync.model.frames import KOMEET_ACCOUNTS, contains, empty_frame
from komeet_sync.model.snapshots import KomeetAccounts
from komeet_sync.runs import COUNTED_AT_MOST
from komeet_sync.runs.sync import read_komeet, read_source
from komeet_sync.sources.google.reader import DirectoryReader
from komeet_sync.store.plans import PlanStore

# Google's group search has a prefix operator on ``email`` and ``name`` (``:{PREFIX}*``) but
# no OR and no substring: a one-word search runs on Google's side as two queries (name,
# then email: each a paged groups.list pass over the matches only); text with spaces or
# quotes, which Google's prefix cannot take, is matched here, as a substring of the name or
# email, over one pass of every group.
SERVER_SEARCH = re.compile(r"[\w.%+@-]+")
FIRST_ROWS = 10  # rows of each difference a preview shows


@dataclass(frozen=True)
class GroupListing:
    """The Workspace's groups a search found, sorted by name then email; ``shown`` the
    first ``limit`` of them, with their counts when they were read."""

    groups: pd.DataFrame  # email, name, direct_members; + members, desired when counted
    found: int  # groups the search found (all of them when no search)
    search: str | None
    searched_by: str  # "google" (the query) or "komeet-sync" (a substring, after one pass)
    counted: bool
    requests: int


def group_search(search: str | None) -> tuple[list[str | None], str]:
    """The ``groups.list`` queries a search runs, and who matches it (SERVER_SEARCH)."""
    if not search:
        return [None], "google"
    if SERVER_SEARCH.fullmatch(search):
        return [f"name:{search}*", f"email:{search}*"], "google"
    return [None], "komeet-sync"


def list_groups(
    config: DomainConfig,
    reader: DirectoryReader,
    *,
    search: str | None = None,
    limit: int | None = 50,
    counts: bool = True,
) -> GroupListing:
    """The groups of the domain's Workspace (``search``: whose name or email starts with it
    or, with spaces, holds it), sorted by name, the first ``limit`` (None: all) with their
    direct members (``directMembersCount``). With ``counts``, and at most COUNTED_AT_MOST
    shown, each shown group's users with nested groups flattened and how many of them a
    sync selecting it would select: one read of the domain's users and of the shown groups'
    members, as a sync reads them, decided by ``engine.scope``."""
    before = reader.requests
    queries, searched_by = group_search(search)
    found: dict[str, dict] = {}
    for query in queries:
        for group in reader.list_groups(query):
            found.setdefault(str(group.get("id") or group.get("email")), group)
    frame = pd.DataFrame(
        {
            "email": pd.Series([str(g.get("email") or "") for g in found.values()], dtype="str"),
            "name": pd.Series([str(g.get("name") or "") for g in found.values()], dtype="str"),
            "direct_members": pd.Series(
                [int(g.get("directMembersCount") or 0) for g in found.values()], dtype="int64"
            ),
        }
    )
    if searched_by == "komeet-sync" and search:
        wanted = search.casefold()
        frame = frame[
            frame["name"].str.casefold().str.contains(wanted, regex=False)
            | frame["email"].str.casefold().str.contains(wanted, regex=False)
        ]
    frame = (
        frame.assign(_key=frame["name"].str.casefold())
        .sort_values(["_key", "email"], kind="stable")
        .drop(columns="_key")
        .reset_index(drop=True)
    )
    shown = frame if limit is None else frame.head(limit)
    counted = counts and 0 < len(shown) <= COUNTED_AT_MOST
    if counted:
        shown = shown.reset_index(drop=True)
        emails = tuple(shown["email"].str.lower())
        selecting = dataclasses.replace(config, groups=emails)
        snapshot = reader.extract(config.domains, emails)
        numbers = scope.group_counts(snapshot, selecting)
        shown = shown.assign(
            members=numbers["members"].to_numpy(), desired=numbers["desired"].to_numpy()
        )
    return GroupListing(shown, len(frame), search, searched_by, counted, reader.requests - before)


@dataclass(frozen=True)
class Difference:
    """What changes for one kind of row between today's plan and the new selection's."""

    today: int  # rows today
    proposed: int  # rows with the new selection
    rows: pd.DataFrame  # the rows the new selection adds (all of them)


@dataclass(frozen=True)
class SelectionPreview:
    """What a new selection would do compared with today's (None: a domain not yet
    configured, which today syncs nobody)."""

    domain: str
    today: Reconciliation | None
    proposed: Reconciliation
    joiners: Difference  # people to create or reactivate
    leavers: Difference  # accounts to deactivate
    out_of_scope: Difference  # desired today, in none of the new selection's groups
    requests: int | None  # Directory API requests (None: a SCIM domain's staging)

    def as_dict(self, first: int = FIRST_ROWS) -> dict[str, object]:
        def plan(result: Reconciliation | None) -> dict[str, object] | None:
            if result is None:
                return None
            return {
                "desired": result.stats["desired"],
                "actions": result.plan.counts(),
                "held": result.plan.held,
                "holds": [hold.as_dict() for hold in result.plan.holds],
                "plan_id": result.plan.plan_id,
            }

        def difference(found: Difference, columns: list[str]) -> dict[str, object]:
            rows = found.rows[columns].head(first).astype(object)
            return {
                "today": found.today,
                "proposed": found.proposed,
                "added": len(found.rows),
                "first": rows.where(rows.notna(), None).to_dict("records"),
            }

        return {
            "domain": self.domain,
            "today": plan(self.today),
            "proposed": plan(self.proposed),
            "joiners": difference(self.joiners, JOINER_COLUMNS),
            "leavers": difference(self.leavers, LEAVER_COLUMNS),
            "out_of_scope": difference(self.out_of_scope, OUT_OF_SCOPE_COLUMNS),
        }


JOINER_COLUMNS = ["email", "situation", "reason"]
LEAVER_COLUMNS = ["email", "komeet_id", "protected", "reason"]
OUT_OF_SCOPE_COLUMNS = ["email", "org_unit", "reason"]


def preview(
    engine: Engine,
    today: DomainConfig | None,
    proposed: DomainConfig,
    client: KomeetClient,
    reader: DirectoryReader | None = None,
) -> SelectionPreview:
    """Read the domain's directory and Komeet once, and reconcile them under ``today``'s
    configuration and under the ``proposed`` one: the plans a sync would make under each
    (guards included: the shrink guard against the domain's last good snapshot), and what
    differs. Nothing is stored."""
    configs = [c for c in (today, proposed) if c is not None]
    groups = tuple(dict.fromkeys(g for c in configs for g in c.groups))
    aliases = tuple(dict.fromkeys(a for c in configs for a in c.alias_domains))
    reading = dataclasses.replace(proposed, groups=groups, alias_domains=aliases)
    snapshot = read_source(reading, engine, reader)
    komeet = read_komeet(client, reading)
    last_good = PlanStore(engine).last_good_desired(proposed.domain) if today else None
    before = reconcile(snapshot, komeet, today, last_good_desired=last_good) if today else None
    after = reconcile(snapshot, komeet, proposed, last_good_desired=last_good)

    def added(name: str, key: str) -> Difference:
        new = after.reports[name]
        old = before.reports[name] if before is not None else new.iloc[0:0]
        return Difference(len(old), len(new), new[~contains(new[key], old[key])])

    leaving = after.reports["out_of_scope"]
    if before is not None:
        rows = before.rows
        desired_today = rows.loc[rows["has_person"] & rows["desired"], "account_id"]
        leaving = leaving[contains(leaving["account_id"], desired_today)]
    else:
        leaving = leaving.iloc[0:0]
    out_of_scope = Difference(
        len(before.reports["out_of_scope"]) if before is not None else 0,
        len(after.reports["out_of_scope"]),
        leaving.reset_index(drop=True),
    )
    return SelectionPreview(
        proposed.domain,
        before,
        after,
        added("joiners", "account_id"),
        added("leavers", "komeet_id"),
        out_of_scope,
        snapshot.requests,
    )


def first_sync(
    engine: Engine,
    config: DomainConfig,
    client: KomeetClient | None,
    reader: DirectoryReader | None = None,
) -> tuple[Reconciliation, pd.DataFrame]:
    """What the domain's next sync would decide, from a read of its directory and of
    Komeet's accounts (``client``; None: Komeet not read, only the directory's side of the
    decisions holds), with each selected group's counts (``scope.group_counts``). Nothing
    is stored."""
    snapshot = read_source(config, engine, reader)
    komeet = (
        read_komeet(client, config)
        if client is not None
        else KomeetAccounts.of(empty_frame(KOMEET_ACCOUNTS))
    )
    last_good = PlanStore(engine).last_good_desired(config.domain)
    decided = reconcile(snapshot, komeet, config, last_good_desired=last_good)
    return decided, scope.group_counts(snapshot, config)
