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

Both domains are materialized by the Dagster job ``sync_domain``; a summary is printed;
then the Dagster UI is served (unless ``--no-ui``) until Ctrl-C, which stops every process
the demo started. State lives under ``KOMEET_SYNC_HOME`` (default ``./.komeet_sync``), so a
second run continues from the first.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests
from tabulate import tabulate

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
GOOGLE_DOMAIN = "acme.example"
SCIM_DOMAIN = "globex.com"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Processes:
    """Every process the demo starts, stopped at its end (Ctrl-C included)."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen] = []

    def start(self, command: list[str], **options: Any) -> subprocess.Popen:
        process = subprocess.Popen(command, cwd=ROOT, **options)
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-ui", action="store_true", help="end after the summary")
    parser.add_argument("--people", type=int, default=3000, help="acme.example's directory")
    parser.add_argument("--port", type=int, default=3000, help="the Dagster UI's port")
    args = parser.parse_args()
    home = Path(os.environ.setdefault("KOMEET_SYNC_HOME", str(ROOT / ".komeet_sync"))).resolve()
    os.environ["KOMEET_SYNC_HOME"] = str(home)
    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    os.environ["DAGSTER_HOME"] = str(dagster_home)

    processes = Processes()

    def stop(signum, frame):  # Ctrl-C, and a TERM from a supervisor, stop the demo alike
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        generated = start_google(args.people, home)
        start_komeet(processes, generated)
        configure(generated)
        push_scim(processes)
        summary = materialize()
        print_summary(summary)
        if args.no_ui:
            return 0
        serve_ui(processes, args.port)
    except KeyboardInterrupt:
        print("\nStopping...")
    finally:
        processes.stop()
    return 0


def start_google(people: int, home: Path):
    """The Directory API emulator, in this process, with a throwaway key."""
    from komeet_sync.emulators.directory_generator import generate_directory
    from komeet_sync.emulators.google_directory import (
        READ_ONLY_SCOPES,
        DirectoryEmulator,
        service_account_key,
    )

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
    return generated


def start_komeet(processes: Processes, generated) -> None:
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
    deadline = time.monotonic() + 20
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
    from komeet_sync.export_files import load_json, unpack

    path = ROOT / "komeet_sync" / "examples" / "globex" / "komeet_users.json"
    kept = {"userName", "externalId", "name", "active", "emails"}
    return [
        {key: value for key, value in user.items() if key in kept}
        for user in unpack(load_json(path, "SCIM Users"), path, "Resources", "SCIM Users")
    ]


def configure(generated) -> None:
    from komeet_sync.database import open_database
    from komeet_sync.domain_config import DomainConfig
    from komeet_sync.domain_store import DomainStore

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


def push_scim(processes: Processes) -> None:
    """globex.com's IdP pushes its users and groups as Entra ID would (scripts/demo-scim.py)."""
    import importlib.util

    from komeet_sync.database import open_database
    from komeet_sync.domain_store import DomainStore
    from komeet_sync.scim_secret import hash_secret, new_secret

    secret = new_secret()
    DomainStore(open_database()).set_scim_secret_hash(SCIM_DOMAIN, hash_secret(secret))
    server = processes.start(
        [str(BIN / "komeet-sync"), "scim", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    line = server.stdout.readline()
    url = line.split()[3].split("/scim/")[0]
    spec = importlib.util.spec_from_file_location("demo_scim", ROOT / "scripts" / "demo-scim.py")
    assert spec is not None and spec.loader is not None
    demo_scim = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo_scim)
    print(f"SCIM endpoint: {url}/scim/{SCIM_DOMAIN}/v2; globex.com's IdP pushes:")
    demo_scim.push(f"{url}/scim/{SCIM_DOMAIN}/v2", secret)


def materialize() -> list[dict[str, Any]]:
    """Run the sync_domain job for both domains, as the schedule would."""
    import dagster as dg

    from komeet_sync.loader import Loader
    from pipelines.definitions import defs
    from pipelines.partitions import domains

    instance = dg.DagsterInstance.get()
    existing = set(instance.get_dynamic_partitions(domains.name))
    new = [d for d in (GOOGLE_DOMAIN, SCIM_DOMAIN) if d not in existing]
    if new:
        instance.add_dynamic_partitions(domains.name, new)
    loader = Loader()
    rows = []
    for domain in (GOOGLE_DOMAIN, SCIM_DOMAIN):
        result = defs.resolve_job_def("sync_domain").execute_in_process(
            instance=instance,
            partition_key=domain,
            raise_on_error=False,
            # The summary says what matters; the run's events are in the UI.
            run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
        )
        held = [
            evaluation.check_name
            for evaluation in result.get_asset_check_evaluations()
            if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
        ]
        row: dict[str, Any] = {"domain": domain}
        for name in ("joiners", "leavers", "updates", "duplicates", "sync_errors"):
            row[name] = len(loader.report(domain, name))
        plan = loader.value(domain, "provisioning_plan").plan
        row["plan"] = plan.plan_id
        applied = loader.value(domain, "provisioning_results") if not held else None
        row["applied"] = applied.counts.get("applied", 0) if applied else 0
        row["held"] = ", ".join(hold.guard.value for hold in plan.holds) if held else ""
        rows.append(row)
    return rows


def print_summary(rows: list[dict[str, Any]]) -> None:
    print()
    print(tabulate(rows, headers="keys"))
    for row in rows:
        if row["held"]:
            print(
                f"{row['domain']}: plan {row['plan']} is held ({row['held']}); review it with "
                f"`komeet-sync plans show {row['plan']}`"
            )


def serve_ui(processes: Processes, port: int) -> None:
    ui = processes.start(
        [str(BIN / "dagster"), "dev", "-w", "workspace.yaml", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if requests.get(f"{url}/server_info", timeout=2).ok:
                break
        except requests.RequestException:
            pass
        if ui.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the Dagster UI did not start on {url}")
        time.sleep(0.5)
    print(f"\nDagster UI: {url}  (Ctrl-C stops the demo)")
    ui.wait()


if __name__ == "__main__":
    sys.exit(main())
