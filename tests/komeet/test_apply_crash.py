"""A plan applied while the process is killed (SIGKILL) at random moments, then resumed:
eight rounds, each ending in exactly the desired accounts, with no account created twice.
Half the rounds apply a stored plan with ``komeet-sync apply`` (every create searched
first: the plan's read may be stale); the other half run ``komeet-sync sync``, whose creates
of a fresh plan go without a search until a kill leaves them in doubt."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from komeet_sync.emulators.directory import Directory
from komeet_sync.emulators.http_proxy import HttpProxy
from komeet_sync.store.database import open_database
from komeet_sync.store.domains import DomainStore
from komeet_sync.store.ledger import Status
from komeet_sync.store.tables import LedgerRow
from tests.support.google_workspace import member
from tests.support.provisioning import DOMAIN, account_for, configure, directory, person, synced
from tests.support.scale import at_scale

# Each of the four ways (apply or sync, Bulk or concurrent) once in CI, twice at full size.
ROUNDS = at_scale(4, 8)
KOMEET_SYNC = Path(sys.executable).with_name("komeet-sync")
ADMIN = f"admin@{DOMAIN}"
PEOPLE = [person(i) for i in range(190)]


def populated(komeet) -> None:
    """Komeet before the plan: 30 accounts to update and 20 leavers to deactivate."""
    for user in PEOPLE[160:]:
        komeet.add(**account_for(user, name={"givenName": "Old", "familyName": "Name"}))
    for number in range(900, 920):
        komeet.add(**account_for(person(number)))


def planned(engine, komeet, client):
    """A stored plan of 160 creates, 30 updates and 20 deactivations, not yet applied."""
    configure(engine, max_deactivation_share=1.0, enabled=False)
    populated(komeet)
    config = DomainStore(engine).get(DOMAIN)
    run = synced(config, directory(PEOPLE), client, engine)
    assert run.applied.stopped is not None and run.applied.stopped.kind == "disabled"
    assert run.planned.report.stored.counts == {"create": 160, "deactivate": 20, "update": 30}
    DomainStore(engine).set_enabled(DOMAIN, True)
    return run.planned.plan_id


def applied(engine) -> int:
    with engine.connect() as connection:
        statuses = Counter(connection.scalars(select(LedgerRow.status)))
    return statuses[Status.APPLIED.value]


def test_killed_applies_resume_to_exactly_the_desired_accounts(
    small_bulk_komeet_server, workspace, tmp_path
):
    rng = random.Random(20261129)
    google = workspace(
        Directory.from_exports(
            [*PEOPLE, person(999, ADMIN)],
            {f"all@{DOMAIN}": [member(user) for user in PEOPLE]},
            admins=[ADMIN],
        )
    )
    interrupted = 0
    for round_number in range(ROUNDS):
        komeet = small_bulk_komeet_server.tenant()  # Bulk requests of 10 operations
        database = f"sqlite:///{tmp_path / f'round{round_number}.db'}"
        engine = open_database(database)
        proxy = HttpProxy(komeet.url, latency=0.01).start()
        mode = "bulk" if round_number % 2 else "concurrent"
        by_sync = round_number % 4 >= 2
        try:
            if by_sync:
                configure(engine, max_deactivation_share=1.0)
                populated(komeet)
                command = [str(KOMEET_SYNC), "sync", DOMAIN, "--mode", mode]
            else:
                plan_id = planned(engine, komeet, komeet.client())
                command = [str(KOMEET_SYNC), "apply", plan_id, "--mode", mode]
            env = os.environ | {
                "KOMEET_SYNC_HOME": str(tmp_path / "home"),
                "KOMEET_SYNC_DATABASE_URL": database,
                "KOMEET_SCIM_URL": proxy.url,
                "KOMEET_SCIM_TOKEN": komeet.token,
                "GOOGLE_SERVICE_ACCOUNT_FILE": str(google.key_file),
                "GOOGLE_DIRECTORY_API_ENDPOINT": google.emulator.url,
            }
            for _ in range(2):  # killed up to twice, at a random moment each
                before = applied(engine)
                process = subprocess.Popen(
                    command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
                )
                # Once it applies (however long its start took on a loaded machine), kill
                # it at a random moment: before, during or after a request or a write.
                deadline = time.monotonic() + 60
                while process.poll() is None and applied(engine) <= before:
                    assert time.monotonic() < deadline, "the apply never started"
                    time.sleep(0.01)
                time.sleep(rng.uniform(0.0, 0.8))
                if process.poll() is not None:
                    break
                process.send_signal(signal.SIGKILL)
                process.wait()
                interrupted += applied(engine) < 210
            finished = subprocess.run(command, env=env, capture_output=True, text=True)
            assert finished.returncode == 0, finished.stderr
        finally:
            proxy.stop()

        accounts = komeet.users()
        external_ids = Counter(account.get("externalId") for account in accounts)
        assert max(external_ids.values()) == 1, "an account was created twice"
        assert len(accounts) == 210
        active = {a["userName"]: a for a in accounts if a["active"]}
        assert set(active) == {p["primaryEmail"] for p in PEOPLE}
        assert all(a["name"]["givenName"] != "Old" for a in active.values())
        with engine.connect() as connection:
            rows = connection.execute(select(LedgerRow.status, LedgerRow.position)).all()
        if by_sync:  # a sync after a kill makes a new plan of what is left: none failed
            assert Status.FAILED.value not in {status for status, _ in rows}
        else:  # one plan, each action applied once
            assert Counter(status for status, _ in rows) == {Status.APPLIED.value: 210}
            assert sorted(position for _, position in rows) == list(range(210))
        assert not any(r.method == "DELETE" for r in proxy.stats().requests)
        engine.dispose()
    # The kills must have landed mid-apply, or this test proves nothing.
    assert interrupted >= ROUNDS // 2, f"only {interrupted} kills interrupted an application"
    print(f"{interrupted} kills interrupted an application")


@pytest.fixture(autouse=True)
def home(monkeypatch, tmp_path):
    monkeypatch.setenv("KOMEET_SYNC_HOME", str(tmp_path / "home"))
