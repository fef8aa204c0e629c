"""The result store's history (``ResultStore.history``) and its deletion
(``store.retention``): syncs of the former layouts go by the same rule as today's."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta

import pandas as pd

from komeet_sync.engine.reconcile import reconcile
from komeet_sync.model.reports import ACCOUNTS, RESULTS, SNAPSHOT
from komeet_sync.runs.sync import Planned, write_reports
from komeet_sync.store.ledger import ResultsReport
from komeet_sync.store.plans import PlanReport
from komeet_sync.store.results import ResultStore
from komeet_sync.store.retention import delete_sync, measure
from tests.support import FIXTURES
from tests.support.frames import account, config, directory, komeet, person

LATER = datetime(2027, 6, 1, tzinfo=UTC)  # long after the fixture was written


def test_runs_stored_before_this_layout_go_once_a_later_sync_holds_what_they_held(tmp_path):
    home = tmp_path / "home"
    shutil.copytree(FIXTURES / "state_before_layers" / "home", home)
    store = ResultStore(tmp_path / "syncs", legacy_home=home)
    assert store.history("acme.com", LATER) == []  # each holds the latest of something
    snapshot = directory(person("g1", "ada@acme.com"))
    accounts = komeet(account("k1", "ada@acme.com", external_id="g1"))
    result = reconcile(snapshot, accounts, config())
    for domain in ("acme.com", "globex.com"):
        folder = store.start(domain, "komeet-sync sync", started_at=LATER - timedelta(days=1))
        folder.write(SNAPSHOT, snapshot)
        folder.write(ACCOUNTS, accounts)
        write_reports(folder, Planned(result, PlanReport(result.plan.actions, result.summary())))
        entries = pd.DataFrame(columns=list(RESULTS.columns))
        folder.write(RESULTS.name, ResultsReport("plan_x", 1, entries, {}))

    old = {domain: store.history(domain, LATER - timedelta(days=90)) for domain in store.domains()}

    assert {domain: len(syncs) for domain, syncs in old.items()} == {
        "acme.com": 2,  # the Dagster run and the CLI's folder
        "globex.com": 1,
    }
    for syncs in old.values():
        for sync in syncs:
            size = measure(sync)
            assert delete_sync(sync) == size and size.files > 2 and size.size > 0
    assert not [path for path in home.rglob("*") if path.is_file()]  # no file of theirs
    assert [len(store.syncs(domain)) for domain in ("acme.com", "globex.com")] == [1, 1]
