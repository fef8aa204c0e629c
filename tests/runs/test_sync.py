"""A domain's sync through its steps (``runs.sync``), as ``komeet-sync sync`` and ``apply`` run
them: a dry run stores its sync and its plan, marked as a dry run; a plan applied later
records its results beside the reports it came with."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from komeet_sync.runs import sync
from komeet_sync.store.database import open_database
from komeet_sync.store.domains import DomainStore
from komeet_sync.store.failures import latest_failures, recent_failures
from komeet_sync.store.plans import PlanStore
from komeet_sync.store.results import ResultStore
from tests.support.frames import account, config, directory, komeet, person
from tests.support.provisioning import DOMAIN, configure, synced
from tests.support.provisioning import directory as google_directory
from tests.support.provisioning import person as google_person


@pytest.fixture
def engine(sqlite_url, tmp_path):
    engine = open_database(sqlite_url)
    yield engine
    engine.dispose()


def test_a_dry_run_stores_what_it_read_and_decided_and_its_plan_as_a_dry_run(tmp_path, engine):
    store = ResultStore(tmp_path / "syncs")
    snapshot = directory(person("g1", "ada@acme.com"), person("g2", "not an address"))
    accounts = komeet(account("k9", "gone@acme.com", external_id="g9"))

    run = sync.sync(
        config(max_deactivation_share=1.0),
        engine,
        store,
        read_directory=lambda _advance: snapshot,
        komeet=accounts,
        dry_run=True,
        trigger="komeet-sync sync --dry-run",
    )

    assert run.applied is None
    stored_plan = PlanStore(engine).get(run.planned.plan_id)
    assert stored_plan.dry_run and stored_plan == run.planned.report.stored
    assert list(PlanStore(engine).list()["state"]) == ["dry_run"]
    [stored] = store.syncs("acme.com")
    assert stored.record()["trigger"] == "komeet-sync sync --dry-run"
    assert list(stored.read("plan").actions["action"]) == ["create", "deactivate"]
    assert list(stored.read("errors")["error"]) == ["invalid_email"]
    assert stored.read("komeet_accounts").accounts["komeet_id"].tolist() == ["k9"]
    assert run.summary()["sync_id"] == stored.sync_id


def test_a_read_that_fails_stores_nothing(tmp_path, engine):
    store = ResultStore(tmp_path / "syncs")

    def failing_read(_advance):
        raise RuntimeError("members.list failed")

    with pytest.raises(RuntimeError, match=r"members\.list failed"):
        sync.sync(config(), engine, store, read_directory=failing_read, komeet=komeet())

    assert store.syncs("acme.com") == []
    [failure] = recent_failures(engine, "acme.com").to_dict("records")
    assert failure["message"] == "members.list failed"


def test_a_failed_sync_is_recorded_once_and_an_interruption_not_at_all(tmp_path, engine):
    store = ResultStore(tmp_path / "syncs")

    def interrupted(advance):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sync.sync(config(), engine, store, read_directory=interrupted, komeet=komeet())
    assert recent_failures(engine, "acme.com").empty

    def failing_read(advance):
        raise RuntimeError("the directory answered 503\nand more lines")

    with pytest.raises(RuntimeError):
        sync.sync(config(), engine, store, read_directory=failing_read, komeet=komeet(),
                  trigger="komeet-sync sync --dry-run", dry_run=True)  # fmt: skip
    [failure] = latest_failures(engine).to_dict("records")
    assert failure["domain"] == "acme.com" and failure["job"] == "komeet-sync sync --dry-run"
    assert failure["message"] == "the directory answered 503"
    assert len(failure["run_id"]) == 32


def test_a_plan_applied_later_records_its_results_beside_its_reports(
    monkeypatch, tmp_path, engine, komeet
):
    monkeypatch.setenv("KOMEET_SYNC_HOME", str(tmp_path / "home"))
    disabled = configure(engine, enabled=False)
    people = [google_person(n) for n in range(3)]
    held = synced(disabled, google_directory(people), komeet.client(), engine)
    assert held.applied.stopped is not None and held.applied.stopped.kind == "disabled"
    assert not held.folder.has("results")
    DomainStore(engine).set_enabled(DOMAIN, True)

    applied = sync.resume(
        engine, ResultStore.from_settings(), held.planned.plan_id, komeet.client()
    )

    assert applied.result is not None and applied.result.counts == {"applied": 3}
    assert held.folder.read("results").counts == {"applied": 3}
    assert sorted(komeet.by_user_name()) == sorted(p["primaryEmail"] for p in people)


def test_every_step_s_time_is_the_sync_s():
    started = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    folder = ResultStore("memory://results").folder("acme.com", started, "0f1e2d3c-aaaa")
    assert folder.sync_id == "20261201T093000.000Z-0f1e2d3c"
    assert folder.started_at == started
