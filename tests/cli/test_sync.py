"""`komeet-sync sync`, `apply` and `plans` as an operator runs them: a Google domain served
by the Directory API emulator, Komeet the scim2-server stand-in, both over HTTP."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import requests

from tests.support.komeet_server import SCIM_JSON
from tests.support.provisioning import DOMAIN, account_for, person

ADMIN = "admin@acme.com"


def has_row(table: str, name: str, count: int) -> bool:
    """Whether a printed table has the row ``name  count``."""
    return re.search(rf"^{name}\s+{count}$", table, re.MULTILINE) is not None


def test_sync_applies_the_plan_and_prints_a_summary(cli, acme, komeet):
    people, serve = acme
    serve(people)

    code, out, err = cli("sync", DOMAIN)

    assert code == 0, err
    assert has_row(out, "create", 6)
    assert "Applied plan_" in out and "6 actions" in out
    assert has_row(out, "applied", 6)
    assert sorted(komeet.by_user_name()) == sorted(p["primaryEmail"] for p in people)

    code, out, err = cli("sync", DOMAIN)  # in step: nothing to send

    assert code == 0, err
    assert "The plan has no action." in out
    assert "no action was left to send" in out


def test_a_held_plan_exits_3_until_approved_then_applies(cli, three_leavers, komeet):

    code, out, err = cli("sync", DOMAIN)

    assert code == 3
    plan_id = next(word for word in out.split() if word.startswith("plan_"))
    assert "HELD" in out and "Nothing was sent" in err
    assert all(account["active"] for account in komeet.users())

    code, out, _ = cli("plans", "show", plan_id)
    assert code == 0
    assert "HELD by deactivation_budget: 3 deactivations planned, 2 over the budget of 1" in out
    assert "waiting for approval" in out and "never applied" in out
    assert len(re.findall(r"^deactivate +user000\d\d@acme.com", out, re.MULTILINE)) == 3

    code, out, err = cli("apply", plan_id)
    assert code == 3 and "HELD and not approved" in err

    code, out, err = cli("plans", "approve", plan_id, "--by", "Jane Admin")
    assert code == 0, err
    assert f"Approved {plan_id} as Jane Admin" in out

    code, out, err = cli("apply", plan_id)
    assert code == 0, err
    assert has_row(out, "applied", 3)
    assert sum(not account["active"] for account in komeet.users()) == 3

    code, out, err = cli("apply", plan_id)
    assert code == 0 and "was applied before: nothing was sent again" in out
    shown = cli.json("plans", "show", plan_id)
    assert shown["approved_by"] == "Jane Admin"
    assert {action["status"] for action in shown["actions"]} == {"applied"}
    listed = cli.json("plans", "list", "--domain", DOMAIN)
    assert listed[0]["plan_id"] == plan_id and listed[0]["approved_by"] == "Jane Admin"


def test_a_failed_action_exits_1_and_says_why(cli, acme, komeet):
    people, serve = acme
    gone = komeet.add(**account_for(people[1], name={"givenName": "Old", "familyName": "Name"}))
    serve(people, "--disabled")
    code, out, err = cli("sync", DOMAIN)  # disabled: the plan is stored, nothing sent
    assert code == 3 and "disabled: nothing was sent" in err
    plan_id = next(word for word in out.split() if word.startswith("plan_"))
    assert [account["id"] for account in komeet.users()] == [gone["id"]]
    # The account goes away in Komeet before the plan is applied.
    requests.delete(f"{komeet.url}/Users/{gone['id']}", headers=SCIM_JSON).raise_for_status()
    cli("domains", "enable", DOMAIN)

    code, out, err = cli("apply", plan_id)

    assert code == 1
    assert "1 action(s) failed" in err
    assert f"update {people[1]['primaryEmail']}: the account is no longer in Komeet" in err
    assert "Komeet answered 404" in err
    assert has_row(out, "applied", 5) and has_row(out, "failed", 1)
    results = pd.read_csv(Path(cli.json("plans", "show", plan_id)["reports"]) / "results.csv")
    failed = results[results["status"] == "failed"]
    assert list(failed["user_name"]) == [people[1]["primaryEmail"]]
    assert list(failed["http_status"]) == [404] and "not found" in failed["response_body"].iloc[0]
    errors = pd.read_csv(Path(cli.json("plans", "show", plan_id)["reports"]) / "errors.csv")
    assert list(errors[errors["error"] == "action_failed"]["email"]) == [people[1]["primaryEmail"]]


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        (["apply", "plan_0000"], "no plan 'plan_0000'"),
        (["plans", "show", "plan_0000"], "no plan 'plan_0000'"),
        (["plans", "approve", "plan_0000", "--by", "Jane"], "no plan 'plan_0000'"),
        (["plans", "approve", "plan_0000"], "the following arguments are required: --by"),
        (["sync", DOMAIN, "--concurrency", "0"], "--concurrency 0: give 1 to 64"),
        (["sync", DOMAIN, "--mode", "fast"], "invalid choice: 'fast'"),
    ],
)
def test_mistakes_get_one_line_naming_the_value(cli, acme, arguments, says):
    _, serve = acme
    serve([person(0, ADMIN)])

    code, _, err = cli(*arguments)

    assert code == 1 and says in err
    assert "Traceback" not in err


def test_komeet_settings_are_named_when_wrong(cli, acme, komeet, monkeypatch):
    people, serve = acme
    serve(people)

    monkeypatch.delenv("KOMEET_SCIM_URL")
    code, _, err = cli("sync", DOMAIN)
    assert code == 1 and "KOMEET_SCIM_URL is not set" in err

    monkeypatch.setenv("KOMEET_SCIM_URL", "komeet.example/scim")
    code, _, err = cli("sync", DOMAIN)
    assert code == 1 and "KOMEET_SCIM_URL='komeet.example/scim' is not an http(s) URL" in err

    komeet.env(monkeypatch)
    monkeypatch.setenv("KOMEET_SCIM_TOKEN", "wrong")
    code, _, err = cli("sync", DOMAIN)
    assert code == 1 and "refused" in err and "check KOMEET_SCIM_TOKEN" in err
    assert "wrong" not in err  # the token is never shown
    assert komeet.users() == []


def test_sync_json_reports_the_application(cli, acme):
    people, serve = acme
    serve(people)

    code, out, err = cli("sync", DOMAIN, "--json", "--mode", "sequential")

    assert code == 0, err
    summary = json.loads(out)
    assert summary["applied"]["ledger"] == {"applied": 6}
    assert summary["applied"]["mode"] == "sequential"
    assert summary["stopped"] is None
