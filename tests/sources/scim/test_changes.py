"""Every write the SCIM endpoint accepts records the staged users it touched, with their keys
before the write, in commit order; consumers keep a cursor over them (ARCHITECTURE.md, "Full
and incremental syncs"). Pushed over HTTP to the endpoint, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from komeet_sync.model.domain_config import DomainConfig
from komeet_sync.sources.scim.changes import Change, advance, cursor, pending, read_changes
from komeet_sync.sources.scim.endpoint import staging_provider
from komeet_sync.sources.scim.people import StagedPeople
from komeet_sync.sources.scim.storage import StagingStorage
from komeet_sync.store.database import open_database
from komeet_sync.store.domains import DomainStore
from tests.support.scim_server import GROUP, PATCH_OP, USER

DOMAIN = "acme.com"


def user(user_name: str, **extra) -> dict:
    return {
        "schemas": [USER],
        "userName": user_name,
        "name": {"givenName": "Ann", "familyName": "Xu"},
        "active": True,
        **extra,
    }


def group(name: str, *members: str) -> dict:
    return {"schemas": [GROUP], "displayName": name, "members": [{"value": m} for m in members]}


@pytest.fixture
def client(scim):
    scim.add_domain(DOMAIN)
    with scim.client(DOMAIN) as found:
        yield found


def created(client, path: str, document: dict) -> str:
    answer = client.post(path, json=document)
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def new_changes(engine, after: int) -> list[Change]:
    return read_changes(engine, DOMAIN, after=after, limit=1000)


def touched(found: list[Change]) -> list[str]:
    return sorted(change.resource_id for change in found)


def test_a_user_written_is_recorded_with_its_keys_before_each_write(scim, client):
    before = datetime.now(UTC)
    ann = created(client, "/Users", user("ann@acme.com", externalId="x1"))
    [made] = new_changes(scim.engine, 0)
    assert (made.domain, made.resource_id, made.keys) == (DOMAIN, ann, ())
    assert before <= made.accepted_at <= datetime.now(UTC)

    # A rename: the change holds the former address, so its old component is decided again.
    renamed = user("ann.xu@acme.com", externalId="x1", emails=[{"value": "ann@acme.com"}])
    assert client.put(f"/Users/{ann}", json=renamed).status_code == 200
    [put] = new_changes(scim.engine, made.seq)
    assert put.resource_id == ann
    assert put.keys == (("email", "ann@acme.com"), ("id", "x1"))

    patch = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "userName", "value": "xu@acme.com"}],
    }
    assert client.patch(f"/Users/{ann}", json=patch).status_code in (200, 204)
    [patched] = new_changes(scim.engine, put.seq)
    assert patched.keys == (("email", "ann.xu@acme.com"), ("email", "ann@acme.com"), ("id", "x1"))

    assert client.delete(f"/Users/{ann}").status_code == 204
    [deleted] = new_changes(scim.engine, patched.seq)
    assert deleted.resource_id == ann
    assert deleted.keys == (("email", "ann@acme.com"), ("email", "xu@acme.com"), ("id", "x1"))
    assert made.seq < put.seq < patched.seq < deleted.seq


def test_a_refused_write_records_nothing(scim, client):
    created(client, "/Users", user("ann@acme.com"))
    assert client.post("/Users", json=user("ANN@acme.com")).status_code == 409
    assert len(new_changes(scim.engine, 0)) == 1


def test_a_group_written_records_the_users_who_joined_or_left_it(scim, client):
    ann, bob, cy, dee = (
        created(client, "/Users", user(f"{name}@acme.com")) for name in ("ann", "bob", "cy", "dee")
    )
    team = created(client, "/Groups", group("Team", cy))
    mark = new_changes(scim.engine, 0)[-1].seq
    assert touched(new_changes(scim.engine, mark - 1)) == [cy]

    # Created with a user and a nested group: the user, and the users under the group.
    everyone = created(client, "/Groups", group("Everyone", ann, team))
    found = new_changes(scim.engine, mark)
    assert touched(found) == sorted([ann, cy])
    assert len({change.seq for change in found}) == 2
    mark = found[-1].seq

    # bob joins, ann leaves: cy, who stays, is not touched.
    patch = {
        "schemas": [PATCH_OP],
        "Operations": [
            {"op": "add", "path": "members", "value": [{"value": bob}]},
            {"op": "remove", "path": f'members[value eq "{ann}"]'},
        ],
    }
    assert client.patch(f"/Groups/{everyone}", json=patch).status_code in (200, 204)
    found = new_changes(scim.engine, mark)
    assert touched(found) == sorted([ann, bob])
    emails = {ann: "ann@acme.com", bob: "bob@acme.com"}
    assert [change.keys for change in found] == [
        (("email", emails[change.resource_id]), ("id", change.resource_id)) for change in found
    ]
    mark = found[-1].seq

    # A user joins the nested group: the one user.
    assert client.put(f"/Groups/{team}", json=group("Team", cy, dee)).status_code == 200
    found = new_changes(scim.engine, mark)
    assert touched(found) == [dee]
    mark = found[-1].seq

    # Renamed, the group selects differently: everyone under it, before and after.
    assert client.put(f"/Groups/{everyone}", json=group("All", bob, team)).status_code == 200
    found = new_changes(scim.engine, mark)
    assert touched(found) == sorted([bob, cy, dee])
    mark = found[-1].seq

    assert client.delete(f"/Groups/{everyone}").status_code == 204
    assert touched(new_changes(scim.engine, mark)) == sorted([bob, cy, dee])


def test_a_deleted_user_keeps_its_keys(scim, client):
    ann = created(client, "/Users", user("ann@acme.com", externalId="x1"))
    assert client.delete(f"/Users/{ann}").status_code == 204

    people = StagedPeople(scim.engine, DomainStore(scim.engine).get(DOMAIN))
    found = people.holding([("email", "ann@acme.com")])
    assert list(found.users["account_id"]) == [ann]
    assert not found.users["active"].any()


def test_a_cursor_moves_forward_only_and_pending_counts_what_is_after_it(scim, client):
    scim.add_domain("globex.com")
    assert cursor(scim.engine, DOMAIN) == 0
    assert pending(scim.engine) == {}
    for name in ("ann", "bob", "cy"):
        created(client, "/Users", user(f"{name}@acme.com"))
    first, second, third = new_changes(scim.engine, 0)

    waiting = pending(scim.engine)
    assert waiting == {DOMAIN: (3, first.accepted_at)}
    assert read_changes(scim.engine, DOMAIN, after=first.seq, limit=1) == [second]

    advance(scim.engine, DOMAIN, "worker", second.seq)
    assert cursor(scim.engine, DOMAIN) == second.seq
    assert pending(scim.engine) == {DOMAIN: (1, third.accepted_at)}
    advance(scim.engine, DOMAIN, "worker", first.seq)  # a late word: no step back
    assert cursor(scim.engine, DOMAIN) == second.seq
    assert cursor(scim.engine, DOMAIN, "audit") == 0
    assert cursor(scim.engine, "globex.com") == 0

    advance(scim.engine, DOMAIN, "worker", third.seq)
    assert pending(scim.engine) == {}
    assert pending(scim.engine, "audit") == {DOMAIN: (3, first.accepted_at)}


def test_accepted_at_is_the_storages_clock(database_url):
    engine = open_database(database_url)
    DomainStore(engine).add(DomainConfig.create(DOMAIN, "scim"))
    moment = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    provider = staging_provider()
    storage = StagingStorage(
        engine, DomainStore(engine).id_of(DOMAIN), provider, clock=lambda: moment
    )
    [user_type] = [rt for rt in provider.resource_types if rt.name == "User"]
    storage.create(user_type, provider.model_for(user_type).model_validate(user("ann@acme.com")))
    [change] = new_changes(engine, 0)
    assert change.accepted_at == moment
    engine.dispose()


def test_a_reader_never_finds_an_earlier_change_after_a_later_one(scim, client):
    """Writers commit concurrently; every read finds the earlier changes of the domain
    already there, so a cursor never skips one."""
    stop = threading.Event()
    problems: list[str] = []

    def read() -> None:
        seen = 0
        while not stop.is_set():
            found = [c.seq for c in new_changes(scim.engine, 0)]
            late = [seq for seq in found if seq <= seen and seq not in known]
            if late:
                problems.append(f"{late} appeared after {seen}")
            known.update(found)
            seen = max(found, default=seen)

    def write(thread: int) -> None:
        with scim.client(DOMAIN) as own:
            for i in range(15):
                created(own, "/Users", user(f"u{thread}.{i}@acme.com"))

    known: set[int] = set()
    reader = threading.Thread(target=read)
    reader.start()
    writers = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    stop.set()
    reader.join()
    assert problems == []
    assert len(new_changes(scim.engine, 0)) == 60
