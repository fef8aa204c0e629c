"""``komeet-sync prune``: says what it deletes (or would: ``--dry-run``), by domain, with the
cutoff and the setting that decided it; a plan whose reports it deleted still shows, and
says so; a retention that is not a number of days is one line."""

from __future__ import annotations

import re

import pytest

from komeet_sync.store.database import open_database
from komeet_sync.store.results import ResultStore
from tests.support import retention


@pytest.fixture
def aged(komeet_env):
    engine = open_database(komeet_env)
    state = retention.build(engine, ResultStore.from_settings())
    yield engine, state
    engine.dispose()


def test_a_dry_run_deletes_nothing_and_counts_what_the_prune_deletes(aged, cli):
    engine, state = aged
    before = retention.remaining(engine)

    dry = cli.json("prune", "--dry-run")

    assert retention.remaining(engine) == before and dry["deleted"] is None
    assert dry["retention_days"] == 90 and dry["cutoff"] < state.ago(89).isoformat()
    by_domain = dry["planned"]["request_log"]["by_domain"]
    requests = {domain: amount["count"] for domain, amount in by_domain.items()}
    assert requests == retention.REQUESTS_DELETED
    assert dry["planned"]["results"]["total"]["count"] == len(retention.SYNCS_DELETED)

    done = cli.json("prune")

    assert done["deleted"] == dry["planned"] and not done["interrupted"]
    assert retention.remaining(engine) == retention.ROWS_KEPT
    code, out, _ = cli("prune", "--dry-run")
    assert code == 0 and "Nothing is older than that: nothing to delete." in out


def test_prune_says_the_cutoff_the_setting_and_what_it_deleted(aged, cli, monkeypatch):
    engine, _ = aged
    monkeypatch.setenv("KOMEET_SYNC_RETENTION_DAYS", "30")

    code, out, err = cli("prune")

    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(
        "Retention: 30 days (KOMEET_SYNC_RETENTION_DAYS=30): what is older than "
    )
    assert re.fullmatch(
        r"Deleting 5 rows of the SCIM request log, 2 rows of the SCIM change log and the "
        r"results of 2 past syncs \(9 files, [0-9.]+ KiB\) \.\.\.",
        lines[1],
    )
    assert any(line.split()[:5] == ["SCIM", "request", "log", "globex.com", "3"] for line in lines)
    assert "Deleted 5 rows of the SCIM request log" in out
    assert "Kept whatever their age: plans with their actions" in out
    assert retention.remaining(engine) == retention.ROWS_KEPT


def test_a_plan_whose_reports_were_pruned_still_shows_and_says_so(aged, cli):
    _, state = aged
    assert cli("prune")[0] == 0

    code, out, err = cli("plans", "show", state.plans["p250"])

    assert code == 0, err
    assert "its reports were deleted by retention" in out and "applied in full" in out
    shown = cli.json("plans", "show", state.plans["p250"])
    assert shown["reports_missing"].startswith("its reports were deleted by retention")
    assert shown["actions"][0]["status"] == "applied"  # the ledger stays
    assert cli.json("plans", "show", state.plans["held"])["reports_missing"] is None


@pytest.mark.parametrize("value", ["0", "ninety", "-5", "36501", "3.5"])
def test_a_retention_that_is_not_a_number_of_days_is_one_line(tmp_path, monkeypatch, cli, value):
    monkeypatch.setenv("KOMEET_SYNC_HOME", str(tmp_path))
    monkeypatch.setenv("KOMEET_SYNC_RETENTION_DAYS", value)

    code, out, err = cli("prune", "--dry-run")

    assert code == 1 and out == ""
    assert err == (
        f"komeet-sync: KOMEET_SYNC_RETENTION_DAYS={value!r} is not a whole number of days "
        "from 1 to 36,500; set it to how many days the SCIM request log and past syncs' "
        "results are kept, like 30, or unset it to keep them 90 days\n"
    )
