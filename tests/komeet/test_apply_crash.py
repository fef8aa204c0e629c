"""A plan applied by ``komeet-sync apply`` while the process is killed (SIGKILL) at random
moments, then resumed: twenty rounds, each ending in exactly the desired accounts, with no
account created twice and every action applied once in the ledger."""

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

from komeet_sync.emulators.http_proxy import HttpProxy
from komeet_sync.store.database import open_database
from komeet_sync.store.domains import DomainStore
from komeet_sync.store.ledger import Status
from komeet_sync.store.tables import LedgerRow
from tests.support.provisioning import DOMAIN, account_for, configure, directory, person, synced

ROUNDS = 20
KOMEET_SYNC = Path(sys.executable).with_name("komeet-sync")


def planned(engine, komeet, client):
    """A stored plan of 160 creates, 30 updates and 20 deactivations, not yet applied."""
    configure(engine, max_deactivation_share=1.0, enabled=False)
    people = [person(i) for i in range(190)]
    for user in people[160:]:
        komeet.add(**account_for(user, name={"givenName": "Old", "familyName": "Name"}))
    for number in range(900, 920):
        komeet.add(**account_for(person(number)))
    config = DomainStore(engine).get(DOMAIN)
    run = synced(config, directory(people), client, engine)
    assert run.applied.stopped is not None and run.applied.stopped.kind == "disabled"
    assert run.planned.report.stored.counts == {"create": 160, "deactivate": 20, "update": 30}
    DomainStore(engine).set_enabled(DOMAIN, True)
    return run.planned.plan_id, people


def applied(engine) -> int:
    with engine.connect() as connection:
        statuses = Counter(connection.scalars(select(LedgerRow.status)))
    return statuses[Status.APPLIED.value]


def test_killed_applies_resume_to_exactly_the_desired_accounts(komeet_server, tmp_path):
    rng = random.Random(20261129)
    interrupted = 0
    for round_number in range(ROUNDS):
        komeet = komeet_server.tenant()
        database = f"sqlite:///{tmp_path / f'round{round_number}.db'}"
        engine = open_database(database)
        proxy = HttpProxy(komeet.url, latency=0.01).start()
        try:
            plan_id, people = planned(engine, komeet, komeet.client())
            mode = "bulk" if round_number % 2 else "concurrent"
            env = os.environ | {
                "KOMEET_SYNC_HOME": str(tmp_path / "home"),
                "KOMEET_SYNC_DATABASE_URL": database,
                "KOMEET_SCIM_URL": proxy.url,
                "KOMEET_SCIM_TOKEN": komeet.token,
            }
            command = [str(KOMEET_SYNC), "apply", plan_id, "--mode", mode]
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
        assert set(active) == {p["primaryEmail"] for p in people}
        assert all(a["name"]["givenName"] != "Old" for a in active.values())
        with engine.connect() as connection:
            rows = connection.execute(select(LedgerRow.status, LedgerRow.position)).all()
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
