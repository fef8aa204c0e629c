"""A domain's sync as separate steps, one function each, for an orchestrator that stores what
each step returns (the Dagster assets call these, one function per asset).

``komeet-sync sync`` runs the same steps in one go (``sync.sync``); here each step's result
is a value of its own: a source read, Komeet's accounts, the reconciliation with its stored
plan, and the application's results.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sqlalchemy import Engine

from komeet_sync.engine.reconcile import Reconciliation, reconcile
from komeet_sync.komeet.apply import DEFAULT_CONCURRENCY, Mode, NotApplied, apply_plan
from komeet_sync.komeet.client import KomeetClient
from komeet_sync.model.domain_config import DomainConfig, SourceKind
from komeet_sync.runs.sync import SourceRead, komeet_users
from komeet_sync.store.ledger import Ledger
from komeet_sync.store.plans import PlanStore, StoredPlan


class StepError(Exception):
    """A step that cannot run for this domain; the message says why."""


@dataclass(frozen=True)
class KomeetRead:
    """The domain's accounts in Komeet (KOMEET_USERS) and those that could not be read."""

    accounts: pd.DataFrame
    errors: pd.DataFrame


@dataclass(frozen=True)
class PlannedSync:
    """A reconciliation's plan, as stored (its id, holds and approval) with its actions."""

    plan: StoredPlan
    actions: pd.DataFrame


@dataclass(frozen=True)
class AppliedSync:
    """What became of a plan: the ledger rows of its application, or why nothing was sent."""

    plan_id: str
    results: pd.DataFrame  # ledger rows: action, user_name, status, outcome, http_status...
    counts: dict[str, int]
    stopped: str  # empty when the plan was applied; else why nothing was sent


def domain_source(
    config: DomainConfig, google: SourceRead | None, scim: SourceRead | None
) -> SourceRead:
    """The read of the domain's own source: a domain reads only its own."""
    read = google if config.source is SourceKind.GOOGLE else scim
    if read is None:
        raise StepError(
            f"{config.domain} syncs from {config.source.value}, and no read of it is stored: "
            "materialize its extract asset first"
        )
    return read


def read_komeet(client: KomeetClient, config: DomainConfig) -> KomeetRead:
    """The domain's Komeet accounts, read from the SCIM API (``sync.komeet_users``)."""
    accounts, errors = komeet_users(client, config)
    return KomeetRead(accounts, errors)


def plan_sync(
    engine: Engine, config: DomainConfig, read: SourceRead, komeet: KomeetRead
) -> tuple[Reconciliation, PlannedSync]:
    """Reconcile and store the plan (``komeet-sync plans show`` and ``approve`` see it).
    The shrink guard compares with the last plan of the domain applied in full."""
    plans = PlanStore(engine)
    result = reconcile(
        read.snapshot,
        komeet.accounts,
        config,
        last_good_desired=plans.last_good_desired(config.domain),
        komeet_errors=komeet.errors,
    )
    stored = plans.save(
        result.plan,
        source=read.snapshot.source.value,
        snapshot_at=read.started_at,
        desired=result.stats["desired"],
        reports=None,
    )
    return result, PlannedSync(stored, result.plan.actions)


def apply_planned(
    engine: Engine,
    plan_id: str,
    client: KomeetClient,
    *,
    trigger: str,
    concurrency: int = DEFAULT_CONCURRENCY,
    mode: Mode | None = None,
) -> AppliedSync:
    """Apply a stored plan (a new application if it was applied before: the reconciliation
    found its actions still needed), unless a guard forbids it."""
    try:
        applied = apply_plan(
            engine,
            plan_id,
            client,
            concurrency=concurrency,
            mode=mode,
            trigger=trigger,
            again=True,
        )
    except NotApplied as stopped:
        return AppliedSync(plan_id, Ledger(engine).entries(plan_id, -1), {}, str(stopped))
    results = Ledger(engine).entries(plan_id, applied.application_id)
    return AppliedSync(plan_id, results, applied.counts, "")
