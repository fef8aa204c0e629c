"""The Dagster definitions, materialized in process as the schedule would run them: a Google
domain read from the Directory API emulator, a SCIM domain from what its IdP pushed to our
endpoint, and Komeet the scim2-server stand-in, all over HTTP."""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
import requests
from cryptography.fernet import Fernet

from komeet_sync.emulators.http_proxy import HttpProxy
from komeet_sync.model.domain_config import DomainConfig
from komeet_sync.sources.google.credentials import SCOPES
from komeet_sync.store.authorizations import AuthorizationStore
from komeet_sync.store.database import open_database
from komeet_sync.store.domains import DomainStore
from komeet_sync.store.events import EventKind, recent_events
from komeet_sync.store.failures import recent_failures
from komeet_sync.store.plans import PlanStore
from komeet_sync.store.results import ResultStore
from pipelines.definitions import defs
from pipelines.resources import DatabaseResource
from pipelines.schedules import _one_run_per_domain
from pipelines.sensors import (
    domain_partitions,
    domain_states,
    notifications,
    scim_pushes,
    sync_failures,
)
from tests.support.provisioning import account_for, person
from tests.support.receivers import webhook
from tests.support.world import ADMIN, run


def stored(tmp_path, name, domain):
    """What the domain's latest sync stored under ``name``."""
    latest = ResultStore(tmp_path / "home" / "syncs").latest(domain, name)
    return latest.read(name) if latest is not None else None


def test_the_definitions_load():
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys == {
        "snapshot", "komeet_accounts", "joiners", "leavers", "updates", "duplicates", "errors",
        "out_of_scope", "plan", "results", "approvals",
    }  # fmt: skip
    groups = {graph.get(key).group_name for key in graph.get_all_asset_keys()}
    assert groups == {"extract", "reports", "provisioning"}
    assert defs.resolve_job_def("sync_domain") is not None
    assert defs.resolve_job_def("approve_plan") is not None
    # The approvals are recorded by approve_plan, never materialized by a sync.
    assert not graph.get(dg.AssetKey("approvals")).is_executable


def requests_to(proxy):
    """The requests the proxy received, by method and last path segment."""
    return Counter((r.method, r.path.rsplit("/", 1)[-1]) for r in proxy.stats().requests)


@pytest.mark.parametrize("domain", ["acme.com", "globex.com"])
def test_every_asset_brings_komeet_to_the_desired_state(
    world, komeet, tmp_path, domain, monkeypatch
):
    instance, people, _ = world

    with HttpProxy(komeet.url) as proxy:
        komeet.env(monkeypatch, proxy.url)
        result = run(instance, domain)

    assert result.success
    # The run read Komeet and made the plan: its creates go in Bulk without a search.
    sent = requests_to(proxy)
    assert sent[("GET", "Users")] == 1 and sent[("POST", "Bulk")] == 1
    materialized = {
        event.asset_key.to_user_string() for event in result.get_asset_materialization_events()
    }
    assert "results" in materialized and "joiners" in materialized
    accounts = komeet.by_user_name()
    if domain == "acme.com":
        assert sorted(accounts) == sorted(p["primaryEmail"] for p in people)
        assert stored(tmp_path, "snapshot", domain).source.value == "google"
    else:
        assert sorted(accounts) == [
            f"{n}@globex.com" for n in ("anna.schmidt", "ben.weber", "clara.wagner")
        ]
        assert stored(tmp_path, "snapshot", domain).source.value == "scim"
    joiners = stored(tmp_path, "joiners", domain)
    assert len(joiners) == len(accounts)
    applied = stored(tmp_path, "results", domain)
    assert applied.counts == {"applied": len(accounts)} and applied.stopped == ""
    # The run's sync folder holds every name, and the plan names it as its reports.
    [folder] = (tmp_path / "home" / "syncs" / domain).iterdir()
    assert folder.name.endswith(result.run_id.replace("-", "")[:8])
    assert {"joiners.csv", "errors.parquet", "plan.json", "results.csv", "sync.json"} <= {
        path.name for path in folder.iterdir()
    }
    assert PlanStore(open_database(str(world[2].engine.url))).get(applied.plan_id).reports == str(
        folder
    )
    preview = next(
        event
        for event in result.get_asset_materialization_events()
        if event.asset_key.to_user_string() == "joiners"
    ).materialization.metadata
    assert preview["dagster/row_count"].value == len(accounts)
    assert "| email" in preview["preview"].value


def test_a_run_of_the_apply_alone_searches_before_each_create(world, komeet, tmp_path, monkeypatch):
    """The results asset alone applies the plan an earlier run made, from a read of
    Komeet that may be stale: each create is searched first."""
    instance, people, scim = world
    DomainStore(scim.engine).set_enabled("acme.com", False)
    assert run(instance, "acme.com").success  # planned; nothing sent
    DomainStore(scim.engine).set_enabled("acme.com", True)

    with HttpProxy(komeet.url) as proxy:
        komeet.env(monkeypatch, proxy.url)
        alone = defs.resolve_job_def("sync_domain").execute_in_process(
            instance=instance,
            partition_key="acme.com",
            asset_selection=[dg.AssetKey("results")],
            raise_on_error=False,
        )

    assert alone.success
    applied = stored(tmp_path, "results", "acme.com")
    assert applied.counts == {"applied": len(people)}
    sent = requests_to(proxy)
    assert sent[("GET", "Users")] == len(people) and sent[("POST", "Bulk")] == 1
    assert sorted(komeet.by_user_name()) == sorted(p["primaryEmail"] for p in people)


def materialization(result, asset):
    """The metadata of ``asset``'s materialization in the run ``result``."""
    return next(
        event.materialization.metadata
        for event in result.get_asset_materialization_events()
        if event.asset_key.to_user_string() == asset
    )


def approve(instance, plan_id, by):
    return defs.resolve_job_def("approve_plan").execute_in_process(
        instance=instance,
        run_config={"ops": {"approve": {"config": {"plan_id": plan_id, "approved_by": by}}}},
        raise_on_error=False,
    )


def test_a_held_plan_ends_its_run_held_not_failed_until_approve_plan_approves_it(
    world, komeet, tmp_path
):
    instance, people, scim = world
    for user in people:
        komeet.add(**account_for(user))
    for number in range(50, 53):
        komeet.add(**account_for(person(number)))  # 3 leavers: over the budget of 1

    held = run(instance, "acme.com")

    # Held is not failed: the run succeeds, tagged, and nothing is sent.
    assert held.success
    tags = instance.get_run_by_id(held.run_id).tags
    plan = stored(tmp_path, "plan", "acme.com").stored
    assert tags["komeet/held"] == "true" and tags["komeet/plan"] == plan.plan_id
    assert tags["komeet/source"] == "google" and tags["komeet/enabled"] == "true"
    assert all(account["active"] for account in komeet.users())
    assert plan.waiting_for_approval
    evaluations = {e.check_name: e for e in held.get_asset_check_evaluations()}
    budget = evaluations["deactivations_within_budget"]
    assert budget.passed is False and budget.severity == dg.AssetCheckSeverity.ERROR
    assert evaluations["selected_groups_found"].passed is True
    assert budget.metadata["measured"].value == 3 and budget.metadata["over"].value == 2
    assert budget.metadata["approve"].value == f"komeet-sync plans approve {plan.plan_id} --by NAME"
    link = budget.metadata["approve in the UI"].value
    assert link.startswith("/locations/__repository__@pipelines.definitions/jobs/approve_plan/")
    assert plan.plan_id in requests.utils.unquote(link)
    results = materialization(held, "results")
    assert results["status"].value == "held" and results["plan_id"].value == plan.plan_id
    assert not [key for key in results if key.startswith("ledger/")]  # nothing was sent
    assert results["planned/deactivate"].value == 3
    assert "HELD and not approved: 3 deactivations planned" in results["stopped"].value

    # A name is required, and the plan must exist: the run fails, saying so.
    unnamed = approve(instance, plan.plan_id, "Your name")
    assert not unnamed.success and "give your own name" in failure_of(unnamed)
    unknown = approve(instance, "plan_missing", "Jane")
    assert not unknown.success and "plan_missing" in failure_of(unknown)
    assert PlanStore(scim.engine).get(plan.plan_id).approved_by is None

    approval = approve(instance, plan.plan_id, "Jane")

    assert approval.success
    recorded = PlanStore(scim.engine).get(plan.plan_id)
    assert recorded.approved_by == "Jane"  # the record plans approve makes
    approved = materialization(approval, "approvals")
    assert approved["plan_id"].value == plan.plan_id and approved["approved_by"].value == "Jane"
    assert approved["actions/deactivate"].value == 3
    [event] = approval.get_asset_materialization_events()
    assert event.materialization.partition == "acme.com"

    applied = run(instance, "acme.com")

    assert applied.success
    assert "komeet/held" not in instance.get_run_by_id(applied.run_id).tags
    assert sum(not account["active"] for account in komeet.users()) == 3
    results = materialization(applied, "results")
    assert results["status"].value == "applied" and results["plan_id"].value == plan.plan_id
    assert results["ledger/applied"].value == 3


def failure_of(result) -> str:
    """What the failed run's steps said."""
    return " ".join(
        event.step_failure_data.error.message
        for event in result.all_events
        if event.is_step_failure and event.step_failure_data.error is not None
    )


def test_a_run_config_approval_applies_the_plan_it_makes(world, komeet, tmp_path):
    instance, people, scim = world
    for user in people:
        komeet.add(**account_for(user))
    for number in range(50, 53):
        komeet.add(**account_for(person(number)))
    held = run(instance, "acme.com")
    plan = stored(tmp_path, "plan", "acme.com").stored
    assert held.success and plan.waiting_for_approval

    approved = run(
        instance,
        "acme.com",
        {"ops": {"reconciliation": {"config": {"plan_id": plan.plan_id, "approved_by": "Jane"}}}},
    )

    assert approved.success
    assert PlanStore(scim.engine).get(plan.plan_id).approved_by == "Jane"
    assert sum(not account["active"] for account in komeet.users()) == 3


def test_a_quarantined_domain_s_run_reports_and_says_why_nothing_was_sent(world, komeet, tmp_path):
    instance, _, scim = world
    quarantine = DomainStore(scim.engine).quarantine("acme.com", "5 syncs failed in a row")

    result = run(instance, "acme.com")

    assert result.success and komeet.users() == []
    metadata = materialization(result, "results")
    assert metadata["status"].value == "quarantined"
    assert metadata["quarantined"].value == "yes"
    assert metadata["quarantine"].value == str(quarantine)
    assert metadata["stopped"].value.endswith(f"not applied: {quarantine}")
    assert len(stored(tmp_path, "joiners", "acme.com")) == 6  # the reports are computed


def record_failure(instance, result) -> None:
    """What the ``sync_failures`` sensor does when the run ``result`` fails."""
    with dg.build_run_status_sensor_context(
        sensor_name="sync_failures",
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=result.get_run_failure_event(),
        resources={"database": DatabaseResource()},
    ) as context:
        sync_failures(context.for_run_failure())


def test_a_failed_run_is_recorded_for_the_cli(world, tmp_path, monkeypatch, cli):
    instance, _, scim = world
    monkeypatch.setenv("KOMEET_SCIM_TOKEN", "wrong")
    hook = webhook()
    monkeypatch.setenv("KOMEET_SYNC_NOTIFY", hook.url())

    result = run(instance, "acme.com")

    assert not result.success
    record_failure(instance, result)
    # Told by the notifications sensor, to the default webhook.
    try:
        with dg.build_sensor_context(
            instance=instance, resources={"database": DatabaseResource()}
        ) as context:
            told = notifications(context)
        [post] = hook.wait(1)
    finally:
        hook.close()
    assert "sent 1 event(s)" in told.skip_message
    assert post["title"].startswith("komeet-sync: acme.com: sync failed: ")
    assert result.run_id in post["message"] and "KOMEET_SCIM_TOKEN" in post["message"]
    failures = recent_failures(open_database(str(scim.engine.url)), "acme.com")
    assert len(failures) == 1 and failures.loc[0, "run_id"] == result.run_id
    code, out, _ = cli("domains", "show", "acme.com")
    assert code == 0
    assert "Recent failed syncs" in out and f"run {result.run_id[:8]}" in out
    assert "KOMEET_SCIM_TOKEN" in out  # the reason, in the operator's words
    assert cli.json("domains", "show", "acme.com")["recent_failures"][0]["run_id"] == result.run_id


def test_the_partitions_follow_the_domain_configurations(world):
    instance, _, scim = world
    store = DomainStore(scim.engine)
    store.add(DomainConfig.create("initech.com", "scim"))
    store.remove("acme.com")

    with dg.build_sensor_context(
        instance=instance, resources={"database": DatabaseResource()}
    ) as context:
        result = domain_partitions(context)

    requests = {
        type(r).__name__: list(r.partition_keys) for r in result.dynamic_partitions_requests
    }
    assert requests == {
        "AddDynamicPartitionsRequest": ["initech.com"],
        "DeleteDynamicPartitionsRequest": ["acme.com"],
    }


def test_quarantined_and_disabled_domains_are_marked_on_results_when_they_change(world):
    instance, _, scim = world
    store = DomainStore(scim.engine)

    def evaluate(cursor=None):
        with dg.build_sensor_context(
            instance=instance, cursor=cursor, resources={"database": DatabaseResource()}
        ) as context:
            return domain_states(context)

    first = evaluate()
    [everyone] = first.asset_events
    assert everyone.check_name == "every_domain_writes" and everyone.passed
    assert isinstance(evaluate(first.cursor), dg.SkipReason)  # nothing changed since
    quarantine = store.quarantine("acme.com", "5 syncs failed in a row")
    store.set_enabled("globex.com", False)

    marked = evaluate(first.cursor)

    [evaluation] = marked.asset_events
    assert evaluation.asset_key == dg.AssetKey("results") and not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.metadata["quarantined"].value == "acme.com"
    assert evaluation.metadata["disabled"].value == "globex.com"
    assert evaluation.metadata["writing"].value == "0 of 2 domains"
    table = evaluation.metadata["not writing"].value
    assert quarantine.reason in table and "`komeet-sync domains release acme.com`" in table
    assert "`komeet-sync domains enable globex.com`" in table
    store.release("acme.com")
    store.set_enabled("globex.com", True)
    assert evaluate(marked.cursor).asset_events[0].passed


def test_the_schedule_tags_each_run_with_its_domain_s_source(world):
    instance, _, _ = world
    with dg.build_schedule_context(
        instance=instance, scheduled_execution_time=datetime(2026, 12, 1, 9, tzinfo=UTC)
    ) as context:
        requests_made = list(_one_run_per_domain(context, DatabaseResource()))
    tags = {request.partition_key: request.tags for request in requests_made}
    assert tags["acme.com"]["komeet/source"] == "google"
    assert tags["globex.com"]["komeet/source"] == "scim"
    assert {request.tags["komeet/enabled"] for request in requests_made} == {"true"}


def test_a_scim_push_no_worker_synced_within_a_minute_launches_a_run_of_that_domain(world):
    from sqlalchemy import update

    from komeet_sync.store.tables import ScimChangeRow

    instance, _, scim = world
    with dg.build_sensor_context(
        instance=instance, resources={"database": DatabaseResource()}
    ) as context:
        with scim.client("globex.com") as idp:
            found = idp.get("/Users", params={"filter": 'userName eq "ben.weber@globex.com"'})
            user_id = found.json()["Resources"][0]["id"]
            patched = idp.patch(
                f"/Users/{user_id}",
                json={
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "active", "value": False}],
                },
            )
            assert patched.status_code in (200, 204)

        first = list(scim_pushes(context))  # a worker has a minute to sync them
        with scim.engine.begin() as connection:  # a minute later, no worker has
            connection.execute(
                update(ScimChangeRow).values(accepted_at=datetime.now(UTC) - timedelta(minutes=2))
            )
        second = list(scim_pushes(context))

    assert [type(item).__name__ for item in first] == ["SkipReason"]
    assert "1 domain(s) with pushes the worker has yet to sync" in first[0].skip_message
    assert [(r.partition_key, type(r).__name__) for r in second] == [("globex.com", "RunRequest")]
    [behind] = [e for e in recent_events(scim.engine) if e.kind is EventKind.WORKER_BEHIND]
    assert behind.domain == "globex.com"
    assert re.match(
        r"globex\.com: the worker is behind: \d+ push\(es\) waiting for 2 min$", behind.subject
    )
    assert "Dagster launched a whole sync of the domain to catch up" in behind.body


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_consent_google_ended_fails_the_run_in_one_line(world, tmp_path, monkeypatch):
    instance, _, scim = world
    emulator = os.environ["GOOGLE_DIRECTORY_API_ENDPOINT"]
    client = requests.post(f"{emulator}/_emulator/oauth-client", timeout=10).json()
    client_id = client["installed"]["client_id"]
    (tmp_path / "oauth-client.json").write_text(json.dumps(client))
    monkeypatch.setenv("GOOGLE_OAUTH_CLIENT_FILE", str(tmp_path / "oauth-client.json"))
    monkeypatch.setenv("KOMEET_SYNC_SECRET_KEY", Fernet.generate_key().decode())
    given = {"client_id": client_id, "subject": ADMIN}
    token = requests.post(f"{emulator}/_emulator/consents", json=given, timeout=10).json()
    AuthorizationStore(scim.engine).save(
        "acme.com", ADMIN, client_id, SCOPES, token["refresh_token"]
    )
    requests.post(f"{emulator}/_emulator/expire", json={}, timeout=10).raise_for_status()

    result = run(instance, "acme.com")

    assert not result.success
    record_failure(instance, result)
    [message] = recent_failures(scim.engine, "acme.com")["message"]
    assert message.endswith(
        f"the authorization of acme.com by {ADMIN} was revoked or expired at Google: "
        "run `komeet-sync google authorize acme.com` again"
    )
    assert "\n" not in message and token["refresh_token"] not in message
