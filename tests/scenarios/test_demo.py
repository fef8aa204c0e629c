"""The README's first command as a new user runs it: `make demo DEMO_ARGS=--no-ui` from a clean
state (the Google Directory API emulator, a SCIM push, scim2-server as Komeet, the Dagster job
for three weeks of changes, globex.com's held plan approved through the Dagster UI), its
summary checked against the generated directory and its Dagster runs against the instance;
then every notebook executed on the state it left, a second demo run on that state, and `make
lab` serving the notebooks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import dagster as dg
import nbformat
import papermill
import pytest
import requests

from komeet_sync.analysis.investigation import duplicate_clusters
from komeet_sync.analysis.loader import Loader
from komeet_sync.emulators.directory_generator import generate_directory
from tests.support import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
GOOGLE, SCIM = "acme.example", "globex.com"


def make(target: str, home: Path, *args: str, timeout: float = 600) -> str:
    env = os.environ | {"KOMEET_SYNC_HOME": str(home)}
    env.pop("KOMEET_SYNC_DATABASE_URL", None)  # the embedded default: SQLite in the home
    env.pop("DAGSTER_HOME", None)
    done = subprocess.run(
        ["make", "--no-print-directory", target, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The state one `make demo --no-ui` left, and what it printed."""
    home = tmp_path_factory.mktemp("demo")
    printed = make("demo", home, "DEMO_ARGS=--no-ui")
    return home, printed, json.loads((home / "demo" / "summary.json").read_text())


def desired_people(directory, selected):
    """The active users of the selected groups (nested groups included) with a full name,
    and the members that are not users of the domain (guests)."""
    groups = {group["email"]: group for group in directory.groups}
    users = {user["id"]: user for user in directory.users}
    pending, seen, ids, guests = list(selected), set(), set(), set()
    while pending:
        group = groups[pending.pop()]
        if group["email"] in seen:
            continue
        seen.add(group["email"])
        for member in group["members"]:
            if member["type"] == "GROUP":
                pending.append(member["email"])
            elif member["id"] in users:
                ids.add(member["id"])
            else:
                guests.add(member["email"])
    active = [users[i] for i in ids if not users[i]["suspended"] and not users[i]["archived"]]
    named = [u for u in active if u["name"]["givenName"] and u["name"]["familyName"]]
    return named, len(active) - len(named), guests


def test_the_demo_summary_matches_the_generated_directory(demo):
    home, printed, summary = demo
    generated = generate_directory(3000, domain=GOOGLE, groups=3, seed=7)
    people, unnamed, guests = desired_people(generated.directory, generated.selected)
    sync = Loader(home=str(home))
    weeks = {(row["week"], row["domain"]): row for row in summary["weeks"]}
    assert len(weeks) == 6
    assert "acme.example" in printed and "deactivation_budget" in printed

    # Week 1: every desired person without an active account is a joiner (a returner when
    # the account is inactive); every managed account of nobody in the directory is a
    # leaver; unnamed people and guests are errors.
    first_run = sync.history(GOOGLE, "joiners")["sync_id"].iloc[0]
    accounts = sync.report(GOOGLE, "komeet_accounts", sync_id=first_run)
    live = accounts[accounts["active"]]
    has_account = set(live["external_id"].dropna()) | set(live["user_name"])
    joiners = {p["primaryEmail"] for p in people if p["id"] not in has_account}
    assert set(sync.report(GOOGLE, "joiners", sync_id=first_run)["email"]) == joiners
    ids = {p["id"] for p in generated.directory.users}
    gone = accounts[accounts["external_id"].notna() & ~accounts["external_id"].isin(ids)]
    week1 = weeks[(1, GOOGLE)]
    assert week1["joiners"] == len(joiners) > 500
    assert week1["leavers"] == len(gone[gone["active"]]) == 40
    assert week1["errors"] == unnamed + len(guests) > 0
    assert week1["duplicates"] == 3  # the renamed people with an account at each address
    assert week1["failed"] == 0 and week1["held"] == ""

    # After week 1's apply, Komeet (as week 2 read it) holds an active account with the
    # externalId of every desired person, and none of the 40 leavers is active.
    second_run = sync.history(GOOGLE, "joiners")["sync_id"].iloc[1]
    after = sync.report(GOOGLE, "komeet_accounts", sync_id=second_run)
    active_ids = set(after.loc[after["active"], "external_id"].dropna())
    assert {p["id"] for p in people} <= active_ids
    assert not (set(gone["external_id"]) & active_ids)

    # Weeks 2 and 3: joiners and leavers are exactly the people the directory changes moved.
    for change in summary["changes"]:
        week = change["week"]
        sync_id = sync.history(GOOGLE, "joiners")["sync_id"].iloc[week - 1]
        assert set(sync.report(GOOGLE, "joiners", sync_id=sync_id)["email"]) == set(
            change["joined"]
        )
        assert set(sync.report(GOOGLE, "leavers", sync_id=sync_id)["email"]) == set(change["left"])
        row = weeks[(week, GOOGLE)]
        assert row["joiners"] == len(change["joined"]) and row["leavers"] == len(change["left"])
        plan = sync.report(GOOGLE, "plan", sync_id=sync_id)
        assert row["applied"] + row["failed"] == len(plan)

    # Week 2's rename met an account a Komeet admin made by hand: a 409, then a duplicate.
    renamed = summary["changes"][0]["renamed"][0]
    ledger = sync.ledger(GOOGLE)
    failed = ledger[ledger["status"] == "failed"]
    assert list(failed["user_name"]) == [renamed["to"]]
    assert list(failed["http_status"]) == [409] and "uniqueness" in failed["response_body"].iloc[0]
    assert weeks[(2, GOOGLE)]["failed"] == 1 and weeks[(3, GOOGLE)]["duplicates"] == 4
    clusters = duplicate_clusters(sync, GOOGLE)
    kept = clusters[clusters["email"] == renamed["to"]]
    assert set(kept["role"]) >= {"directory user", "unmanaged account (no externalId)"}
    assert f"Keep {renamed['from']}" in kept["advice"].iloc[0]

    # globex.com: pushed by its IdP; its plan held by the deactivation budget until an
    # admin approves it in week 3.
    assert weeks[(1, SCIM)]["held"] == weeks[(2, SCIM)]["held"] == "deactivation_budget"
    assert weeks[(1, SCIM)]["applied"] == 0
    assert weeks[(3, SCIM)]["applied"] == 3 and "approved by" in weeks[(3, SCIM)]["held"]
    refused = sync.scim_requests(SCIM).query("status == 400")
    assert refused["body"].str.contains("eva.hoffmann@partner.example").all()
    assert len(refused) == 1


def test_the_demos_ui_shows_globex_held_then_approved_from_the_ui(demo):
    """In the demo's Dagster instance: globex.com's runs of weeks 1 and 2 succeeded, held;
    the approve_plan run was launched by the webserver (a run in the demo's process has no
    code location), and ended before week 3's run, which applied the plan."""
    home, printed, summary = demo
    approval = summary["approval"]
    rows = {row["week"]: row for row in summary["weeks"] if row["domain"] == SCIM}
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        runs = {week: instance.get_run_by_id(row["run_id"]) for week, row in rows.items()}
        for week in (1, 2):
            assert runs[week].tags["dagster/partition"] == SCIM
            assert runs[week].status == dg.DagsterRunStatus.SUCCESS
            assert runs[week].tags["komeet/held"] == "true" and rows[week]["status"] == "held"
        assert runs[2].tags["komeet/plan"] == approval["plan_id"]
        assert runs[2].remote_job_origin is None and "dagster/code_location" not in runs[2].tags

        approve = instance.get_run_by_id(approval["run_id"])
        assert approve.job_name == "approve_plan" and approve.status == dg.DagsterRunStatus.SUCCESS
        assert approve.remote_job_origin.location_name == "pipelines.definitions"
        assert approve.tags["dagster/code_location"] == "pipelines.definitions"
        assert approve.run_config["ops"]["approve"]["config"] == {
            "plan_id": approval["plan_id"],
            "approved_by": "Dana Admin (globex.com IT)",
        }
        approved_at = instance.get_run_record_by_id(approve.run_id).end_time
        assert approved_at < instance.get_run_record_by_id(runs[3].run_id).start_time

        assert runs[3].status == dg.DagsterRunStatus.SUCCESS and "komeet/held" not in runs[3].tags
        [applied] = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("results"), asset_partitions=[SCIM]),
            limit=1,
        ).records
        assert applied.run_id == runs[3].run_id
        assert applied.asset_materialization.metadata["status"].value == "applied"
        # No run but the demo's: no sensor or schedule synced a domain between the weeks.
        assert all("demo/week" in run.tags for run in instance.get_runs())
    ledger = Loader(home=str(home)).ledger(SCIM)
    sent = ledger[ledger["plan_id"] == approval["plan_id"]]
    assert len(sent) == rows[3]["applied"] == 3 and set(sent["status"]) == {"applied"}
    assert (
        f"globex.com: held in weeks 1 and 2; {approval['plan_id']} approved in week 3 by "
        f"Dana Admin (globex.com IT) in the Dagster UI (the approve_plan run {approve.run_id})"
    ) in printed


def test_the_demos_webhook_is_told_of_each_held_plan_once(demo):
    _, printed, summary = demo
    held = {row["plan_id"] for row in summary["weeks"] if row["held"] == "deactivation_budget"}
    posts = summary["notifications"]
    told = [post for post in posts if " held (" in post["title"]]
    assert held and sorted(p["title"].split()[3] for p in told) == sorted(held)
    for post in told:
        plan_id = post["title"].split()[3]
        assert post["title"].startswith(f"komeet-sync: {SCIM}: plan {plan_id} held (")
        assert f"komeet-sync plans approve {plan_id} --by NAME" in post["message"]
        assert post["path"] == "/komeet"
    assert f"The demo's webhook received {len(posts)} notification(s):" in printed


def test_after_the_weekly_syncs_the_worker_brings_a_push_to_komeet_in_seconds(demo):
    home, printed, summary = demo
    pushed = summary["incremental"]
    joiner = pushed["user_name"]
    assert joiner == "lena.koch1@globex.com"
    assert pushed["batch"]["actions"] == {"create": 1} and pushed["batch"]["error"] is None
    assert f"create {joiner}: applied in Komeet {pushed['seconds']:.2f} s after" in printed
    # Komeet holds the account, made by the worker's plan of that one person, not a sync's.
    ledger = Loader(home=str(home)).ledger(SCIM)
    rows = ledger[ledger["user_name"] == joiner]
    assert list(rows["action"]) == ["create"] and list(rows["status"]) == ["applied"]
    assert rows["plan_id"].iloc[0] not in {row["plan_id"] for row in summary["weeks"]}
    assert 0 < pushed["seconds"] < 30  # not the next weekly sync, nor the sensor's whole sync


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
@pytest.mark.parametrize("domain", [GOOGLE, SCIM])
def test_every_notebook_runs_on_the_demo_state(demo, notebook, domain, tmp_path, monkeypatch):
    home, _, summary = demo
    monkeypatch.setenv("KOMEET_SYNC_HOME", str(home))
    monkeypatch.delenv("KOMEET_SYNC_DATABASE_URL", raising=False)
    out = tmp_path / notebook.name
    # A cell error raises PapermillExecutionError, which fails the test.
    papermill.execute_notebook(
        str(notebook),
        str(out),
        parameters={"domain": domain},
        kernel_name="python3",
        cwd=str(notebook.parent),
        progress_bar=False,
    )
    printed = "\n".join(
        str(output.get("text", "")) + json.dumps(output.get("data", {}))
        for cell in nbformat.read(out, as_version=4).cells
        for output in cell.get("outputs", [])
    )
    assert "image/png" in printed or notebook.stem == "investigate_sync_errors"
    if notebook.stem == "investigate_sync_errors" and domain == GOOGLE:
        renamed = summary["changes"][0]["renamed"][0]["to"]
        assert f"Following {renamed}" in printed and "409" in printed
    if notebook.stem == "investigate_sync_errors" and domain == SCIM:
        assert "1 refused" in printed
    if notebook.stem == "duplicates" and domain == GOOGLE:
        assert "4 duplicate clusters" in printed and "What to do" in printed


def test_the_committed_notebooks_have_no_outputs():
    """What git holds (the index, as committed): no outputs, no execution counts. The
    nbstripout filter that `make install` configures strips them on `git add`."""
    for notebook in NOTEBOOKS:
        relative = notebook.relative_to(ROOT).as_posix()
        shown = subprocess.run(
            ["git", "show", f":{relative}"], cwd=ROOT, capture_output=True, text=True
        )
        text = shown.stdout if shown.returncode == 0 else notebook.read_text()
        cells = nbformat.reads(text, as_version=4).cells
        assert all(not cell.get("outputs") for cell in cells), relative
        assert all(cell.get("execution_count") is None for cell in cells), relative
        assert cells[0].metadata.get("tags") == ["parameters"], relative
        assert "domain =" in cells[0].source, relative


def test_git_strips_the_outputs_of_a_notebook_it_adds(demo, tmp_path, monkeypatch):
    """The filter `make install` configured turns an executed notebook into one without
    outputs, as `git add` stores it."""
    home, _, _ = demo
    monkeypatch.setenv("KOMEET_SYNC_HOME", str(home))
    executed = tmp_path / "executed.ipynb"
    papermill.execute_notebook(
        str(ROOT / "notebooks" / "duplicates.ipynb"),
        str(executed),
        kernel_name="python3",
        cwd=str(ROOT / "notebooks"),
        progress_bar=False,
    )
    assert any(cell.get("outputs") for cell in nbformat.read(executed, 4).cells)
    attribute = subprocess.run(
        ["git", "check-attr", "filter", "notebooks/duplicates.ipynb"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert attribute.stdout.strip().endswith("filter: nbstripout")
    clean = subprocess.run(
        ["git", "config", "--get", "filter.nbstripout.clean"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert clean, "make install configures git's nbstripout filter"
    stripped = subprocess.run(
        clean, shell=True, input=executed.read_text(), capture_output=True, text=True, cwd=ROOT
    )
    assert stripped.returncode == 0, stripped.stderr
    cells = nbformat.reads(stripped.stdout, as_version=4).cells
    assert cells and all(not cell.get("outputs") for cell in cells)


def test_a_second_demo_runs_on_the_state_the_first_left(demo):
    home, _, _ = demo
    before = len(Loader(home=str(home)).history(GOOGLE, "joiners"))
    make("demo", home, "DEMO_ARGS=--no-ui")
    assert len(Loader(home=str(home)).history(GOOGLE, "joiners")) == before + 3
    weeks = json.loads((home / "demo" / "summary.json").read_text())["weeks"]
    approved = "deactivation_budget, approved by Dana Admin (globex.com IT)"
    assert {row["held"] for row in weeks} <= {"", "deactivation_budget", approved}
    assert weeks[-1]["held"] == approved
    second = json.loads((home / "demo" / "summary.json").read_text())["incremental"]
    assert second["user_name"] == "lena.koch2@globex.com" and second["status"] == "applied"


def test_make_lab_serves_the_notebooks(demo):
    home, _, _ = demo
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    token = "lab-test-token"
    lab = subprocess.Popen(
        [
            "make", "--no-print-directory", "lab",
            f"LAB_ARGS=--no-browser --port={port} --IdentityProvider.token={token}",
        ],
        cwd=ROOT,
        env=os.environ | {"KOMEET_SYNC_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/api/contents"
        deadline = time.monotonic() + 120
        while True:
            try:
                answer = requests.get(url, params={"token": token}, timeout=2)
                if answer.ok:
                    break
            except requests.RequestException:
                pass
            assert lab.poll() is None and time.monotonic() < deadline, "make lab did not serve"
            time.sleep(0.5)
        names = {item["name"] for item in answer.json()["content"]}
        assert {path.name for path in NOTEBOOKS} <= names
        kernels = requests.get(
            f"http://127.0.0.1:{port}/api/kernelspecs", params={"token": token}, timeout=5
        ).json()
        assert "python3" in kernels["kernelspecs"]
    finally:
        if lab.poll() is None:
            os.killpg(lab.pid, 15)
            lab.wait(timeout=30)
