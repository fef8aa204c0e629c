"""What an analyst asks of a domain's sync, answered from the stored state (``Loader``):
one person's timeline from the directory to Komeet ("why was this person not created?"),
every rule that decided for them in the last sync (``why``),
and each duplicate cluster with the role of every account in it and what to do about it
(ARCHITECTURE.md, "Situations": a disputed person is listed in duplicates, never synced).
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from komeet_sync.analysis.loader import Loader, utc
from komeet_sync.model.reports import ACCOUNTS, RECONCILED, SNAPSHOT
from komeet_sync.runs.explain import Explanation, explain, sides_for
from komeet_sync.store.domains import DomainStore

TIMELINE_COLUMNS = ["at", "stage", "detail", "sync_id", "plan_id"]
CLUSTER_COLUMNS = [
    "cluster_id", "role", "source", "account_id", "email", "user_name", "active",
    "external_id", "reason", "advice",
]  # fmt: skip
PERSON_REPORTS = tuple(report.name for report in RECONCILED)


def person_timeline(loader: Loader, domain: str, email: str, runs: int = 20) -> pd.DataFrame:
    """Everything stored about the person with ``email`` (or an alias of it) in ``domain``,
    oldest first: in each of the last ``runs`` syncs, whether the directory had them and
    which report named them, with its reason, and the plan's action; then every request
    sent to Komeet for them (the ledger) and every SCIM push that named them."""
    wanted = email.strip().lower()
    history = loader.history(domain, "joiners").tail(runs)
    snapshots = {
        sync_id: loader.snapshot(domain, sync_id=sync_id) for sync_id in history["sync_id"]
    }
    # Who the person is: every address and directory id they had in any of these syncs,
    # so that a renamed person is followed under their old address too.
    emails, ids = {wanted}, set[str]()
    for snapshot in snapshots.values():
        ids.update(_directory_user(snapshot, {wanted})["account_id"].astype(str))
    for snapshot in snapshots.values():
        found = snapshot.users[snapshot.users["account_id"].astype(str).isin(ids)]
        emails.update(found["email"].str.lower())
        aliases = snapshot.aliases[snapshot.aliases["account_id"].astype(str).isin(ids)]
        emails.update(aliases["alias"].str.lower())
    rows: list[dict[str, Any]] = []
    for run in history.to_dict("records"):
        at, sync_id = run["started_at"], str(run["sync_id"])
        snapshot = snapshots[sync_id]
        found = snapshot.users[snapshot.users["account_id"].astype(str).isin(ids)]
        if found.empty:
            rows.append(_row(at, "directory", f"no directory user has {wanted}", sync_id))
        for user in found.to_dict("records"):
            groups = snapshot.members.loc[
                snapshot.members["member_id"].astype(str) == str(user["account_id"]), "group"
            ]
            state = "active" if user["active"] else f"inactive ({user['inactive_reason']})"
            rows.append(
                _row(
                    at,
                    "directory",
                    f"{user['email']}: {state}, member of "
                    f"{', '.join(sorted(groups)) or 'no group'}",
                    sync_id,
                )
            )
        for name in PERSON_REPORTS:
            report = loader.report(domain, name, sync_id=sync_id)
            for reason in _naming(report, emails, ids)["reason"]:
                rows.append(_row(at, name, str(reason), sync_id))
        plan = loader.value(domain, "plan", sync_id=sync_id)
        plan_id = plan.stored.plan_id if plan.stored else plan.summary.get("plan_id")
        actions = plan.actions
        mine = actions["user_name"].str.lower().isin(emails) | actions["email"].str.lower().isin(
            emails
        )
        for action in actions[mine].to_dict("records"):
            what = f"{action['action']}: {action['reason']}"
            rows.append(_row(at, "plan", what, sync_id, plan_id))
        if not mine.any():
            rows.append(_row(at, "plan", "no action for this person", sync_id, plan_id))
    ledger = loader.ledger(domain)
    if not ledger.empty:
        for entry in ledger[ledger["user_name"].str.lower().isin(emails)].to_dict("records"):
            status = f" (HTTP {entry['http_status']})" if pd.notna(entry["http_status"]) else ""
            rows.append(
                _row(
                    utc(entry["finished_at"] or entry["sent_at"]),
                    "komeet",
                    f"{entry['action']} {entry['status']}{status}: {entry['outcome']}",
                    plan_id=entry["plan_id"],
                )
            )
    requests = loader.scim_requests(domain)
    if not requests.empty:
        text = requests["path"].fillna("") + " " + requests["body"].fillna("")
        named = text.str.lower().str.contains("|".join(map(re.escape, sorted(emails))))
        for request in requests[named].to_dict("records"):
            rows.append(
                _row(
                    utc(request["at"]),
                    "idp push",
                    f"{request['method']} {request['path']} -> {request['status']}",
                )
            )
    timeline = pd.DataFrame(rows, columns=TIMELINE_COLUMNS).drop_duplicates()
    return timeline.sort_values("at", kind="stable").reset_index(drop=True)


def duplicate_clusters(loader: Loader, domain: str) -> pd.DataFrame:
    """The latest duplicates report, one row per account, with each account's role in its
    cluster and the cluster's advice. Roles: a directory user; the account the sync manages
    for it (externalId = the user's id); an unmanaged account (no externalId, which the sync
    never changes); an account managed for somebody else."""
    duplicates = loader.report(domain, "duplicates")
    if duplicates.empty:
        return pd.DataFrame(columns=CLUSTER_COLUMNS)
    accounts = loader.report(domain, ACCOUNTS)
    users = loader.report(domain, SNAPSHOT)
    clusters = duplicates.merge(
        accounts[["komeet_id", "user_name", "external_id", "active"]],
        how="left",
        left_on="account_id",
        right_on="komeet_id",
    ).merge(
        users[["account_id", "stable_id"]].rename(columns={"account_id": "user_id"}),
        how="left",
        left_on="account_id",
        right_on="user_id",
    )
    directory = clusters["source"] != "komeet"
    people = clusters.loc[directory, ["cluster_id", "stable_id"]].dropna().astype(str)
    pairs = pd.MultiIndex.from_arrays(
        [clusters["cluster_id"].astype(str), clusters["external_id"].fillna("").astype(str)]
    )
    managed = ~directory & pairs.isin(pd.MultiIndex.from_frame(people))
    unmanaged = ~directory & clusters["external_id"].fillna("").astype(str).str.strip().eq("")
    clusters["role"] = "account managed for somebody else"
    clusters.loc[directory, "role"] = "directory user"
    clusters.loc[managed, "role"] = "managed account of this person"
    clusters.loc[unmanaged, "role"] = "unmanaged account (no externalId)"
    advice = {cluster_id: _advice(rows) for cluster_id, rows in clusters.groupby("cluster_id")}
    clusters["advice"] = clusters["cluster_id"].map(advice)
    return clusters[CLUSTER_COLUMNS]


def _advice(cluster: pd.DataFrame) -> str:
    roles = cluster["role"].value_counts()
    users = int(roles.get("directory user", 0))
    mine = cluster.loc[cluster["role"] == "managed account of this person", "user_name"]
    loose = cluster.loc[cluster["role"] == "unmanaged account (no externalId)", "user_name"]
    if users > 1:
        return (
            "Two directory users share an address: fix the directory (remove the alias or "
            "the extra user); the sync cannot tell whose account it is."
        )
    if len(mine) > 1:
        return (
            f"Komeet holds {len(mine)} accounts with this person's externalId "
            f"({', '.join(mine)}): keep the one named as in the directory, deactivate the "
            "others in Komeet."
        )
    if len(mine) == 1 and len(loose):
        return (
            f"Keep {mine.iloc[0]} (the sync manages it). In Komeet, merge "
            f"{', '.join(loose)} into it or deactivate it: the sync never changes an "
            "account without an externalId. The next sync then renames and updates the kept "
            "account."
        )
    ids = cluster.loc[cluster["role"] == "directory user", "account_id"]
    return (
        "Decide in Komeet which account this person keeps and give it the externalId "
        f"{', '.join(ids) or 'of the directory user'}; deactivate the others."
    )


def _directory_user(snapshot: Any, emails: set[str]) -> pd.DataFrame:
    users = snapshot.users
    by_alias = snapshot.aliases.loc[
        snapshot.aliases["alias"].str.lower().isin(emails), "account_id"
    ].astype(str)
    return users[
        users["email"].str.lower().isin(emails) | users["account_id"].astype(str).isin(by_alias)
    ]


def _naming(report: pd.DataFrame, emails: set[str], ids: set[str]) -> pd.DataFrame:
    mask = pd.Series(False, index=report.index)
    for column in ("email", "komeet_user_name"):
        if column in report:
            mask |= report[column].fillna("").str.lower().isin(emails)
    if "account_id" in report:
        mask |= report["account_id"].fillna("").astype(str).isin(ids)
    return report[mask]


def _row(
    at: Any, stage: str, detail: str, sync_id: str | None = None, plan_id: str | None = None
) -> dict[str, Any]:
    return {"at": at, "stage": stage, "detail": detail, "sync_id": sync_id, "plan_id": plan_id}


def why(loader: Loader, domain: str, email: str) -> Explanation:
    """Every rule that decided for ``email`` in ``domain`` (``runs.explain``), decided from
    what the domain's last stored sync read: `komeet-sync explain DOMAIN EMAIL --last`."""
    config = DomainStore(loader.engine).get(domain)
    sides = sides_for(config, loader.engine, last=True, store=loader.store)
    return explain(config, email, sides.people, sides.accounts, loader.engine, origin=sides.origin)
