"""State stored before a change of layout stays readable: the fixture was written by the
code of that time (tests/fixtures/state_before_layers/README.md)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from upath import UPath

from komeet_sync.analysis.loader import Loader
from komeet_sync.sources.scim.staging import read_staging
from komeet_sync.store.database import open_database
from komeet_sync.store.domains import DomainStore
from komeet_sync.store.failures import recent_failures
from komeet_sync.store.ledger import Ledger
from komeet_sync.store.legacy import read_result
from komeet_sync.store.plans import PlanStore
from tests.support import FIXTURES

FIXTURE = FIXTURES / "state_before_layers"


@pytest.fixture
def state(tmp_path) -> Path:
    """A copy of the fixture: opening a database migrates it, and the fixture stays as
    users' disks hold it."""
    shutil.copytree(FIXTURE, tmp_path / "state")
    return tmp_path / "state"


def history(state: Path, asset: str, domain: str = "acme.com") -> UPath:
    [run] = (state / "home" / "assets" / "history" / asset / domain).iterdir()
    return UPath(run)


def test_stored_results_read_back_as_today_s_types(state):
    read = read_result(history(state, "directory_users"))
    assert read.source.value == "google"
    assert sorted(read.users["email"]) == [
        "admin@acme.com",
        *(f"user{n:05d}@acme.com" for n in range(1, 6)),
    ]
    assert read.started_at.tzinfo is not None

    komeet = read_result(history(state, "komeet_users"))
    assert len(komeet.accounts) == 6 and komeet.unreadable.empty

    planned = read_result(history(state, "provisioning_plan"))
    assert planned.stored.plan_id == "plan_a983af3be6785b339cb8"
    assert planned.stored.counts == {"create": 1, "deactivate": 1, "update": 1}
    assert sorted(planned.actions["action"]) == ["create", "deactivate", "update"]

    applied = read_result(history(state, "provisioning_results"))
    assert applied.counts == {"applied": 3} and applied.stopped == ""
    assert list(applied.entries["status"]) == ["applied"] * 3

    joiners = read_result(history(state, "joiners"))
    assert list(joiners["email"]) == ["admin@acme.com"]


def test_a_database_made_before_opens_with_everything_in_it(state):
    engine = open_database(f"sqlite:///{state / 'komeet_sync.db'}")

    domains = {config.domain: config for config in DomainStore(engine).list()}
    assert sorted(domains) == ["acme.com", "globex.com"]
    assert domains["globex.com"].groups == ("Komeet Users",)
    plans = PlanStore(engine).list()
    assert set(plans["domain"]) == {"acme.com", "globex.com"}
    plan = PlanStore(engine).get("plan_a983af3be6785b339cb8")
    assert plan.counts == {"create": 1, "deactivate": 1, "update": 1}
    ledger = Ledger(engine).entries(plan.plan_id)
    assert list(ledger["status"]) == ["applied"] * 3
    staged = read_staging(engine, domains["globex.com"])
    assert sorted(staged.users["email"]) == [
        "anna.schmidt@globex.com", "ben.weber@globex.com", "clara.wagner@globex.com",
    ]  # fmt: skip
    failures = recent_failures(engine, "acme.com")
    assert list(failures["run_id"]) == ["run-legacy-1"]
    assert isinstance(failures, pd.DataFrame)


def test_the_loader_lists_syncs_stored_before_under_today_s_names(state):
    sync = Loader(home=str(state / "home"), database_url=f"sqlite:///{state / 'komeet_sync.db'}")

    assert sync.domains() == ["acme.com", "globex.com"]
    syncs = sync.syncs("acme.com")
    # The Dagster run's assets, then the CLI's reports folder, by time.
    assert len(syncs) == 2 and syncs["started_at"].is_monotonic_increasing
    assert syncs["sync_id"].iloc[0] == history(state, "joiners").name
    dagster_run = syncs["sync_id"].iloc[0]
    assert len(sync.report("acme.com", "errors", sync_id=dagster_run)) == 0
    assert list(sync.report("acme.com", "joiners", sync_id=dagster_run)["email"]) == [
        "admin@acme.com"
    ]
    assert sorted(sync.report("acme.com", "plan", sync_id=dagster_run)["action"]) == [
        "create", "deactivate", "update",
    ]  # fmt: skip
    assert len(sync.snapshot("acme.com", sync_id=dagster_run).users) == 6
    assert sync.report("acme.com", "errors").empty  # the latest: the CLI's folder
    trend = sync.trend("acme.com")
    assert list(trend["joiners"]) == [1, 0] and list(trend["applied"]) == [3, 0]
    assert list(sync.report("globex.com", "joiners")["email"]) == [
        "anna.schmidt@globex.com", "ben.weber@globex.com", "clara.wagner@globex.com",
    ]  # fmt: skip
