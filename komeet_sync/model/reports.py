"""Every report a sync writes, declared once: its name, what one row stands for, its columns
(ARCHITECTURE.md, "Reports").

The names are those of the README's reports table. They are the file names in a sync's
folder and in the offline audit's ``--out`` (``NAME.csv``, ``NAME.parquet``), the names
``Loader.report`` takes, and the names of the Dagster assets.
"""

from __future__ import annotations

from dataclasses import dataclass

from komeet_sync.model.plan import PLAN_COLUMNS


@dataclass(frozen=True)
class Report:
    name: str
    row: str  # what one row stands for, in words
    columns: tuple[str, ...]
    description: str  # one sentence, for the Dagster UI

    def __str__(self) -> str:
        return self.name


JOINERS = Report(
    "joiners",
    "person to create (joiner) or reactivate (returner)",
    (
        "email",
        "situation",
        "source",
        "account_id",
        "stable_id",
        "given_name",
        "family_name",
        "org_unit",
        "created_at",
        "komeet_id",
        "reason",
    ),
    "People to get an account (create) or to have theirs back (reactivate).",
)
LEAVERS = Report(
    "leavers",
    "active managed account to deactivate",
    ("email", "komeet_id", "external_id", "protected", "source", "account_id", "reason"),
    "Active managed accounts whose person is no longer desired: deactivate, never delete.",
)
UPDATES = Report(
    "updates",
    "account whose names, userName or externalId change",
    ("email", "komeet_id", "komeet_user_name", "changes", "source", "account_id", "reason"),
    "Matched accounts whose names, userName or externalId differ: update.",
)
DUPLICATES = Report(
    "duplicates",
    "person or account in a disputed cluster",
    ("cluster_id", "source", "account_id", "email", "reason"),
    "Clusters of people and accounts that match each other more than once: no action.",
)
ERRORS = Report(
    "errors",
    "problem that stops one person, group, record or action",
    ("source", "account_id", "email", "error", "detail", "reason"),
    "What could not be done and why: invalid emails, missing groups, failed actions.",
)
OUT_OF_SCOPE = Report(
    "out_of_scope",
    "active directory user in no selected group",
    ("email", "source", "account_id", "org_unit", "last_login_at", "reason"),
    "Active directory users in none of the selected groups.",
)
PLAN = Report(
    "plan",
    "action to send to Komeet",
    tuple(PLAN_COLUMNS),
    "The actions to send to Komeet, with the guards that hold them.",
)
RESULTS = Report(
    "results",
    "action of the plan's application, as the ledger recorded it",
    (
        "position",
        "action",
        "user_name",
        "status",
        "outcome",
        "attempts",
        "http_status",
        "komeet_id",
        "response_body",
        "idempotency_key",
        "sent_at",
        "finished_at",
    ),
    "Each action's outcome in Komeet (the ledger), or why nothing was sent.",
)

# The reports reconciliation makes, then the plan; the results come with an apply.
RECONCILED: tuple[Report, ...] = (JOINERS, LEAVERS, UPDATES, DUPLICATES, ERRORS, OUT_OF_SCOPE)
REPORTS: dict[str, Report] = {report.name: report for report in (*RECONCILED, PLAN, RESULTS)}

# What a sync keeps besides its reports: what it read.
SNAPSHOT = "snapshot"  # the directory (model.snapshots.DirectorySnapshot)
ACCOUNTS = "komeet_accounts"  # Komeet's accounts (model.snapshots.KomeetAccounts)
STORED_NAMES: tuple[str, ...] = (SNAPSHOT, ACCOUNTS, *REPORTS)

# The errors report's error for an action Komeet refused (ARCHITECTURE.md, "Reports").
ACTION_FAILED = "action_failed"
