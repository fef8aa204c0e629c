"""`komeet-sync status` as an operator reads it: every domain, its last sync and its result,
a held plan with its approval command, the last failure (a CLI sync's that failed is
recorded as a Dagster run's is) and a SCIM domain's last push. Google domains are served by
the Directory API emulator, Komeet is the scim2-server stand-in, both over HTTP."""

from __future__ import annotations

import json
import re
import socket

import pytest
import requests

from komeet_sync.emulators.directory import Directory
from tests.support import EXAMPLES
from tests.support.google_workspace import member
from tests.support.komeet_server import SCIM_JSON
from tests.support.provisioning import DOMAIN, GROUP, account_for, person
from tests.support.scim_server import USER

ADMIN = "admin@acme.com"


@pytest.fixture
def acme(workspace, komeet_env, komeet, monkeypatch, cli):
    """acme.com: 6 people in the selected group, served by the emulator; an empty Komeet."""
    people = [person(0, ADMIN), *(person(i) for i in range(1, 6))]
    directory = Directory.from_exports(
        people, {GROUP: [member(user) for user in people]}, admins=[ADMIN]
    )
    workspace(directory).env(monkeypatch)
    komeet.env(monkeypatch)
    monkeypatch.setenv("COLUMNS", "1000")  # whatever runs the tests: no line is wrapped

    def add(*options: str) -> None:
        code, _, err = cli(
            "domains", "add", DOMAIN, "--source", "google", "--admin-email", ADMIN,
            "--group", GROUP, *options,
        )  # fmt: skip
        assert code == 0, err

    return people, add


def status_of(cli, domain: str, exit_code: int = 0) -> dict:
    code, out, err = cli("status", "--json")
    assert code == exit_code, err
    return next(status for status in json_list(out) if status["domain"] == domain)


def json_list(out: str) -> list[dict]:
    listed = json.loads(out)
    assert isinstance(listed, list)
    return listed


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_domains_never_synced_are_listed_and_fine(cli, komeet_env):
    for options in (
        ["acme.com", "--source", "google", "--admin-email", ADMIN, "--group", GROUP],
        ["globex.com", "--source", "scim", "--disabled"],
    ):
        code, _, err = cli("domains", "add", *options)
        assert code == 0, err

    code, out, err = cli("status", "--json")

    assert code == 0, err
    listed = json_list(out)
    assert [(s["domain"], s["source"], s["enabled"]) for s in listed] == [
        ("acme.com", "google", True),
        ("globex.com", "scim", False),
    ]
    assert {s["result"] for s in listed} == {"never_synced"}
    assert all(s["last_sync"] is None and s["last_failure"] is None for s in listed)
    assert listed[0]["next_step"] == "komeet-sync sync acme.com"
    code, out, _ = cli("status")
    assert code == 0
    assert "acme.com" in out and "DISABLED" in out and "never synced" in out


def test_no_domain_configured(cli, komeet_env):
    assert cli("status") == (
        0,
        "No domain is configured. Add one with 'komeet-sync domains add DOMAIN ...'.\n",
        "",
    )
    assert cli.json("status") == []


def test_a_synced_domain_shows_when_by_whom_and_what_was_applied(cli, acme):
    _, add = acme
    add()
    assert cli("sync", DOMAIN)[0] == 0

    status = status_of(cli, DOMAIN)

    assert status["result"] == "applied"
    assert (status["actions"], status["applied"], status["failed"], status["pending"]) == (
        6,
        6,
        0,
        0,
    )
    assert status["last_sync"]["by"] == "cli"
    assert status["last_sync"]["trigger"] == "komeet-sync sync"
    assert status["next_step"] is None and status["last_push"] is None
    code, out, _ = cli("status")
    assert code == 0
    [row] = [line for line in out.splitlines() if line.startswith(DOMAIN)]
    started = status["last_sync"]["started_at"][:16].replace("T", " ")
    assert re.split(r"\s{2,}", row)[1:] == [
        "google",
        "enabled",
        f"{started} cli",
        "applied",
        "6 applied",
    ]

    assert cli("sync", DOMAIN)[0] == 0  # in step
    assert status_of(cli, DOMAIN)["result"] == "nothing_to_do"

    assert cli("sync", DOMAIN, "--dry-run")[0] == 0
    assert status_of(cli, DOMAIN)["result"] == "dry_run"


def test_a_held_plan_shows_its_approval_command_and_exits_3(cli, acme, komeet, monkeypatch):
    people, add = acme
    for user in people:
        komeet.add(**account_for(user))
    for number in range(50, 53):
        komeet.add(**account_for(person(number)))  # 3 leavers: over the budget of 1
    add("--max-deactivations", "2")
    code, out, _ = cli("sync", DOMAIN)
    assert code == 3
    plan_id = next(word for word in out.split() if word.startswith("plan_"))

    status = status_of(cli, DOMAIN, exit_code=3)

    assert status["result"] == "held" and status["plan_id"] == plan_id
    assert status["approve"] == f"komeet-sync plans approve {plan_id} --by NAME"
    assert [hold["guard"] for hold in status["holds"]] == ["deactivation_budget"]
    assert status["pending"] == 3 and status["applied"] == 0
    code, out, _ = cli("status")
    assert code == 3
    assert f"{DOMAIN}: plan {plan_id} is HELD by deactivation_budget: 3 deactivations" in out
    assert f"  approve it: komeet-sync plans approve {plan_id} --by NAME" in out

    cli("plans", "approve", plan_id, "--by", "Jane Admin")
    status = status_of(cli, DOMAIN, exit_code=3)
    assert status["result"] == "approved" and status["approve"] is None
    assert status["next_step"] == f"komeet-sync apply {plan_id}"

    # An apply that cannot reach Komeet fails, and is recorded as `apply`'s failure.
    monkeypatch.setenv("KOMEET_SCIM_URL", f"http://127.0.0.1:{closed_port()}/scim/v2")
    code, _, err = cli("apply", plan_id)
    assert code == 1 and "Traceback" not in err
    status = status_of(cli, DOMAIN, exit_code=1)
    assert status["result"] == "failed"
    assert status["last_failure"]["job"] == "komeet-sync apply"

    komeet.env(monkeypatch)
    assert cli("apply", plan_id)[0] == 0
    status = status_of(cli, DOMAIN)
    assert status["result"] == "applied" and status["applied"] == 3
    assert status["last_failure"]["job"] == "komeet-sync apply"  # kept, and older


def test_the_result_is_the_plan_s_state_as_plans_list_says_it(cli, acme, komeet):
    people, add = acme
    gone = komeet.add(**account_for(people[1], name={"givenName": "Old", "familyName": "Name"}))
    add("--disabled")
    code, out, _ = cli("sync", DOMAIN)  # disabled: the plan is stored, nothing is sent
    assert code == 3
    plan_id = next(word for word in out.split() if word.startswith("plan_"))

    status = status_of(cli, DOMAIN)

    assert status["result"] == "disabled" and status["plan_state"] == "never_applied"
    assert status["pending"] == status["actions"] == 6
    assert status["next_step"] == f"komeet-sync domains enable {DOMAIN}"
    requests.delete(f"{komeet.url}/Users/{gone['id']}", headers=SCIM_JSON).raise_for_status()
    assert cli("domains", "enable", DOMAIN)[0] == 0
    status = status_of(cli, DOMAIN, exit_code=3)  # enabled, and no one applied it
    assert status["result"] == "never_applied" == cli.json("plans", "list")[0]["state"]
    assert status["next_step"] == f"komeet-sync apply {plan_id}"

    assert cli("apply", plan_id)[0] == 1  # Komeet refuses the update of an account it lost

    status = status_of(cli, DOMAIN, exit_code=1)
    [listed] = cli.json("plans", "list")
    assert status["result"] == listed["state"] == "applied_with_failures"
    assert status["result_text"] == listed["state_text"] == "applied with failures (1 failed)"
    assert (status["applied"], status["failed"], status["pending"]) == (5, 1, 0)
    assert status["last_failure"] is None  # a refused action is no failed run
    assert status["next_step"] == f"komeet-sync plans show {plan_id} --failed"
    code, out, _ = cli("status")
    assert code == 1
    assert "applied with failures (1 failed)" in out
    assert f"`komeet-sync plans show {plan_id} --failed`" in out  # as `plans show` advises


def test_a_failed_cli_sync_is_recorded_and_shown(cli, acme, komeet, monkeypatch):
    _, add = acme
    add()
    port = closed_port()
    monkeypatch.setenv("KOMEET_SCIM_URL", f"http://127.0.0.1:{port}/scim/v2")

    code, _, err = cli("sync", DOMAIN)

    assert code == 1 and "Traceback" not in err
    reason = err.strip().removeprefix("komeet-sync: ")
    status = status_of(cli, DOMAIN, exit_code=1)
    assert status["result"] == "failed" and status["last_sync"] is None
    failure = status["last_failure"]
    assert failure["job"] == "komeet-sync sync" and failure["message"] == reason
    assert f"127.0.0.1:{port}" in failure["message"]
    assert status["next_step"] == f"komeet-sync sync {DOMAIN}"
    code, out, _ = cli("status")
    assert code == 1
    assert f"{DOMAIN}: the last sync failed at " in out and "(komeet-sync sync, run " in out
    assert f"  next: komeet-sync sync {DOMAIN}" in out
    # `domains show` lists it as it lists a failed Dagster run.
    code, out, _ = cli("domains", "show", DOMAIN)
    assert "Recent failed syncs" in out and reason[:60] in out
    [recorded] = cli.json("domains", "show", DOMAIN)["recent_failures"]
    assert recorded["run_id"] == failure["run_id"] and len(recorded["run_id"]) == 32

    komeet.env(monkeypatch)
    assert cli("sync", DOMAIN)[0] == 0
    status = status_of(cli, DOMAIN)
    assert status["result"] == "applied"
    assert status["last_failure"]["run_id"] == failure["run_id"]  # the last one, still shown


def test_a_sync_that_cannot_start_is_recorded_as_failed(cli, acme, monkeypatch):
    """A setting missing fails every scheduled sync alike: it must show in `status`."""
    _, add = acme
    add()
    monkeypatch.delenv("GOOGLE_SERVICE_ACCOUNT_FILE")

    code, _, err = cli("sync", DOMAIN)

    assert code == 1 and "GOOGLE_SERVICE_ACCOUNT_FILE" in err
    status = status_of(cli, DOMAIN, exit_code=1)
    assert status["result"] == "failed"
    assert "GOOGLE_SERVICE_ACCOUNT_FILE" in status["last_failure"]["message"]


def test_a_scim_domain_shows_its_idp_s_last_accepted_push(cli, komeet_env, scim, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")
    code, out, err = cli("domains", "add", "globex.com", "--source", "scim", "--json")
    assert code == 0, err
    secret = json.loads(out)["secret"]
    assert status_of(cli, "globex.com")["last_push"] is None

    with scim.client("globex.com", secret) as idp:
        created = idp.post("/Users", json={"schemas": [USER], "userName": "ana@globex.com"})
        assert created.status_code == 201
        scim.flush_log()
        pushed = status_of(cli, "globex.com")["last_push"]
        assert pushed is not None
        assert idp.get("/Users").status_code == 200  # a read is no push
    with scim.client("globex.com", "not-the-secret") as intruder:
        refused = intruder.post("/Users", json={"schemas": [USER], "userName": "x@globex.com"})
        assert refused.status_code == 401  # a refused write is no push
    scim.flush_log()

    assert status_of(cli, "globex.com")["last_push"] == pushed
    code, out, _ = cli(
        "sync", "globex.com", "--dry-run", "--komeet", EXAMPLES / "globex" / "komeet_users.json"
    )
    assert code in (0, 3)
    status = status_of(cli, "globex.com")
    assert status["result"] == "dry_run" and status["last_sync"]["by"] == "cli"
    assert status["last_sync"]["trigger"] == "komeet-sync sync --dry-run"
    code, out, _ = cli("status")
    assert pushed[:16].replace("T", " ") in out


def test_a_dagster_run_is_shown_as_dagster_s(cli, world):
    from tests.support.world import run

    instance, _, _ = world
    result = run(instance, "globex.com")
    assert result.success

    status = status_of(cli, "globex.com")

    assert status["result"] == "applied" and status["applied"] == 3
    assert status["last_sync"]["by"] == "dagster"
    assert status["last_sync"]["run_id"] == result.run_id
    assert status_of(cli, "acme.com")["result"] == "never_synced"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_table_fits_the_terminal(cli, komeet_env, monkeypatch):
    for number in range(3):
        name = f"a-rather-long-subsidiary-name-{number}.example.com"
        assert cli("domains", "add", name, "--source", "scim")[0] == 0
    for columns in (80, 72):
        monkeypatch.setenv("COLUMNS", str(columns))

        code, out, _ = cli("status")

        assert code == 0
        assert max(len(line) for line in out.splitlines()) <= columns
        assert out.count("never") == 2 * 3  # "never" synced, at "never" time
    assert "name-2.example.com" in out.replace("\n", "")  # wrapped, whole


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_unreadable_result_store_is_named_in_one_line(cli, komeet_env, monkeypatch, tmp_path):
    assert cli("domains", "add", "globex.com", "--source", "scim")[0] == 0
    (tmp_path / "a-file").write_text("not a folder")
    monkeypatch.setenv("KOMEET_SYNC_RESULTS", str(tmp_path / "a-file"))

    code, out, err = cli("status")

    assert code == 1 and out == ""
    assert f"the result store {tmp_path / 'a-file'} is a file" in err
    assert "KOMEET_SYNC_RESULTS" in err and "Traceback" not in err


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_help_names_the_exit_codes(cli, komeet_env):
    code, out, _ = cli("status", "--help")
    assert code == 0
    assert "exit codes:" in out and "KOMEET_SYNC_DATABASE_URL" in out
    assert "3    a plan waits for an operator (held, approved, never applied, unfinished)" in out
    assert "KOMEET_SYNC_RESULTS" in out and "130" in out
