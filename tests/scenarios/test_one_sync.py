"""One sync, one store: a domain synced by ``komeet-sync sync`` and by the Dagster job is
stored twice in the same layout, under the same names, and read alike by the notebooks'
loader; each plan names the folder of its reports."""

from __future__ import annotations

import dagster as dg
import pandas as pd

from komeet_sync.analysis.loader import Loader
from pipelines.partitions import domains
from tests.support.world import build_world, run

GUEST = "guest@partner.example"


def test_a_cli_sync_and_a_dagster_run_are_stored_and_read_alike(
    monkeypatch, tmp_path, workspace, komeet, scim, cli
):
    people = build_world(monkeypatch, tmp_path, workspace, komeet, scim, guests=[GUEST])
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(domains.name, ["acme.com"])

    dagster_run = run(instance, "acme.com")
    komeet.add(userName="stray@acme.com", externalId="gone-1", active=True)
    code, out, err = cli("sync", "acme.com")

    assert dagster_run.success and code == 0, err
    loader = Loader()
    syncs = loader.syncs("acme.com")
    assert list(syncs["trigger"]) == [f"dagster run {dagster_run.run_id}", "komeet-sync sync"]
    assert syncs["run_id"].iloc[0] == dagster_run.run_id and pd.isna(syncs["run_id"].iloc[1])
    by_dagster, by_cli = syncs["sync_id"]
    for sync_id in (by_dagster, by_cli):  # the errors report, under the README's name
        errors = loader.report("acme.com", "errors", sync_id=sync_id)
        assert list(errors["email"]) == [GUEST] and list(errors["error"]) == ["outside_domain"]
        assert loader.snapshot("acme.com", sync_id=sync_id).users["email"].size == len(people)
    assert len(loader.report("acme.com", "joiners", sync_id=by_dagster)) == len(people)
    assert list(loader.report("acme.com", "leavers", sync_id=by_cli)["email"]) == ["stray@acme.com"]
    assert list(loader.report("acme.com", "results")["action"]) == ["deactivate"]
    folders = [tmp_path / "home" / "syncs" / "acme.com" / sync_id for sync_id in syncs["sync_id"]]
    assert str(folders[1]) in out  # the CLI says where its reports are
    layouts = [
        sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*"))
        for folder in folders
    ]
    assert layouts[0] == layouts[1]
    assert {"sync.json", "snapshot/users.parquet", "komeet_accounts/accounts.parquet", "errors.csv",
            "plan.json", "summary.json", "results.csv"} <= set(layouts[0])  # fmt: skip

    # Each plan, whoever made it, names its reports.
    plans = loader.plans("acme.com")
    assert len(plans) == 2
    for plan_id, folder in zip(reversed(list(plans["plan_id"])), folders, strict=True):
        shown = cli.json("plans", "show", plan_id)
        assert shown["reports"] == str(folder)
        code, text, _ = cli("plans", "show", plan_id)
        assert code == 0 and f"reports in {folder}" in text
