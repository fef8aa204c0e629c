"""A PATCH that only adds and removes members of a group (what Entra ID and Okta send when
someone joins or leaves it) changes those members' rows and nothing else of the group. Its
effects must be scim2-server's own: the same answer, the same members stored, the same
people recorded as changed. Pushed over HTTP, on SQLite and PostgreSQL: each example sends
one PATCH to a group taking the shortcut, and the same PATCH to a twin group asking for
attributes back (``excludedAttributes``), which takes scim2-server's way."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from komeet_sync.sources.scim.changes import read_changes
from komeet_sync.sources.scim.endpoint import StagingService, membership_change, staging_provider
from komeet_sync.store.tables import ScimMembershipRow
from tests.support.scim_server import GROUP, PATCH_OP, USER

DOMAIN = "acme.com"
PROVIDER = staging_provider()
GROUP_TYPE = next(rt for rt in PROVIDER.resource_types if rt.name == "Group")
SERVICE = StagingService(PROVIDER)


def read_patch(operations: list[dict]):
    body = json.dumps({"schemas": [PATCH_OP], "Operations": operations}).encode()
    return SERVICE.read_patch(GROUP_TYPE, body, "application/scim+json")


def members_of(engine, group_id: str) -> set[str]:
    with engine.connect() as connection:
        return set(
            connection.scalars(
                select(ScimMembershipRow.member_id).where(ScimMembershipRow.group_id == group_id)
            )
        )


@pytest.fixture
def staged(scim):
    """Six users and a group holding the last of them (a nested group to add or remove)."""
    scim.add_domain(DOMAIN)
    with scim.client(DOMAIN) as client:
        users = []
        for number in range(6):
            answer = client.post(
                "/Users",
                json={"schemas": [USER], "userName": f"u{number}@{DOMAIN}", "active": True},
            )
            assert answer.status_code == 201, answer.text
            users.append(answer.json()["id"])
        nested = client.post(
            "/Groups", json={"schemas": [GROUP], "displayName": "Nested", "members": []}
        )
        assert nested.status_code == 201, nested.text
        yield scim, client, users, nested.json()["id"]


def operation(kind: str, member: str, display: str | None, shout: bool) -> dict:
    """One operation of the forms IdPs send; ``shout`` writes op and path capitalised."""
    op = kind.split("-")[0].capitalize() if shout else kind.split("-")[0]
    path = "Members" if shout else "members"
    entry = {"value": member} | ({"display": display} if display else {})
    if kind == "add":
        return {"op": op, "path": path, "value": [entry]}
    if kind == "add-no-path":
        return {"op": op, "value": {"members": [entry]}}
    if kind == "remove-filter":
        return {"op": op, "path": f'{path}[value eq "{member}"]'}
    return {"op": op, "path": path, "value": [{"value": member}]}  # Entra ID's removal


def adds_and_removes_one(operations: list[dict]) -> bool:
    """Whether a member is both added and removed: the order of the operations matters."""
    added, removed = set(), set()
    for o in operations:
        if o["op"].lower() == "add":
            entries = o["value"] if "path" in o else o["value"]["members"]
            added.update(entry["value"] for entry in entries)
        elif "[" in o["path"]:
            removed.add(o["path"].split('"')[1])
        else:
            removed.add(o["value"][0]["value"])
    return bool(added & removed)


def last_seq(engine) -> int:
    found = read_changes(engine, DOMAIN, after=0, limit=100_000)
    return found[-1].seq if found else 0


@settings(
    max_examples=int(__import__("os").environ.get("HYPOTHESIS_EXAMPLES", "12")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.data())
def test_a_members_patch_has_scim2_servers_effects(staged, data):
    scim, client, users, nested = staged
    candidates = [*users, nested, "0" * 32]  # the last is no resource of the domain
    initial = data.draw(st.lists(st.sampled_from([*users, nested]), unique=True, max_size=5))
    operations = data.draw(
        st.lists(
            st.builds(
                operation,
                st.sampled_from(["add", "add-no-path", "remove-filter", "remove"]),
                st.sampled_from(candidates),
                st.sampled_from([None, "Ann Xu"]),
                st.booleans(),
            ),
            min_size=1,
            max_size=3,
        )
    )
    shortcut = membership_change(PROVIDER.model_for(GROUP_TYPE), read_patch(operations))
    assert (shortcut is None) == adds_and_removes_one(operations)
    twins = []
    for suffix in ("shortcut", "scim2-server"):
        answer = client.post(
            "/Groups",
            json={
                "schemas": [GROUP],
                "displayName": f"G {suffix} {len(operations)} {data.draw(st.uuids())}",
                "members": [{"value": m} for m in initial],
            },
        )
        assert answer.status_code == 201, answer.text
        twins.append(answer.json()["id"])
    engine = scim.engine
    outcomes = []
    for group_id, query in zip(twins, ("", "?excludedAttributes=members"), strict=True):
        last = last_seq(engine)
        answer = client.patch(
            f"/Groups/{group_id}{query}", json={"schemas": [PATCH_OP], "Operations": operations}
        )
        stored = client.get(f"/Groups/{group_id}").json().get("members") or []
        changed = {c.resource_id for c in read_changes(engine, DOMAIN, after=last, limit=100)}
        outcomes.append(
            (
                answer.status_code < 300,
                answer.status_code if answer.status_code >= 300 else None,
                {m["value"] for m in stored},
                members_of(engine, group_id),
                changed,
            )
        )
    assert outcomes[0] == outcomes[1], operations


@pytest.mark.parametrize(
    "operations",
    [
        [{"op": "Add", "path": "members", "value": [{"value": "a"}, {"value": "b"}]}],
        [{"op": "add", "path": f"{GROUP}:members", "value": [{"value": "a", "display": "A"}]}],
        [{"op": "add", "value": {"Members": [{"value": "a", "type": "User"}]}}],
        [{"op": "Remove", "path": "members", "value": [{"value": "a"}]}],
        [{"op": "remove", "path": 'MEMBERS[value eq "a"]'}],
        [
            {"op": "add", "path": "members", "value": [{"value": "a"}]},
            {"op": "remove", "path": 'members[value eq "b"]'},
        ],
    ],
)
def test_the_patches_idps_send_for_joiners_and_leavers_take_the_shortcut(operations):
    assert membership_change(PROVIDER.model_for(GROUP_TYPE), read_patch(operations)) is not None


@pytest.mark.parametrize(
    "operations",
    [
        [{"op": "replace", "path": "members", "value": [{"value": "a"}]}],
        [{"op": "remove", "path": "members"}],
        [{"op": "add", "path": "members", "value": []}],
        [{"op": "add", "path": "members", "value": [{"display": "no value"}]}],
        [{"op": "add", "value": {"members": [{"value": "a"}], "displayName": "Renamed"}}],
        [{"op": "replace", "path": "displayName", "value": "Renamed"}],
        [
            {"op": "remove", "path": 'members[value eq "a"]'},
            {"op": "add", "path": "members", "value": [{"value": "a"}]},
        ],
    ],
)
def test_any_other_patch_takes_scim2_servers_way(operations):
    assert membership_change(PROVIDER.model_for(GROUP_TYPE), read_patch(operations)) is None


@pytest.mark.parametrize(
    "value",
    [
        "x" * 10_000,
        "nul\x00inside",
        "\ud800".encode("utf-8", "surrogatepass").decode("utf-8", "replace"),
        "",
        17,
        None,
        {"value": "nested"},
        ["a"],
    ],
    ids=["long", "nul", "replaced-surrogate", "empty", "number", "null", "object", "list"],
)
def test_a_hostile_member_value_changes_nothing(staged, value):
    scim, client, users, _ = staged
    created = client.post(
        "/Groups",
        json={"schemas": [GROUP], "displayName": "Hostile", "members": [{"value": users[0]}]},
    )
    group_id = created.json()["id"]
    last = last_seq(scim.engine)
    answer = client.patch(
        f"/Groups/{group_id}",
        json={
            "schemas": [PATCH_OP],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": value}]}],
        },
    )
    # An empty or null value names no member: scim2-server's way accepts it (204) and
    # nothing joins; any other is refused with a SCIM error.
    if value in ("", None):
        assert answer.status_code == 204, answer.text
    else:
        assert 400 <= answer.status_code < 500, answer.text
        assert answer.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert members_of(scim.engine, group_id) == {users[0]}
    assert read_changes(scim.engine, DOMAIN, after=last, limit=10) == []
