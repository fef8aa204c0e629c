"""Retention's prune (``runs.retention``) on SQLite and PostgreSQL: what is older than the
cutoff goes, counted by domain, in batches, and an interrupted prune says what it deleted;
the audit trail and what the latest reads stay, whatever their age."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from upath import UPath

from komeet_sync.runs.retention import Kind, Prune, reports_missing
from komeet_sync.sources.scim.changes import pending
from komeet_sync.sources.scim.pushes import last_pushes
from komeet_sync.store.database import open_database
from komeet_sync.store.plans import PlanStore
from komeet_sync.store.results import ResultStore
from tests.support.retention import (
    CHANGES_DELETED,
    DAYS,
    REQUESTS_DELETED,
    REQUESTS_KEPT,
    ROWS_KEPT,
    SYNCS_DELETED,
    SYNCS_KEPT,
    audit_trail,
    build,
    remaining,
)


@pytest.fixture
def aged(database_url, tmp_path):
    engine = open_database(database_url)
    yield engine, build(engine, ResultStore(tmp_path / "syncs"))
    engine.dispose()


def counts(tally, kind: Kind) -> dict[str, int]:
    return {domain: amount.count for domain, amount in tally.kinds[kind].items()}


def test_what_is_older_than_the_retention_goes_and_the_audit_trail_stays(aged):
    engine, state = aged
    trail = audit_trail(engine)
    prune = Prune(engine, state.store, days=DAYS, now=state.now, batch=2)

    planned = prune.survey()
    deleted = prune.run()

    assert deleted == planned  # the survey counts what the prune deletes
    assert counts(deleted, Kind.REQUEST_LOG) == REQUESTS_DELETED
    assert counts(deleted, Kind.CHANGE_LOG) == CHANGES_DELETED
    results = deleted.total(Kind.RESULTS)
    assert results.count == len(SYNCS_DELETED) and results.files >= 4 and results.size > 0
    assert remaining(engine) == ROWS_KEPT
    assert [name for name in state.syncs if UPath(state.syncs[name]).exists()] == [
        name for name in state.syncs if name in SYNCS_KEPT
    ]
    assert audit_trail(engine) == trail
    # What reads the latest still finds it: status's last pushes, the worker's changes.
    assert set(last_pushes(engine)) == {"globex.com", "initech.com"}
    assert {domain: n for domain, (n, _) in pending(engine).items()} == {
        "globex.com": 2,
        "initech.com": 1,
    }
    assert Prune(engine, state.store, days=DAYS, now=state.now).survey().empty


def test_a_plan_whose_reports_were_pruned_says_so(aged):
    engine, state = aged
    plans = PlanStore(engine)
    applied = plans.get(state.plans["p250"])
    assert reports_missing(applied, state.now) is None

    Prune(engine, state.store, days=DAYS, now=state.now).run()

    said = reports_missing(applied, state.now)
    assert said is not None and said.startswith("its reports were deleted by retention")
    assert "90 days (KOMEET_SYNC_RETENTION_DAYS unset: the default)" in said
    assert reports_missing(plans.get(state.plans["held"]), state.now) is None


class StopAt:
    """Progress that stops the prune (Ctrl-C) once the stage ``label`` has advanced."""

    def __init__(self, label: str) -> None:
        self.label = label

    @contextmanager
    def stage(self, label: str, unit: str):
        def advance(done: int, total: int | None) -> None:
            if label == self.label:
                raise KeyboardInterrupt

        yield advance


def test_an_interrupted_prune_says_what_it_deleted_and_the_next_one_deletes_the_rest(aged):
    engine, state = aged
    prune = Prune(engine, state.store, days=DAYS, now=state.now, batch=2)

    with pytest.raises(KeyboardInterrupt):
        prune.run(StopAt("Deleting the SCIM request log"))

    assert prune.deleted.total(Kind.REQUEST_LOG).count == 2  # one batch, committed
    assert remaining(engine)[0] == REQUESTS_KEPT + sum(REQUESTS_DELETED.values()) - 2
    rest = Prune(engine, state.store, days=DAYS, now=state.now).run()
    assert rest.total(Kind.REQUEST_LOG).count == sum(REQUESTS_DELETED.values()) - 2
    assert rest.total(Kind.RESULTS).count == len(SYNCS_DELETED)
