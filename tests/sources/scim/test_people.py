"""Staged people read by key answer what reading the whole staging and keeping those people
answers (``read_staging(...).restricted_to(ids)``), and the key index the endpoint keeps
holds exactly the keys matching follows (``engine.reconcile.node_keys``): over staging
states pushed through the storage, writes, renames and deletions included (hypothesis), on
SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import os

import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from scim2_models import UniquenessException
from sqlalchemy import delete, select

from komeet_sync.engine.reconcile import node_keys
from komeet_sync.model.domain_config import DomainConfig
from komeet_sync.model.frames import KOMEET_ACCOUNTS, empty_frame
from komeet_sync.model.snapshots import DirectorySnapshot, KomeetAccounts
from komeet_sync.sources.scim.endpoint import staging_provider
from komeet_sync.sources.scim.people import StagedPeople
from komeet_sync.sources.scim.staging import read_staging
from komeet_sync.sources.scim.storage import StagingStorage
from komeet_sync.store.database import open_database
from komeet_sync.store.domains import DomainStore
from komeet_sync.store.tables import ScimPersonKeyRow, ScimResourceRow
from tests.support.migrations import downgrade

DOMAIN = "acme.com"
# "all" and "ALL  " fold to one name; "Gone" is never staged.
CONFIG = DomainConfig.create(DOMAIN, "scim", groups=["all", "Team", "Gone"], require_admin=False)
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
NO_ACCOUNTS = KomeetAccounts.of(empty_frame(KOMEET_ACCOUNTS))
EXAMPLES = int(os.environ.get("HYPOTHESIS_EXAMPLES", "12"))

valid_address = st.builds(
    lambda local, upper, domain: f"{local.upper() if upper else local}@{domain}",
    st.sampled_from(["ann", "bob", "cy"]),
    st.booleans(),
    st.sampled_from(["acme.com", "ACME.com", "acme.io"]),
)
user_strategy = st.fixed_dictionaries(
    {
        "userName": st.one_of(
            valid_address, valid_address, st.sampled_from(["nope", " x@acme.com"])
        ),
        "externalId": st.sampled_from([None, None, "", " ", "x1", " x2 "]),
        "emails": st.lists(valid_address, max_size=2),
        "employeeNumber": st.sampled_from([None, None, " ", "E1", "E2 "]),
        "active": st.booleans(),
        "givenName": st.sampled_from(["Ann", ""]),
    }
)
group_names = st.sampled_from(["All", "ALL  ", "Team", "Other"])
# Members are drawn as positions among the users (u) and the groups (g) created.
member = st.tuples(st.sampled_from("uug"), st.integers(0, 7))
operation = st.one_of(
    st.tuples(st.just("replace user"), st.integers(0, 7), user_strategy),
    st.tuples(st.just("delete user"), st.integers(0, 7)),
    st.tuples(st.just("rename group"), st.integers(0, 3), group_names),
    st.tuples(st.just("set members"), st.integers(0, 3), st.lists(member, max_size=4)),
    st.tuples(st.just("delete group"), st.integers(0, 3)),
)
state_strategy = st.fixed_dictionaries(
    {
        "users": st.lists(user_strategy, max_size=7),
        "groups": st.lists(
            st.tuples(group_names, st.lists(member, max_size=4)), min_size=1, max_size=3
        ),
        "operations": st.lists(operation, max_size=5),
    }
)


def user_document(drawn: dict) -> dict:
    document = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "userName": drawn["userName"],
        "name": {"givenName": drawn["givenName"], "familyName": "Xu"},
        "emails": [{"value": email} for email in drawn["emails"]],
        "active": drawn["active"],
    }
    if drawn["externalId"] is not None:
        document["externalId"] = drawn["externalId"]
    if drawn["employeeNumber"] is not None:
        document[ENTERPRISE] = {"employeeNumber": drawn["employeeNumber"]}
    return document


class Staging:
    """A SCIM domain's staging written through the storage, as the endpoint writes it."""

    def __init__(self, database_url: str) -> None:
        self.engine = open_database(database_url)
        store = DomainStore(self.engine)
        store.add(CONFIG)
        self.domain_id = store.id_of(DOMAIN)
        provider = staging_provider()
        self.storage = StagingStorage(self.engine, self.domain_id, provider)
        self.types = {str(rt.name): rt for rt in provider.resource_types}
        self.models = {name: provider.model_for(rt) for name, rt in self.types.items()}

    def clear(self) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                delete(ScimResourceRow).where(ScimResourceRow.domain_id == self.domain_id)
            )

    def create(self, kind: str, document: dict) -> str | None:
        try:
            created = self.storage.create(
                self.types[kind], self.models[kind].model_validate(document)
            )
        except UniquenessException:  # a userName drawn twice
            return None
        return created.id

    def replace(self, kind: str, resource_id: str, document: dict) -> None:
        resource = self.models[kind].model_validate({**document, "id": resource_id})
        with contextlib.suppress(UniquenessException):  # a userName drawn twice
            self.storage.update(self.types[kind], resource)

    def delete(self, kind: str, resource_id: str) -> None:
        self.storage.delete(self.types[kind], resource_id)

    def push(self, state: dict) -> None:
        """Create the drawn users and groups, then apply the drawn writes."""
        users = [i for i in (self.create("User", user_document(u)) for u in state["users"]) if i]
        groups: list[str] = []
        names: dict[str, str] = {}

        def members(drawn: list[tuple[str, int]]) -> list[dict]:
            pool = {"u": users, "g": groups}
            chosen = [pool[kind][at % len(pool[kind])] for kind, at in drawn if pool[kind]]
            return [{"value": value} for value in dict.fromkeys(chosen)]

        def group(name: str, drawn: list) -> dict:
            return {"displayName": name, "members": members(drawn)}

        for name, drawn in state["groups"]:
            created = self.create("Group", group(name, drawn))
            if created:
                groups.append(created)
                names[created] = name
        for op, at, *rest in state["operations"]:
            if op == "replace user" and users:
                self.replace("User", users[at % len(users)], user_document(rest[0]))
            elif op == "delete user" and users:
                self.delete("User", users.pop(at % len(users)))
            elif op == "rename group" and groups:
                group_id = groups[at % len(groups)]
                current = self.storage.get(self.types["Group"], group_id)
                names[group_id] = rest[0]
                document = current.model_dump(mode="json", exclude={"id", "meta"})
                self.replace("Group", group_id, {**document, "displayName": rest[0]})
            elif op == "set members" and groups:
                group_id = groups[at % len(groups)]
                self.replace("Group", group_id, group(names[group_id], rest[0]))
            elif op == "delete group" and groups:
                group_id = groups.pop(at % len(groups))
                self.delete("Group", group_id)

    def key_index(self) -> set[tuple[str, str, str]]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(
                    ScimPersonKeyRow.resource_id, ScimPersonKeyRow.namespace, ScimPersonKeyRow.value
                ).where(ScimPersonKeyRow.domain_id == self.domain_id)
            )
            return {tuple(row) for row in rows}


@pytest.fixture
def staging(database_url):
    found = Staging(database_url)
    yield found
    found.engine.dispose()


def rows(frame: pd.DataFrame) -> list[str]:
    return sorted(map(repr, frame.to_dict("records")))


def assert_same_people(ours: DirectorySnapshot, theirs: DirectorySnapshot) -> None:
    for name in ("users", "aliases", "members", "groups", "read_errors"):
        mine, whole = getattr(ours, name), getattr(theirs, name)
        assert list(mine.columns) == list(whole.columns), name
        assert dict(mine.dtypes) == dict(whole.dtypes), name
        assert rows(mine) == rows(whole), name


def person_keys_of(snapshot: DirectorySnapshot) -> pd.DataFrame:
    keys = node_keys(snapshot, NO_ACCOUNTS, CONFIG)
    return keys[keys["person"]]


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    # Each example writes a database: shrinking a failure would take minutes.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(state=state_strategy, data=st.data())
def test_people_read_by_key_are_the_whole_staging_restricted_to_them(staging, state, data):
    staging.clear()
    staging.push(state)
    whole = read_staging(staging.engine, CONFIG)
    people = StagedPeople(staging.engine, CONFIG)
    keys = person_keys_of(whole)

    assert staging.key_index() == set(
        zip(keys["id"], keys["namespace"], keys["value"], strict=True)
    )

    staged = list(whole.users["account_id"])
    ids = data.draw(st.lists(st.sampled_from([*staged, "0" * 32]), max_size=4, unique=True))
    assert_same_people(people.by_ids(ids), whole.restricted_to(ids))

    every_key = sorted(set(zip(keys["namespace"], keys["value"], strict=True)))
    asked = data.draw(
        st.lists(st.sampled_from([*every_key, ("email", "nobody@acme.com")]), max_size=3)
    )
    holding = {
        person
        for person, namespace, value in zip(
            keys["id"], keys["namespace"], keys["value"], strict=True
        )
        if (namespace, value) in set(asked)
    }
    assert_same_people(people.holding(asked), whole.restricted_to(holding))

    employee_ids = ["E1", "E2", "E3"]
    held = keys[(keys["namespace"] == "employee id") & keys["value"].isin(employee_ids)]
    assert people.holders(employee_ids) == held.groupby("value")["id"].nunique().to_dict()

    listed = whole.members.groupby("group").size().to_dict()
    found = whole.groups.loc[whole.groups["found"], "group"]
    assert people.groups_listed() == {group: min(listed.get(group, 0), 1) for group in found}


ANN = {
    "userName": "ann@acme.com",
    "externalId": None,
    "emails": [],
    "employeeNumber": "E1",
    "active": True,
    "givenName": "Ann",
}


def test_membership_paths_name_the_nested_groups_down_to_the_person(staging):
    ann = staging.create("User", user_document(ANN))
    bob = staging.create("User", user_document({**ANN, "userName": "bob@acme.com"}))
    inner = staging.create("Group", {"displayName": "Inner", "members": [{"value": ann}]})
    middle = staging.create("Group", {"displayName": "Middle", "members": [{"value": inner}]})
    staging.create("Group", {"displayName": "Team", "members": [{"value": ann}]})
    staging.create("Group", {"displayName": "ALL", "members": [{"value": middle}]})
    people = StagedPeople(staging.engine, CONFIG)

    assert people.membership_paths(ann) == {"all": ["Middle", "Inner"], "Team": []}
    assert people.membership_paths(bob) == {}


def test_the_migration_fills_in_the_keys_of_the_users_staged_before_it(staging, database_url):
    staging.push(
        {
            "users": [
                {**drawn, "userName": f"{name}@acme.com", "emails": ["cy@acme.io"]}
                for name, drawn in zip(["ann", "bob", "cy"], [ANN] * 3, strict=True)
            ],
            "groups": [("All", [("u", 0)])],
            "operations": [("delete user", 1)],
        }
    )
    expected = staging.key_index()
    downgrade(staging.engine, "0007")
    open_database(database_url).dispose()

    keys = person_keys_of(read_staging(staging.engine, CONFIG))
    assert staging.key_index() == expected
    assert expected == set(zip(keys["id"], keys["namespace"], keys["value"], strict=True))
    assert len(expected) == 3 * 4  # each an id, an email, an alias and an employee id


def test_a_long_or_odd_external_id_is_indexed_and_found(staging):
    """An IdP's externalId is any text: one longer than the index column, or holding a
    character a database refuses in text, is indexed by its digest and found all the same."""
    odd = {"ann": "x" * 600, "bob": "a\x00b"}
    ids = {
        name: staging.create(
            "User", user_document({**ANN, "userName": f"{name}@acme.com", "externalId": value})
        )
        for name, value in odd.items()
    }
    people = StagedPeople(staging.engine, CONFIG)
    for name, value in odd.items():
        assert list(people.holding([("id", value)]).users["account_id"]) == [ids[name]]
    assert people.holders(["E1"]) == {"E1": 2}
