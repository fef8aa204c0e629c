"""The whole product on one machine, with no Google or Komeet account.

    .venv/bin/python scripts/demo.py [--no-ui] [--people 3000]

- acme.example syncs from Google Workspace: the Directory API emulator serves a generated
  directory of ``--people`` people (suspended, archived, renamed, aliases, nested groups,
  guests, people in no selected group).
- globex.com syncs by SCIM: its users and groups are pushed to ``komeet-sync scim serve``
  as Entra ID pushes them.
- Komeet is the third-party scim2-server, holding accounts for part of acme.example:
  managed ones, some with old names, some deactivated, some for people who left, and an
  unmanaged shared mailbox.

Both domains are materialized by the Dagster job ``sync_domain`` for three weeks of
changes: week 1 is the first sync; in week 2 people join the selected groups, others are
suspended, one is renamed, and a Komeet admin creates an account by hand under the new
address while the sync runs (its rename fails with 409); in week 3 more join and leave.
globex.com's deactivation budget holds its plan in weeks 1 and 2: its runs succeed, held
(tagged ``komeet/held=true``). In week 3 an admin approves it in the Dagster UI, which
starts with the weeks (``dagster-webserver``): the demo opens the "approve in the UI" link
of the held run's ``results``, writes the admin's name into the launchpad's config and
launches the ``approve_plan`` job through the webserver's GraphQL API, as the Launch button
does; globex.com's sync of week 3 then applies the plan. A summary is printed (and written
to ``KOMEET_SYNC_HOME/demo/summary.json``) with the notifications a JSON webhook the demo
starts received (both domains ``--notify`` it), then the daemon starts beside the UI (the
schedule and the sensors, as ``dagster dev`` runs them), served (unless ``--no-ui``) until
Ctrl-C, which stops every process the demo started. State lives under ``KOMEET_SYNC_HOME``
(default ``./.komeet_sync``), so a second run continues from the first; ``make lab`` opens
the analysts' notebooks on it.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import json
import os
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import requests
import yaml
from tabulate import tabulate

from komeet_sync.emulators.webhook import Webhook

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
GOOGLE_DOMAIN = "acme.example"
SCIM_DOMAIN = "globex.com"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
APPROVER = "Dana Admin (globex.com IT)"
# The demo's Dagster instance. Runs launch as soon as they are asked for (the default run
# coordinator), with no daemon's queue: the webserver alone launches the approval of week 3,
# and no sensor or schedule starts a sync of its own between the weekly ones (globex.com's
# held plan keeps its pushes waiting, which the scim_pushes sensor would sync). The daemon
# starts with the UI, after the weeks. Pools are claimed by each run's steps (granularity
# op), whichever coordinator launched the run.
INSTANCE = """\
telemetry:
  enabled: false
run_coordinator:
  module: dagster.core.run_coordinator
  class: DefaultRunCoordinator
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Processes:
    """Every process the demo starts, stopped at its end (Ctrl-C included), with whatever
    each one started (the webserver's code server and the runs it launched)."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen] = []

    def start(self, command: list[str], **options: Any) -> subprocess.Popen:
        # Its own session: Ctrl-C reaches it once, from stop(), and what is left of the
        # session after it stopped is killed with it.
        process = subprocess.Popen(command, cwd=ROOT, start_new_session=True, **options)
        self.started.append(process)
        return process

    def stop(self) -> None:
        for process in reversed(self.started):
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in reversed(self.started):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            with contextlib.suppress(ProcessLookupError):  # nothing left of its session
                os.killpg(process.pid, signal.SIGKILL)


@dataclass
class DagsterUI:
    """The Dagster webserver on the demo's instance, and the GraphQL API its pages call."""

    process: subprocess.Popen
    url: str
    log: Path

    @classmethod
    def start(cls, processes: Processes, port: int, log: Path) -> DagsterUI:
        """Starts it; ``wait_until_loaded`` waits for it (it loads while the weeks run)."""
        process = processes.start(
            [str(BIN / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1",
             "-p", str(port)],
            stdout=log.open("w"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        # It loads on the CPU the weekly syncs leave (its code server and the runs it
        # launches inherit that, spawned later), so that it does not slow them.
        os.setpriority(os.PRIO_PROCESS, process.pid, 10)
        return cls(process, f"http://127.0.0.1:{port}", log)

    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        answer = requests.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables}, timeout=60
        )
        answer.raise_for_status()
        body = answer.json()
        if body.get("errors"):
            raise SystemExit(f"the Dagster UI's GraphQL API refused a query: {body['errors']}")
        return body["data"]

    def wait_until_loaded(self) -> None:
        """Until it answers and has loaded the code location (2 minutes at most)."""
        deadline = time.monotonic() + 120
        loaded = False
        while not loaded:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(
                    f"the Dagster UI did not start on {self.url}: {self.log.read_text()[-2000:]}"
                )
            try:
                entries = self.graphql(LOCATIONS)["workspaceOrError"]["locationEntries"]
                loaded = bool(entries) and all(e["loadStatus"] == "LOADED" for e in entries)
            except requests.RequestException:
                pass
            if not loaded:
                time.sleep(0.5)

    def launch(self, link: str, fill_in: dict[str, str], tags: dict[str, str]) -> str:
        """Open a launchpad link, fill in the blanks of its config and launch the run, as
        the launchpad's Launch button does; the run's id."""
        parts = urlsplit(link)
        found = re.search(r"/locations/([^/@]+)@([^/]+)/jobs/([^/]+)/playground", parts.path)
        if found is None:
            raise SystemExit(f"{link} is not a link to a job's launchpad")
        repository, location, job = map(unquote, found.groups())
        config = yaml.safe_load(parse_qs(parts.query)["config"][0])
        for op in config["ops"].values():
            op["config"].update(fill_in)
        params = {
            "selector": {
                "repositoryLocationName": location,
                "repositoryName": repository,
                "pipelineName": job,
            },
            "runConfigData": config,
            "mode": "default",
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
        }
        launched = self.graphql(LAUNCH, executionParams=params)["launchPipelineExecution"]
        if launched["__typename"] != "LaunchRunSuccess":
            raise SystemExit(f"the Dagster UI did not launch {job}: {launched}")
        return launched["run"]["runId"]

    def wait_for(self, run_id: str) -> str:
        """The status a run ends with, as its page shows it (2 minutes at most)."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            run = self.graphql(RUN_STATUS, runId=run_id)["runOrError"]
            if run.get("status") in ("SUCCESS", "FAILURE", "CANCELED"):
                return run["status"]
            time.sleep(0.2)
        raise SystemExit(f"the run {run_id} did not end within 2 minutes: {self.url}/runs/{run_id}")


LOCATIONS = "{ workspaceOrError { ... on Workspace { locationEntries { loadStatus } } } }"
# The launchpad's mutation (the Launch button), and the status a run's page polls.
LAUNCH = """
mutation LaunchPipelineExecution($executionParams: ExecutionParams!) {
  launchPipelineExecution(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on Error { message }
  }
}
"""
RUN_STATUS = "query ($runId: ID!) { runOrError(runId: $runId) { ... on Run { status } } }"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-ui", action="store_true", help="end after the summary")
    parser.add_argument("--people", type=int, default=3000, help="acme.example's directory")
    parser.add_argument("--port", type=int, default=3000, help="the Dagster UI's port")
    args = parser.parse_args()
    if args.people < 1000:  # fewer, and the 40 leavers exceed the deactivation budget
        parser.error(f"--people {args.people}: give at least 1000")
    home = Path(os.environ.setdefault("KOMEET_SYNC_HOME", str(ROOT / ".komeet_sync"))).resolve()
    os.environ["KOMEET_SYNC_HOME"] = str(home)
    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    (dagster_home / "dagster.yaml").write_text(INSTANCE)
    os.environ["DAGSTER_HOME"] = str(dagster_home)

    processes = Processes()

    def stop(signum, frame):  # Ctrl-C, and a TERM from a supervisor, stop the demo alike
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        generated, emulator = start_google(args.people, home)
        komeet = start_komeet(processes, generated)
        hook = Webhook.start()
        configure(generated, hook)
        add_partitions()
        # The UI loads while the weeks run (they show in it as they end); week 3's approval
        # goes through it.
        port = free_port() if args.no_ui else args.port
        ui = DagsterUI.start(processes, port, home / "demo" / "dagster-webserver.log")
        endpoint, secret = push_scim(processes)
        rows, changes, approval = run_weeks(generated, emulator, komeet, ui)
        if args.no_ui:  # no UI to serve: the webserver stops while the demo goes on
            ui.process.send_signal(signal.SIGINT)
        print_summary(rows, changes, approval)
        told = print_notifications(hook)
        pushed = push_a_joiner(processes, endpoint, secret)
        summary = {"weeks": rows, "changes": changes, "approval": approval}
        summary |= {"notifications": told, "incremental": pushed}
        (home / "demo" / "summary.json").write_text(json.dumps(summary, indent=1))
        if args.no_ui:
            return 0
        serve_ui(processes, ui)
    except KeyboardInterrupt:
        print("\nStopping...")
    finally:
        processes.stop()
    return 0


def start_google(people: int, home: Path):
    """The Directory API emulator, in this process, with a throwaway key."""
    from komeet_sync.emulators.directory_api import READ_ONLY_SCOPES, DirectoryEmulator
    from komeet_sync.emulators.directory_generator import generate_directory
    from komeet_sync.emulators.service_account import service_account_key

    generated = generate_directory(people, domain=GOOGLE_DOMAIN, groups=3, seed=7)
    emulator = DirectoryEmulator(generated.directory).start()
    key = service_account_key(emulator.token_uri)
    emulator.register_service_account(key)
    emulator.authorise(key["client_id"], READ_ONLY_SCOPES)
    key_file = home / "demo" / "google-emulator-key.json"
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_text(json.dumps(key))
    os.environ["GOOGLE_SERVICE_ACCOUNT_FILE"] = str(key_file)
    os.environ["GOOGLE_DIRECTORY_API_ENDPOINT"] = emulator.url
    print(f"Google Workspace emulator: {emulator.url} ({people:,} people in {GOOGLE_DOMAIN})")
    return generated, emulator


def start_komeet(processes: Processes, generated) -> requests.Session:
    """scim2-server as Komeet, holding accounts for part of acme.example."""
    port = free_port()
    token = secrets.token_urlsafe(24)
    processes.start(
        [str(BIN / "scim2-server"), "--port", str(port), "--bearer-token", token],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v2"
    os.environ["KOMEET_SCIM_URL"] = url
    os.environ["KOMEET_SCIM_TOKEN"] = token
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {token}"})
    deadline = time.monotonic() + 120  # a loaded machine takes its time to start it
    while True:
        try:
            session.get(f"{url}/ServiceProviderConfig", timeout=1).raise_for_status()
            break
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise SystemExit("the Komeet stand-in (scim2-server) did not start") from None
            time.sleep(0.1)
    accounts = komeet_accounts(members(generated.directory, generated.selected))
    accounts += globex_accounts()
    for account in accounts:
        session.post(f"{url}/Users", json={"schemas": [USER], **account}).raise_for_status()
    print(f"Komeet stand-in (scim2-server): {url}, {len(accounts):,} accounts")
    return session


def members(directory, selected: tuple[str, ...]) -> list[dict[str, Any]]:
    """The active users of the selected groups, nested groups included, in directory order."""
    groups = {str(group["email"]).lower(): group for group in directory.groups}
    ids: set[str] = set()
    pending, seen = [g.lower() for g in selected], set()
    while pending:
        group = groups.get(pending.pop())
        if group is None or group["email"] in seen:
            continue
        seen.add(group["email"])
        for member in group.get("members", []):
            if member.get("type") == "GROUP":
                pending.append(str(member.get("email", "")).lower())
            else:
                ids.add(str(member.get("id")))
    return [
        user
        for user in directory.users
        if str(user["id"]) in ids and not user.get("suspended") and not user.get("archived")
    ]


def komeet_accounts(users: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Komeet's accounts before the sync, for every other desired person: managed, some
    with old names (updates), some deactivated (returners); then accounts of people who
    left (leavers) and an unmanaged shared mailbox."""
    accounts = []
    for number, user in enumerate(users[1::2]):
        given = (user.get("name") or {}).get("givenName")
        family = (user.get("name") or {}).get("familyName")
        name = {k: v for k, v in (("givenName", given), ("familyName", family)) if v}
        if number % 20 == 1:
            name["givenName"] = "Former"
        accounts.append(
            {
                "userName": user["primaryEmail"],
                "externalId": user["id"],
                "active": number % 25 != 2,
                "name": name,
            }
        )
    for number in range(40):
        accounts.append(
            {
                "userName": f"left{number:02d}@{GOOGLE_DOMAIN}",
                "externalId": f"left-{number}",
                "active": True,
                "name": {"givenName": "Left", "familyName": f"Person{number}"},
            }
        )
    accounts.append({"userName": f"shared-mailbox@{GOOGLE_DOMAIN}", "active": True})
    # A renamed person whose old address also has an account: one person, two accounts.
    renamed = [u for u in users[::2] if u.get("aliases")][:3]
    for user in renamed:
        accounts.append(
            {"userName": user["primaryEmail"], "externalId": user["id"], "active": True}
        )
        accounts.append({"userName": user["aliases"][0], "active": True})
    return accounts


def globex_accounts() -> list[dict[str, Any]]:
    """globex.com's Komeet accounts, from the bundled export."""
    from komeet_sync.sources.exports import load_json, unpack

    path = ROOT / "komeet_sync" / "examples" / "globex" / "komeet_users.json"
    kept = {"userName", "externalId", "name", "active", "emails"}
    return [
        {key: value for key, value in user.items() if key in kept}
        for user in unpack(load_json(path, "SCIM Users"), path, "Resources", "SCIM Users")
    ]


def configure(generated, hook: Webhook) -> None:
    """Both domains, as Komeet staff configure them, each telling its events to the demo's
    webhook (``domains set DOMAIN --notify json://...``)."""
    from komeet_sync.model.domain_config import DomainConfig
    from komeet_sync.store.database import open_database
    from komeet_sync.store.domains import DomainStore

    store = DomainStore(open_database())
    known = {config.domain for config in store.list()}
    if GOOGLE_DOMAIN not in known:
        store.add(
            DomainConfig.create(
                GOOGLE_DOMAIN,
                "google",
                admin_email=generated.admin,
                groups=list(generated.selected),
                protected=[f"shared-mailbox@{GOOGLE_DOMAIN}"],
                max_deactivation_share=0.2,
            )
        )
    if SCIM_DOMAIN not in known:
        store.add(
            DomainConfig.create(
                SCIM_DOMAIN, "scim", groups=["Komeet Users"], max_deactivation_share=0.5
            )
        )
    for domain in (GOOGLE_DOMAIN, SCIM_DOMAIN):
        store.set_notify_urls(domain, (hook.url(),))
    print(f"Notifications of both domains go to the demo's JSON webhook: {hook.url()}")


def push_scim(processes: Processes) -> tuple[subprocess.Popen, str]:
    """globex.com's IdP pushes its users and groups as Entra ID would (scripts/demo-scim.py).
    The endpoint's process and the domain's secret."""
    import importlib.util

    from komeet_sync.sources.scim.secret import hash_secret, new_secret
    from komeet_sync.store.database import open_database
    from komeet_sync.store.domains import DomainStore

    secret = new_secret()
    DomainStore(open_database()).set_scim_secret_hash(SCIM_DOMAIN, hash_secret(secret))
    server = processes.start(
        # --quiet: the pushes are printed below, one line each, as the IdP sees them.
        [str(BIN / "komeet-sync"), "scim", "serve", "--port", "0", "--json", "--quiet"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    url = json.loads(server.stdout.readline())["url"]
    spec = importlib.util.spec_from_file_location("demo_scim", ROOT / "scripts" / "demo-scim.py")
    assert spec is not None and spec.loader is not None
    demo_scim = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo_scim)
    print(f"SCIM endpoint: {url}/scim/{SCIM_DOMAIN}/v2; globex.com's IdP pushes:")
    demo_scim.push(f"{url}/scim/{SCIM_DOMAIN}/v2", secret)
    return server, secret


def run_weeks(generated, emulator, komeet: requests.Session, ui: DagsterUI):
    """Three weekly syncs of both domains, the directory changing in between; before
    globex.com's third, an admin approves its held plan in the UI."""
    rows = [sync_week(1, GOOGLE_DOMAIN), sync_week(1, SCIM_DOMAIN)]
    changes = []
    approval: dict[str, Any] = {}
    for week in (2, 3):
        directory, changed = next_week(emulator.directory, generated.selected, week)
        emulator.directory = directory
        changes.append(changed)
        race = None
        if changed["renamed"]:
            race = functools.partial(create_by_hand, komeet, changed["renamed"][0]["to"])
        # The admin approves while acme.example syncs: its run has a process of its own.
        launched = approve_in_ui(ui, SCIM_DOMAIN, week) if week == 3 else {}
        rows.append(sync_week(week, GOOGLE_DOMAIN, before_apply=race))
        if launched:
            approval = approved(ui, launched)
        rows.append(sync_week(week, SCIM_DOMAIN))
    return rows, changes, approval


def add_partitions() -> None:
    """Both domains' partitions, before the webserver opens the instance (the sensor that
    adds them runs with the UI, after the weeks)."""
    import dagster as dg

    from pipelines.partitions import domains

    instance = dg.DagsterInstance.get()
    known = set(instance.get_dynamic_partitions(domains.name))
    missing = [domain for domain in (GOOGLE_DOMAIN, SCIM_DOMAIN) if domain not in known]
    if missing:
        instance.add_dynamic_partitions(domains.name, missing)


def latest_results(domain: str):
    """The latest materialization of ``results`` for the domain: what its last sync did."""
    import dagster as dg

    from komeet_sync.model.reports import RESULTS

    records = dg.DagsterInstance.get().fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(RESULTS.name), asset_partitions=[domain]),
        limit=1,
    )
    [record] = records.records
    return record


def approve_in_ui(ui: DagsterUI, domain: str, week: int) -> dict[str, Any]:
    """An admin opens the "approve in the UI" link of the domain's held run (the metadata of
    its ``results``), writes their name in the launchpad and launches ``approve_plan``,
    whose run records the approval (``approved`` waits for it); the domain's next sync
    applies the plan. The approval, as the summary tells it."""
    metadata = latest_results(domain).asset_materialization.metadata
    link = metadata.get("approve in the UI")
    if link is None:
        raise SystemExit(
            f"week {week}, {domain}: its last sync held no plan to approve (status "
            f"{metadata['status'].value}); a guard should have held it"
        )
    ui.wait_until_loaded()
    run_id = ui.launch(link.url, {"approved_by": APPROVER}, {"demo/week": str(week)})
    return {"week": week, "domain": domain, "plan_id": metadata["plan_id"].value,
            "approved_by": APPROVER, "run_id": run_id}  # fmt: skip


def approved(ui: DagsterUI, approval: dict[str, Any]) -> dict[str, Any]:
    """The approval, once its run succeeded; any other end is a broken demo, said as such."""
    import dagster as dg

    run_id = approval["run_id"]
    status = ui.wait_for(run_id)
    if status != "SUCCESS":
        failures = [
            root_cause(event.dagster_event.step_failure_data.error)
            for event in dg.DagsterInstance.get().all_logs(
                run_id, of_type=dg.DagsterEventType.STEP_FAILURE
            )
        ]
        raise SystemExit(
            f"week {approval['week']}, {approval['domain']}: the approve_plan run {run_id} "
            f"ended {status}: {'; '.join(failures) or f'see {ui.url}/runs/{run_id}'}"
        )
    print(
        f"  week {approval['week']}: {approval['approved_by']} approved {approval['plan_id']} "
        f"in the Dagster UI (run {run_id})"
    )
    return approval


def next_week(directory, selected: tuple[str, ...], week: int):
    """The directory a week later: people join the first selected group, others are
    suspended, and in week 2 one person is renamed (the old address stays an alias)."""
    from komeet_sync.emulators.directory import Directory

    rng = random.Random(week)
    users = copy.deepcopy(directory.users)
    groups = copy.deepcopy(directory.groups)
    in_groups = members(Directory(users, groups), selected)
    desired = [u for u in in_groups if full_name(u)]
    desired_ids = {u["id"] for u in in_groups}
    leaving = rng.sample(desired, 15 if week == 2 else 10)
    for user in leaving:
        user["suspended"] = True
    outside = [
        u
        for u in users
        if u["id"] not in desired_ids
        and full_name(u)
        and not u.get("suspended")
        and not u.get("archived")
        and not u.get("isAdmin")
    ]
    joining = rng.sample(outside, min(len(outside), 25 if week == 2 else 20))
    first = next(g for g in groups if g["email"] == selected[0])
    first["members"] += [
        {"kind": "admin#directory#member", "id": u["id"], "email": u["primaryEmail"],
         "role": "MEMBER", "type": "USER", "status": "ACTIVE"}
        for u in joining
    ]  # fmt: skip
    renamed = []
    if week == 2:
        left = {u["id"] for u in leaving}
        person = next(u for u in desired if u["id"] not in left and not u.get("aliases"))
        old = person["primaryEmail"]
        local, _, domain = old.partition("@")
        given, _, number = local.split(".")
        new = f"{given}.rossi.{number}@{domain}"
        person["primaryEmail"] = new
        person["aliases"] = [old]
        person["name"]["familyName"] = "Rossi"
        person["emails"] = [{"address": new, "primary": True}, {"address": old}]
        for group in groups:
            for member in group.get("members", []):
                if member.get("id") == person["id"]:
                    member["email"] = new
        renamed.append({"from": old, "to": new, "id": person["id"]})
    changed = {
        "week": week,
        "joined": sorted(u["primaryEmail"] for u in joining),
        "left": sorted(u["primaryEmail"] for u in leaving),
        "renamed": renamed,
    }
    return Directory(users, groups), changed


def full_name(user: dict[str, Any]) -> bool:
    name = user.get("name") or {}
    return bool(str(name.get("givenName") or "").strip()) and bool(
        str(name.get("familyName") or "").strip()
    )


def create_by_hand(komeet: requests.Session, user_name: str) -> None:
    """A Komeet admin creates an account for the person's new address by hand, between the
    sync's read of Komeet and its apply."""
    url = os.environ["KOMEET_SCIM_URL"]  # set by start_komeet
    account = {"schemas": [USER], "userName": user_name, "active": True}
    komeet.post(f"{url}/Users", json=account).raise_for_status()
    print(f"  week 2: a Komeet admin created {user_name} by hand while the sync ran")


def sync_week(week: int, domain: str, before_apply=None) -> dict[str, Any]:
    """The sync_domain job for one domain, as the schedule runs it; with ``before_apply``,
    in two runs with it in between. Its row of the summary, from what the runs stored:
    ``status`` is the ``results`` asset's (held, applied...), ``run_id`` the run's that
    materialized it."""
    import dagster as dg

    from komeet_sync.analysis.loader import Loader
    from pipelines.definitions import defs

    instance = dg.DagsterInstance.get()
    job = defs.resolve_job_def("sync_domain")
    run_config: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
    tags = {"demo/week": str(week)}
    apply = dg.AssetKey("results")
    everything = list(job.asset_layer.executable_asset_keys)
    steps = [everything]
    if before_apply is not None:  # reports and plan, then the apply, in two runs
        steps = [[key for key in everything if key != apply], [apply]]
    for number, selection in enumerate(steps):
        if number:
            before_apply()
        result = job.execute_in_process(
            instance=instance, partition_key=domain, raise_on_error=False,
            run_config=run_config, tags=tags, asset_selection=selection,
        )  # fmt: skip
        # A run whose plan a guard holds succeeds, tagged komeet/held; any run failing is a
        # broken demo, said as such.
        if not result.success:
            failures = [
                root_cause(event.step_failure_data.error)
                for event in result.all_events
                if event.is_step_failure and event.step_failure_data.error is not None
            ]
            raise SystemExit(
                f"week {week}, {domain}: the Dagster run {result.run_id} failed: "
                f"{'; '.join(failures) or 'see its events in the Dagster UI'}"
            )
    results = latest_results(domain)
    loader = Loader()
    latest = loader.trend(domain).iloc[-1]
    duplicates = loader.report(domain, "duplicates")
    held = latest["held"]
    if held and isinstance(latest["approved_by"], str):  # pandas gives NaN for "nobody"
        held = f"{held}, approved by {latest['approved_by']}"
    return {
        "week": week,
        "domain": domain,
        "status": results.asset_materialization.metadata["status"].value,
        "joiners": int(latest["joiners"]),
        "leavers": int(latest["leavers"]),
        "updates": int(latest["updates"]),
        "duplicates": int(duplicates["cluster_id"].nunique()),
        "errors": int(latest["errors"]),
        "plan_id": latest["plan_id"],
        "applied": int(latest["applied"]),
        "failed": int(latest["failed"]),
        "held": held,
        "run_id": results.run_id,
    }


def root_cause(error) -> str:
    """The innermost error of a failed step: the sync's own message, not Dagster's wrapper."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


def push_a_joiner(processes: Processes, endpoint: subprocess.Popen, secret: str) -> dict[str, Any]:
    """After the weekly syncs, the endpoint restarts with the worker (``scim serve
    --worker``), and globex.com's IdP pushes a new joiner as Entra ID would: the user, then
    the group's PATCH adding them. The seconds from that PATCH's 2xx to the create's
    ``finished_at`` in the ledger (Komeet acknowledged it), both on this machine's clock,
    and the worker's line for the batch that sent it."""
    import pandas as pd

    from komeet_sync.analysis.loader import Loader

    endpoint.send_signal(signal.SIGINT)
    endpoint.wait(timeout=20)
    server = processes.start(
        [str(BIN / "komeet-sync"), "scim", "serve", "--port", "0", "--json", "--quiet",
         "--worker"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert server.stdout is not None
    url = f"{json.loads(server.stdout.readline())['url']}/scim/{SCIM_DOMAIN}/v2"
    batches: list[dict[str, Any]] = []  # the worker's lines, read as they come
    threading.Thread(
        target=lambda: batches.extend(map(json.loads, server.stdout)), daemon=True
    ).start()
    idp = requests.Session()
    idp.headers.update({"Authorization": f"Bearer {secret}"})
    number = 1  # a new person at each run of the demo
    while idp.get(
        f"{url}/Users", params={"filter": f'userName eq "lena.koch{number}@{SCIM_DOMAIN}"'}
    ).json()["totalResults"]:
        number += 1
    user_name = f"lena.koch{number}@{SCIM_DOMAIN}"
    print(f"\nThe worker runs in the endpoint's process; globex.com's IdP adds {user_name}:")
    group = idp.get(f"{url}/Groups", params={"filter": 'displayName eq "Komeet Users"'})
    created = idp.post(
        f"{url}/Users",
        json={"schemas": [USER], "userName": user_name, "externalId": f"entra-lk{number}",
              "active": True, "name": {"givenName": "Lena", "familyName": f"Koch{number}"},
              "emails": [{"value": user_name, "type": "work", "primary": True}]},
    )  # fmt: skip
    created.raise_for_status()
    added = idp.patch(
        f"{url}/Groups/{group.json()['Resources'][0]['id']}",
        json={"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
              "Operations": [{"op": "add", "path": "members",
                              "value": [{"value": created.json()["id"]}]}]},
    )  # fmt: skip
    pushed_at = pd.Timestamp.now(tz="UTC")
    added.raise_for_status()
    deadline = time.monotonic() + 60
    while True:
        ledger = Loader().ledger(SCIM_DOMAIN)
        done = ledger[(ledger["user_name"] == user_name) & ledger["finished_at"].notna()]
        sent = [batch for batch in batches if batch.get("actions")]
        if not done.empty and sent:
            break
        if server.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{user_name} did not reach Komeet within a minute")
        time.sleep(0.05)
    row = done.iloc[0]
    finished = pd.Timestamp(row["finished_at"])  # SQLite's are naive, in UTC
    finished = finished.tz_localize("UTC") if finished.tzinfo is None else finished
    seconds = round((finished - pushed_at).total_seconds(), 3)  # printed as recorded
    print(
        f"  {row['action']} {user_name}: {row['status']} in Komeet {seconds:.2f} s after the "
        "IdP's push, not at the next weekly sync (the worker's batch: "
        f"{sent[0]['seconds']:.2f} s, {sent[0]['komeet_seconds']:.2f} s of it awaiting Komeet)"
    )
    return {"user_name": user_name, "action": row["action"], "status": row["status"],
            "seconds": seconds, "batch": sent[0]}  # fmt: skip


def print_notifications(hook: Webhook) -> list[dict[str, Any]]:
    """Send the events the weeks recorded, as Dagster's ``notifications`` sensor does every
    30 seconds, and print what the webhook received."""
    import dagster as dg

    from pipelines.resources import DatabaseResource
    from pipelines.sensors import notifications

    with dg.build_sensor_context(
        instance=dg.DagsterInstance.get(), resources={"database": DatabaseResource()}
    ) as context:
        notifications(context)
    posts = hook.wait(1, timeout=5)
    print(f"\nThe demo's webhook received {len(posts)} notification(s):")
    for post in posts:
        print(f"  {post['title']}")
        for line in str(post["message"]).strip().splitlines():
            print(f"  | {line}")
    return posts


def print_summary(
    rows: list[dict[str, Any]], changes: list[dict[str, Any]], approval: dict[str, Any]
) -> None:
    print()
    for change in changes:
        renamed = "".join(f", {r['from']} renamed {r['to']}" for r in change["renamed"])
        print(
            f"Week {change['week']}: {len(change['joined'])} people joined the selected groups, "
            f"{len(change['left'])} were suspended{renamed}"
        )
    print()
    shown = [{k: v for k, v in row.items() if k not in ("plan_id", "run_id")} for row in rows]
    print(tabulate(shown, headers="keys"))
    print("(duplicates: clusters of accounts that are one person; errors: people not synced)")
    last = {row["domain"]: row for row in rows}
    for row in last.values():
        if row["held"] and "approved by" not in row["held"]:
            print(
                f"{row['domain']}: plan {row['plan_id']} is held ({row['held']}); review it "
                f"with `komeet-sync plans show {row['plan_id']}`"
            )
    if approval:
        domain = approval["domain"]
        held = [
            str(row["week"]) for row in rows if (row["domain"], row["status"]) == (domain, "held")
        ]
        then = next(
            row for row in rows if (row["domain"], row["week"]) == (domain, approval["week"])
        )
        weeks = f"week{'s' * (len(held) > 1)} {' and '.join(held)}"
        print(
            f"{domain}: held in {weeks}; {approval['plan_id']} approved in week "
            f"{approval['week']} by {approval['approved_by']} in the Dagster UI (the "
            f"approve_plan run {approval['run_id']}); week {then['week']}'s sync: "
            f"{then['status']}, {then['applied']} action(s) sent"
        )
    failed = sum(row["failed"] for row in rows)
    if failed:
        print(
            f"{failed} action(s) failed: notebooks/investigate_sync_errors.ipynb tells why "
            "(`make lab`)"
        )


def serve_ui(processes: Processes, ui: DagsterUI) -> None:
    """The UI until Ctrl-C, with the daemon beside it (what ``dagster dev`` runs): the
    schedule and the sensors run from now on."""
    processes.start(
        [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    ui.wait_until_loaded()
    print(f"\nDagster UI: {ui.url}  (Ctrl-C stops the demo; `make lab` opens the notebooks)")
    ui.process.wait()


if __name__ == "__main__":
    sys.exit(main())
