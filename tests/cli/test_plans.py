"""`komeet-sync plans` as an operator reads them, and `apply` as it refuses a plan that is not
one to apply: a dry run's plan approved, then applied by the sync that makes it again; an
interrupted plan superseded by a later sync; the failed actions alone; tables that fit the
terminal. A Google domain served by the Directory API emulator, Komeet the scim2-server
stand-in, both over HTTP."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from komeet_sync.emulators.http_proxy import HttpProxy
from komeet_sync.store.database import open_database
from komeet_sync.store.tables import LedgerRow
from tests.support.komeet_server import SCIM_JSON
from tests.support.provisioning import DOMAIN, account_for, person

ADMIN = "admin@acme.com"
KOMEET_SYNC = Path(sys.executable).with_name("komeet-sync")


def has_row(table: str, name: str, count: int) -> bool:
    """Whether a printed table has the row ``name  count``."""
    return re.search(rf"^{name}\s+{count}$", table, re.MULTILINE) is not None


def plan_in(out: str) -> str:
    """The first plan id a command printed."""
    return next(word for word in out.split() if word.startswith("plan_"))


def states(cli) -> dict[str, str]:
    """Each plan's state in words, as `plans list --json` gives it."""
    return {plan["plan_id"]: plan["state_text"] for plan in cli.json("plans", "list")}


def test_a_dry_run_s_plan_is_approved_then_applied_by_the_sync_that_makes_it_again(
    cli, three_leavers, komeet
):
    code, out, err = cli("sync", DOMAIN, "--dry-run")

    assert code == 3, err
    plan_id = plan_in(out)
    assert "approve this plan by its id" in out and "Dry run: nothing was sent" in out
    assert states(cli) == {plan_id: "dry run (held)"}

    code, out, err = cli("apply", plan_id)  # made by a dry run: perhaps from an export
    assert code == 1
    assert f"{plan_id} was made by a dry run: nothing was sent" in err
    assert f"`komeet-sync sync {DOMAIN}` applies it if the directory and Komeet still" in err
    assert all(account["active"] for account in komeet.users())

    code, out, err = cli("plans", "approve", plan_id, "--by", "Jane Admin")
    assert code == 0, err
    assert f"Approved {plan_id} as Jane Admin." in out
    assert f"`komeet-sync sync {DOMAIN}` applies it" in out and "komeet-sync apply" not in out
    assert states(cli) == {plan_id: "dry run (approved)"}

    code, out, err = cli("sync", DOMAIN)

    assert code == 0, err
    assert plan_in(out) == plan_id
    assert has_row(out, "applied", 3)
    assert sum(not account["active"] for account in komeet.users()) == 3
    shown = cli.json("plans", "show", plan_id)
    assert shown["state"] == "applied" and shown["dry_run"] is False
    assert shown["approved_by"] == "Jane Admin"

    # Approving it again says it is applied, and does not advise applying it.
    code, out, err = cli("plans", "approve", plan_id, "--by", "Joe Admin")
    assert code == 0, err
    assert f"{plan_id} was already approved by Jane Admin" in out
    assert "was applied in full at" in out and "nothing needs applying" in out
    assert "komeet-sync apply" not in out


def test_a_dry_run_s_plan_another_sync_replaced_is_superseded(cli, three_leavers, komeet):
    code, out, _ = cli("sync", DOMAIN, "--dry-run")
    assert code == 3
    dry_run = plan_in(out)
    komeet.add(**account_for(person(60)))  # one more leaver: another plan

    code, out, _ = cli("sync", DOMAIN)

    assert code == 3
    latest = plan_in(out)
    assert states(cli) == {
        dry_run: f"superseded by {latest}",
        latest: "held (waiting for approval)",
    }
    code, _, err = cli("plans", "approve", dry_run, "--by", "Jane Admin")
    assert code == 0, err  # recorded: it counts if a sync makes that plan again
    code, out, err = cli("apply", dry_run)
    assert code == 1
    assert f"{dry_run} was superseded by {latest}, a later plan of {DOMAIN}" in err
    # What to do next is the newer plan's own state: held here, so approve then apply it.
    assert (
        f"`komeet-sync plans approve {latest} --by NAME`, then `komeet-sync apply {latest}`" in err
    )


def applied_rows(database_url: str) -> int:
    engine = open_database(database_url)
    try:
        with engine.connect() as connection:
            return connection.scalar(select(func.count()).where(LedgerRow.status == "applied"))
    finally:
        engine.dispose()


def test_an_interrupted_plan_superseded_by_a_later_sync_is_not_applied_any_more(
    cli, acme, komeet, komeet_env
):
    _, serve = acme
    people = [person(0, ADMIN), *(person(i) for i in range(1, 20))]
    serve(people, "--disabled")
    code, out, _ = cli("sync", DOMAIN)  # disabled: the plan is stored, nothing is sent
    assert code == 3
    interrupted = plan_in(out)
    cli("domains", "enable", DOMAIN)
    # `komeet-sync apply`, killed once it has applied an action.
    with HttpProxy(komeet.url, latency=0.1) as proxy:
        command = [str(KOMEET_SYNC), "apply", interrupted, "--mode", "sequential"]
        process = subprocess.Popen(
            command,
            env=os.environ | {"KOMEET_SCIM_URL": proxy.url},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while process.poll() is None and applied_rows(komeet_env) == 0:
            assert time.monotonic() < deadline, "the apply never started"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait()
    done = applied_rows(komeet_env)
    assert 0 < done < 20, "the kill did not interrupt the application"
    assert states(cli) == {interrupted: f"applying / interrupted ({20 - done} pending)"}

    code, out, err = cli("sync", DOMAIN)  # the actions still needed: another plan

    assert code == 0, err
    latest = plan_in(out)
    assert latest != interrupted
    assert states(cli) == {interrupted: f"superseded by {latest}", latest: "applied"}
    assert sorted(komeet.by_user_name()) == sorted(p["primaryEmail"] for p in people)
    code, out, err = cli("apply", interrupted)
    assert code == 1
    assert f"{interrupted} was superseded by {latest}, a later plan of {DOMAIN}" in err
    assert f"{latest} was applied in full at " in err and "nothing needs applying" in err
    code, out, _ = cli("plans", "show", interrupted)
    assert code == 0 and f"state: superseded by {latest}" in out
    shown = cli.json("plans", "show", interrupted)
    assert shown["state"] == "superseded" and shown["superseded_by"] == latest


def test_plans_show_failed_lists_only_the_failed_actions(cli, acme, komeet):
    people, serve = acme
    gone = komeet.add(**account_for(people[1], name={"givenName": "Old", "familyName": "Name"}))
    serve(people, "--disabled")
    code, out, _ = cli("sync", DOMAIN)
    plan_id = plan_in(out)
    requests.delete(f"{komeet.url}/Users/{gone['id']}", headers=SCIM_JSON).raise_for_status()
    cli("domains", "enable", DOMAIN)
    code, _, _ = cli("apply", plan_id)
    assert code == 1

    code, out, err = cli("plans", "show", plan_id, "--failed")

    assert code == 0, err
    assert "state: applied with failures (1 failed)" in out
    table = out.split("\n\n", 1)[1]
    assert re.search(rf"^update +{people[1]['primaryEmail']} +the account is no longer", table,
                     re.MULTILINE)  # fmt: skip
    assert "create" not in table and "404" in table
    shown = cli.json("plans", "show", plan_id, "--failed")
    assert [(a["action"], a["status"], a["http_status"]) for a in shown["actions"]] == [
        ("update", "failed", 404)
    ]
    assert shown["state"] == "applied_with_failures" and shown["failed"] == 1
    assert len(cli.json("plans", "show", plan_id)["actions"]) == 6
    assert states(cli) == {plan_id: "applied with failures (1 failed)"}


def test_approving_a_plan_that_needs_no_approval_says_where_it_stands(cli, acme):
    people, serve = acme
    serve(people)
    code, out, _ = cli("sync", DOMAIN)
    assert code == 0
    plan_id = plan_in(out)

    code, out, err = cli("plans", "approve", plan_id, "--by", "Jane Admin")

    assert code == 1
    assert f"{plan_id} is not held: it needs no approval. {plan_id} was applied in full" in err
    assert "nothing needs applying" in err and "komeet-sync apply" not in err
    code, out, err = cli("plans", "show", plan_id, "--failed")
    assert code == 0 and f"No action of {plan_id} failed" in out


@pytest.mark.parametrize("columns", [80, 200])
def test_tables_fit_the_terminal(cli, three_leavers, monkeypatch, columns):
    code, out, _ = cli("sync", DOMAIN)
    assert code == 3
    plan_id = plan_in(out)
    cli("plans", "approve", plan_id, "--by", "Jane Admin of the Directory Operations Team")
    monkeypatch.setenv("COLUMNS", str(columns))

    code, listed, _ = cli("plans", "list")
    code, shown, _ = cli("plans", "show", plan_id)

    assert code == 0
    table = shown.split("\n\n", 1)[1]
    assert max(len(line) for line in listed.splitlines() + table.splitlines()) <= columns
    assert plan_id in listed and "approved" in listed  # the id whole, and the state
    assert "deactivate" in table and "user00050@acme.com" in table
    if columns == 200:  # room for every column, and no wrapped cell
        assert "Jane Admin of the Directory Operations Team" in listed
        assert "deactivation_budget" in listed and len(listed.splitlines()) == 3
