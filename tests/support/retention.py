"""A state some months old, for retention's tests (``runs.retention``): the SCIM request
log, the change log and the result store holding rows and syncs on both sides of a 90-day
cutoff, and the plans, ledger and failures that must outlive them all."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pandas as pd
from sqlalchemy import Engine, func, insert, select

from komeet_sync.model.domain_config import DomainConfig
from komeet_sync.model.reports import RESULTS
from komeet_sync.sources.scim import changes
from komeet_sync.store.domains import DomainStore
from komeet_sync.store.failures import record_failure
from komeet_sync.store.ledger import ResultsReport, Status
from komeet_sync.store.plans import PlanStore
from komeet_sync.store.results import ResultStore
from komeet_sync.store.tables import (
    LedgerRow,
    PlanRow,
    ScimChangeRow,
    ScimRequestRow,
    SyncFailureRow,
)
from tests.store.test_plans import BUDGET, apply_as, plan_of, save

DAYS = 90


@dataclass
class AgedState:
    """What ``build`` stored, and what a 90-day prune at ``now`` must delete and keep."""

    now: datetime
    store: ResultStore
    syncs: dict[str, str] = field(default_factory=dict)  # name -> location
    plans: dict[str, str] = field(default_factory=dict)  # name -> plan id

    def ago(self, days: float) -> datetime:
        return self.now - timedelta(days=days)


# Rows of the request log deleted by a 90-day prune, by domain, and those kept.
REQUESTS_DELETED = {"globex.com": 3, "initech.com": 1, "(no domain)": 1}
REQUESTS_KEPT = 3  # globex.com's 2 recent ones, initech.com's last push (150 days old)
CHANGES_DELETED = {"globex.com": 2}
CHANGES_KEPT = 3  # one the worker has not processed, a recent one, initech.com's (no cursor)
ROWS_KEPT = (REQUESTS_KEPT, CHANGES_KEPT)  # what ``remaining`` counts after the prune
# acme.com's syncs deleted: 250 and 120 days old. Kept: the latest of ``results`` (200 days
# old), the sync of a plan still held (150 days), the recent one.
SYNCS_DELETED = ("s250", "s120")
SYNCS_KEPT = ("s200", "s150", "s10")


def build(engine: Engine, store: ResultStore, now: datetime | None = None) -> AgedState:
    """acme.com (Google) with five syncs, two of whose plans were applied; globex.com and
    initech.com (SCIM) with their request and change logs; a recorded sync failure."""
    state = AgedState(now or datetime.now(UTC), store)
    domains = DomainStore(engine)
    domains.add(
        DomainConfig.create(
            "acme.com", "google", admin_email="admin@acme.com", groups=["all@acme.com"]
        )
    )
    for domain in ("globex.com", "initech.com"):
        domains.add(DomainConfig.create(domain, "scim"))
    _requests(engine, state)
    _changes(engine, state)
    _syncs(engine, state)
    record_failure(engine, "acme.com", "run-1", "sync_domain", "Komeet answered 503")
    return state


def _requests(engine: Engine, state: AgedState) -> None:
    rows = [
        ("globex.com", "POST", 201, 200),
        ("globex.com", "GET", 200, 120),
        ("globex.com", "POST", 401, 100),  # refused: not a push
        ("globex.com", "PATCH", 204, 5),  # globex.com's last push
        ("globex.com", "GET", 200, 1),
        ("initech.com", "GET", 200, 160),
        ("initech.com", "POST", 201, 150),  # initech.com's last push: kept, however old
        (None, "GET", 404, 100),
    ]
    with engine.begin() as connection:
        connection.execute(
            insert(ScimRequestRow),
            [
                {
                    "at": state.ago(days),
                    "domain": domain,
                    "method": method,
                    "path": f"/scim/{domain}/v2/Users",
                    "status": status,
                    "duration_ms": 3.0,
                    "body": json.dumps({"userName": "ann@example.com"}),
                }
                for domain, method, status, days in rows
            ],
        )


def _changes(engine: Engine, state: AgedState) -> None:
    ids = {domain: DomainStore(engine).id_of(domain) for domain in ("globex.com", "initech.com")}
    rows = [("globex.com", 130), ("globex.com", 120), ("globex.com", 110), ("globex.com", 2)]
    rows.append(("initech.com", 140))
    for domain, days in rows:
        with engine.begin() as connection:
            changes.record(connection, ids[domain], {f"u-{days}": []}, state.ago(days))
    with engine.connect() as connection:
        seqs = connection.scalars(
            select(ScimChangeRow.seq)
            .where(ScimChangeRow.domain_id == ids["globex.com"])
            .order_by(ScimChangeRow.seq)
        ).all()
    changes.advance(engine, "globex.com", changes.WORKER, seqs[1])  # the 110-day one is next


def _syncs(engine: Engine, state: AgedState) -> None:
    plans = PlanStore(engine)
    for days in (250, 200, 150, 120, 10):
        folder = state.store.start("acme.com", "komeet-sync sync", started_at=state.ago(days))
        folder.write("joiners", pd.DataFrame({"email": [f"ann{days}@acme.com"]}))
        state.syncs[f"s{days}"] = folder.location
    applied = {"s250": "p250", "s200": "p200"}
    for sync, name in applied.items():
        plan = save(plans, plan_of(name), reports=state.syncs[sync])
        apply_as(plans, plan.plan_id, Status.APPLIED)
        state.plans[name] = plan.plan_id
        entries = pd.DataFrame(
            [{column: None for column in RESULTS.columns} | {"status": "applied"}],
            columns=list(RESULTS.columns),
        )
        state.store.at(state.syncs[sync]).write(
            RESULTS.name, ResultsReport(plan.plan_id, 1, entries, {"applied": 1})
        )
    # A held plan, made again by the latest sync: it still names the first sync's folder.
    held = plan_of("ben", "cy", action="deactivate", holds=(BUDGET,))
    state.plans["held"] = save(plans, held, reports=state.syncs["s150"]).plan_id
    assert save(plans, held, reports=state.syncs["s10"]).reports == state.syncs["s150"]


def audit_trail(engine: Engine) -> dict[str, int]:
    """The rows of the plans, the ledger and the recorded failures."""
    with engine.connect() as connection:
        return {
            table.__tablename__: connection.scalar(select(func.count()).select_from(table))
            for table in (PlanRow, LedgerRow, SyncFailureRow)
        }


def remaining(engine: Engine) -> tuple[int, int]:
    """The rows left in the request log and the change log."""
    with engine.connect() as connection:
        return tuple(  # type: ignore[return-value]
            connection.scalar(select(func.count()).select_from(table))
            for table in (ScimRequestRow, ScimChangeRow)
        )
