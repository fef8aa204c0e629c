"""IdP pushes reach Komeet through the incremental worker (``runs.worker``), on SQLite and
PostgreSQL: pushes over HTTP to our SCIM endpoint, Komeet the scim2-server stand-in. After
a burst of pushes the worker has done what a whole sync would: a whole sync then plans
nothing. Deactivations share the domain's budget over the rolling hour; a disabled or a
quarantined domain gets nothing; re-pushed unchanged people send nothing; a domain's writes
are paced."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from komeet_sync.emulators.http_proxy import HttpProxy
from komeet_sync.runs import sync
from komeet_sync.runs.quarantine import release
from komeet_sync.runs.worker import Options, Worker
from komeet_sync.sources.scim.staging import read_staging
from komeet_sync.store.domains import DomainStore
from komeet_sync.store.plans import PlanStore
from komeet_sync.store.results import ResultStore

DOMAIN = "globex.com"
GROUP_NAME = "Komeet Users"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


class Idp:
    """An IdP pushing one domain's people and its group to our endpoint, as Entra ID does."""

    def __init__(self, scim, **options) -> None:
        self.scim = scim
        scim.add_domain(DOMAIN, groups=[GROUP_NAME], **options)
        self.http = scim.client(DOMAIN)
        self.ids: dict[str, str] = {}
        created = self.http.post(
            "/Groups", json={"schemas": [GROUP], "displayName": GROUP_NAME, "members": []}
        )
        assert created.status_code == 201, created.text
        self.group = created.json()["id"]

    def user(self, name: str, *, active: bool = True, in_group: bool = True) -> str:
        created = self.http.post("/Users", json=self._user(name, active))
        assert created.status_code == 201, created.text
        self.ids[name] = created.json()["id"]
        if in_group:
            self.members("add", name)
        return self.ids[name]

    def replace(self, name: str, *, user_name: str | None = None, active: bool = True) -> None:
        body = self._user(name, active) | ({"userName": user_name} if user_name else {})
        replaced = self.http.put(f"/Users/{self.ids[name]}", json=body)
        assert replaced.status_code == 200, replaced.text

    def members(self, op: str, *names: str) -> None:
        values = [{"value": self.ids[name]} for name in names]
        operation = (
            {"op": "add", "path": "members", "value": values}
            if op == "add"
            else {"op": "remove", "path": f'members[value eq "{self.ids[names[0]]}"]'}
        )
        patched = self.http.patch(
            f"/Groups/{self.group}", json={"schemas": [PATCH_OP], "Operations": [operation]}
        )
        assert patched.status_code in (200, 204), patched.text

    def delete(self, name: str) -> None:
        assert self.http.delete(f"/Users/{self.ids[name]}").status_code == 204

    @staticmethod
    def _user(name: str, active: bool) -> dict:
        return {
            "schemas": [USER],
            "userName": f"{name}@{DOMAIN}",
            "externalId": f"entra-{name}",
            "name": {"givenName": name.title(), "familyName": "Person"},
            "active": active,
        }


@pytest.fixture
def environment(scim, komeet, monkeypatch, tmp_path):
    """The CLI's environment pointed at the endpoint's database and at Komeet."""
    monkeypatch.setenv("KOMEET_SYNC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KOMEET_SYNC_DATABASE_URL", str(scim.engine.url))
    komeet.env(monkeypatch)


@pytest.fixture
def idp(environment, scim):
    """globex.com pushed over SCIM; half its accounts may be deactivated in an hour."""
    return Idp(scim, max_deactivation_share=0.5)


def whole_sync(scim, komeet, *, dry_run: bool = False) -> sync.SyncRun:
    config = DomainStore(scim.engine).get(DOMAIN)
    return sync.sync(
        config,
        scim.engine,
        ResultStore.from_settings(),
        read_directory=lambda _advance: read_staging(scim.engine, config),
        client=komeet.client(),
        dry_run=dry_run,
    )


def drain(worker: Worker) -> list:
    """Every batch until no change is pending."""
    batches = []
    while found := worker.run_once(wait=False):
        batches += found
    return batches


def accounts(komeet) -> dict[str, bool]:
    """Komeet's accounts: userName -> active."""
    return {name: user.get("active", True) for name, user in komeet.by_user_name().items()}


def test_after_a_burst_of_pushes_a_whole_sync_plans_nothing(idp, scim, komeet):
    for n in range(10):
        idp.user(f"p{n}")
    whole_sync(scim, komeet)  # the domain's size is known from here on
    worker = Worker(scim.engine, komeet.client())
    drain(worker)  # the pushes before the whole sync: nothing left to do

    idp.user("joiner")
    idp.user("outsider", in_group=False)
    idp.replace("p1", user_name=f"renamed@{DOMAIN}")  # the same externalId: a rename
    idp.replace("p2", active=False)
    idp.members("remove", "p3")
    idp.delete("p4")
    idp.replace("p5")  # unchanged
    batches = drain(worker)

    assert all(batch.error is None for batch in batches)
    assert sum(batch.changes for batch in batches) >= 7
    now = accounts(komeet)
    assert now[f"joiner@{DOMAIN}"] and f"outsider@{DOMAIN}" not in now
    assert now[f"renamed@{DOMAIN}"] and f"p1@{DOMAIN}" not in now
    assert not now[f"p2@{DOMAIN}"] and not now[f"p3@{DOMAIN}"] and not now[f"p4@{DOMAIN}"]
    assert all(latency > 0 for batch in batches for latency in batch.latencies)
    # Each batch that wrote tells how much of its time went in awaiting Komeet's answers.
    wrote = [batch for batch in batches if batch.latencies]
    assert wrote and all(batch.komeet_requests >= 2 for batch in wrote)  # a read, a write
    assert all(0 < batch.komeet_seconds < batch.seconds for batch in wrote)

    assert whole_sync(scim, komeet, dry_run=True).planned.reconciliation.plan.actions.empty


def test_deactivations_over_the_rolling_budget_wait_for_an_approval(environment, scim, komeet, cli):
    idp = Idp(scim, max_deactivation_share=0.2)
    for n in range(10):
        idp.user(f"p{n}")
    whole_sync(scim, komeet)  # 10 active managed accounts: 2 deactivations an hour
    worker = Worker(scim.engine, komeet.client())
    drain(worker)

    for name in ("p1", "p2", "p3"):
        idp.replace(name, active=False)
        drain(worker)  # one push at a time, as a mass deprovisioning would trickle in

    assert [accounts(komeet)[f"p{n}@{DOMAIN}"] for n in (1, 2, 3)] == [False, False, True]
    plans = PlanStore(scim.engine)
    stored = [plans.get(plan_id) for plan_id in plans.list(DOMAIN)["plan_id"]]
    waiting = [plan for plan in stored if plan.waiting_for_approval]
    assert len(waiting) == 1 and waiting[0].counts == {"deactivate": 1}
    assert "3 deactivations within the last hour, 1 over the budget of 2" in (
        waiting[0].holds[0].detail
    )
    plan_id = waiting[0].plan_id
    assert cli("plans", "approve", plan_id, "--by", "Jane Admin")[0] == 0
    code, out, err = cli("apply", plan_id)
    assert "Applied" in out
    assert code == 0, err
    assert not accounts(komeet)[f"p3@{DOMAIN}"]


def test_a_disabled_domain_gets_nothing_and_its_changes_wait(idp, scim, komeet):
    idp.user("ada")
    DomainStore(scim.engine).set_enabled(DOMAIN, False)  # the endpoint refuses pushes now
    worker = Worker(scim.engine, komeet.client())

    assert worker.run_once(wait=False) == [] and accounts(komeet) == {}

    DomainStore(scim.engine).set_enabled(DOMAIN, True)
    assert [batch.error for batch in drain(worker)] == [None]
    assert accounts(komeet) == {f"ada@{DOMAIN}": True}


def test_a_quarantined_domain_gets_no_write_and_its_changes_wait_for_its_release(idp, scim, komeet):
    DomainStore(scim.engine).quarantine(DOMAIN, "12 of 20 actions failed (60%)")
    idp.user("ada")  # the endpoint still takes pushes
    with HttpProxy(komeet.url) as proxy:
        worker = Worker(scim.engine, komeet.client(proxy.url))

        assert worker.run_once(wait=False) == [] and proxy.stats().received == 0

        release(scim.engine, DOMAIN)
        assert [batch.error for batch in drain(worker)] == [None]
    assert accounts(komeet) == {f"ada@{DOMAIN}": True}


def test_unchanged_people_pushed_again_send_nothing(idp, scim, komeet):
    for n in range(5):
        idp.user(f"p{n}")
    client = komeet.client()
    worker = Worker(scim.engine, client)
    drain(worker)
    sent = client.requests_sent

    for n in range(5):  # an IdP re-sending everything
        idp.replace(f"p{n}")
    batches = drain(worker)

    assert [batch.sync.sent for batch in batches] == [None] * len(batches)
    reads = client.requests_sent - sent
    assert reads <= 3 * len(batches)  # key reads of Komeet, no write


def test_a_domain_s_writes_are_paced_to_its_rate(idp, scim, komeet):
    now = [1_000.0]
    worker = Worker(
        scim.engine, komeet.client(), Options(batch_wait=0, rate=2), clock=lambda: now[0]
    )
    for n in range(4):
        idp.user(f"p{n}")
    first = worker.run_once()
    assert first[0].sync.sent is not None  # 4 creates sent: 2 s of this domain's pace
    idp.user("late")

    assert worker.run_once() == []  # too soon
    now[0] += 2.5
    assert [batch.changes for batch in worker.run_once()] == [2]  # the user, its membership


def test_the_worker_records_when_each_change_was_accepted(idp, scim):
    from komeet_sync.sources.scim.changes import read_changes

    before = datetime.now(UTC)
    idp.user("ada")
    changes = read_changes(scim.engine, DOMAIN, 0, 100)
    assert changes and all(before <= change.accepted_at <= datetime.now(UTC) for change in changes)
