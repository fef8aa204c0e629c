"""The result store: every name a sync stores is read back as it was written, in one folder
per sync whose id sorts by time, and the actions Komeet refused join that sync's errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from komeet_sync.engine.reconcile import reconcile
from komeet_sync.model.reports import RECONCILED, RESULTS
from komeet_sync.runs.sync import Planned, write_reports
from komeet_sync.store.ledger import ResultsReport
from komeet_sync.store.plans import PlanReport
from komeet_sync.store.results import ResultStore
from komeet_sync.store.sync_folder import ResultError
from tests.support.frames import account, config, directory, komeet, person

MONDAY = datetime(2026, 11, 30, 9, 0, 0, 250_000, tzinfo=UTC)


@pytest.fixture
def planned() -> Planned:
    snapshot = directory(person("g1", "ada@acme.com"), person("g2", "not an address"))
    accounts = komeet(account("k9", "gone@acme.com", external_id="g9"))
    result = reconcile(snapshot, accounts, config(max_deactivation_share=1.0))
    return Planned(result, PlanReport(result.plan.actions, result.summary()))


def results(statuses: dict[str, str]) -> ResultsReport:
    """The results of an application: one ledger row per user name, with its status."""
    entries = pd.DataFrame(
        [
            {column: None for column in RESULTS.columns}
            | {"action": "create", "user_name": name, "status": status, "outcome": status}
            for name, status in statuses.items()
        ],
        columns=list(RESULTS.columns),
    )
    counts = entries["status"].value_counts().to_dict()
    return ResultsReport("plan_x", 1, entries, counts)


def test_every_name_is_read_back_as_written(tmp_path, planned):
    store = ResultStore(tmp_path / "syncs")
    folder = store.start("acme.com", "komeet-sync sync", started_at=MONDAY)
    snapshot = directory(person("g1", "ada@acme.com"))

    folder.write("snapshot", snapshot)
    write_reports(folder, planned)

    assert folder.sync_id.startswith("20261130T090000.250Z-")
    assert folder.started_at == MONDAY
    assert json.loads((folder.path / "sync.json").read_text())["trigger"] == "komeet-sync sync"
    for report in RECONCILED:
        pd.testing.assert_frame_equal(
            folder.read(report.name), planned.reconciliation.reports[report.name]
        )
        assert (folder.path / f"{report.name}.csv").exists()
    plan = folder.read("plan")
    pd.testing.assert_frame_equal(plan.actions, planned.report.actions)
    assert plan.summary["plan_id"] == planned.plan_id and plan.stored is None
    pd.testing.assert_frame_equal(folder.read("snapshot").users, snapshot.users)
    assert folder.rows("errors") == 1


def test_failed_actions_join_the_errors_and_replace_an_earlier_apply_s(tmp_path, planned):
    folder = ResultStore(tmp_path / "syncs").start("acme.com", "test", started_at=MONDAY)
    write_reports(folder, planned)

    folder.write("results", results({"ada@acme.com": "failed", "bob@acme.com": "applied"}))
    errors = folder.read("errors")
    assert list(errors["error"]) == ["invalid_email", "action_failed"]
    assert errors["email"].iloc[-1] == "ada@acme.com"

    folder.write("results", results({"ada@acme.com": "applied"}))  # resumed: it went through
    assert list(folder.read("errors")["error"]) == ["invalid_email"]
    assert folder.read("results").counts == {"applied": 1}


def test_the_latest_sync_that_stored_a_name_is_found(tmp_path, planned):
    store = ResultStore(tmp_path / "syncs")
    first = store.start("acme.com", "test", started_at=MONDAY)
    write_reports(first, planned)
    second = store.start("acme.com", "test", started_at=MONDAY + timedelta(hours=1))
    second.write("results", results({"ada@acme.com": "applied"}))

    assert [sync.sync_id for sync in store.syncs("acme.com")] == [first.sync_id, second.sync_id]
    assert store.latest("acme.com", "joiners").sync_id == first.sync_id
    assert store.latest("acme.com", "results").sync_id == second.sync_id
    assert store.latest("acme.com", "snapshot") is None
    assert store.latest("globex.com", "joiners") is None
    assert store.domains() == ["acme.com"]
    assert store.last_sync("acme.com").sync_id == second.sync_id
    assert store.last_sync("globex.com") is None


def test_the_last_sync_is_found_by_its_name_whatever_it_stored(tmp_path, planned):
    store = ResultStore(tmp_path / "syncs")
    for hours in (5, 0, 3):  # started in another order than by time
        last = store.start("acme.com", "test", started_at=MONDAY + timedelta(hours=hours))
    (tmp_path / "syncs" / "acme.com" / "notes.txt").write_text("not a sync")
    newest = store.start("acme.com", "test", started_at=MONDAY + timedelta(hours=9))

    assert last.sync_id != newest.sync_id
    assert store.last_sync("acme.com").sync_id == newest.sync_id
    assert store.last_sync("acme.com").summary() is None  # it has not planned yet
    write_reports(newest, planned)
    assert store.last_sync("acme.com").summary()["plan_id"] == planned.plan_id
    assert not store.last_sync("acme.com").is_dry_run()
    dry_run = store.start("acme.com", "test", started_at=MONDAY + timedelta(hours=10), dry_run=True)
    write_reports(dry_run, planned)
    assert store.last_sync("acme.com").sync_id == dry_run.sync_id
    assert store.last_sync("acme.com").is_dry_run()  # as its sync.json says


def test_a_folder_refuses_what_it_cannot_store_and_says_what_it_lacks(tmp_path):
    folder = ResultStore(tmp_path / "syncs").start("acme.com", "test")

    with pytest.raises(ResultError, match="cannot store a str as 'joiners'"):
        folder.write("joiners", "not a frame")
    with pytest.raises(ResultError, match="holds no leavers"):
        folder.read("leavers")


def test_a_relative_results_folder_is_stored_as_an_absolute_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KOMEET_SYNC_RESULTS", "results")
    folder = ResultStore.from_settings().start("acme.com", "test", started_at=MONDAY)
    # a plan records this location: it must be found from any working directory
    assert folder.location.startswith(str(tmp_path / "results"))


@pytest.mark.parametrize(
    ("root", "says"),
    [
        ("garbage://results", "Unsupported filesystem: 'garbage'; set KOMEET_SYNC_RESULTS to"),
        ("memory://results", None),
    ],
)
def test_a_root_no_filesystem_can_hold_names_its_variable(monkeypatch, root, says):
    monkeypatch.setenv("KOMEET_SYNC_RESULTS", root)
    if says is None:
        assert str(ResultStore.from_settings().root) == root
        return
    with pytest.raises(ResultError, match=says):
        ResultStore.from_settings()
    with pytest.raises(ResultError, match="; give a folder"):  # given, not from the settings
        ResultStore("garbage://elsewhere")
