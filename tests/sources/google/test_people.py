"""Some people of a Google Workspace, read by key: the same rows as the whole extraction
restricted to them, without listing the directory (the real client libraries against the
Directory API emulator over HTTP on loopback)."""

from __future__ import annotations

import random

import pandas as pd
import pytest

from komeet_sync.emulators.directory import Directory
from komeet_sync.emulators.directory_generator import generate_directory
from komeet_sync.engine.reconcile import node_keys
from komeet_sync.model.domain_config import DomainConfig
from komeet_sync.model.frames import KOMEET_ACCOUNTS, empty_frame
from komeet_sync.model.snapshots import DirectorySnapshot, KomeetAccounts
from komeet_sync.sources.google.people import GooglePeople
from tests.support.google_workspace import member, user

GONE = "gone@acme.com"
CUSTOMER_GROUP = "everyone@acme.com"


def generated_directory() -> tuple[Directory, tuple[str, ...], str]:
    """A generated directory (nested groups, aliases, suspended and archived users, people
    in no group, guests), plus what the generator does not make: a person of the alias
    domain nested in a selected group, an employee id two people share, and a selected
    group whose member is the whole account (CUSTOMER)."""
    generated = generate_directory(300, domain="acme.com", groups=2, group_size=80, seed=17)
    users = generated.directory.users
    nora = user(9001, "nora.dubois@acme.io", externalIds=[{"type": "organization", "value": "E7"}])
    twin = user(9002, "ines.petit@acme.com", externalIds=[{"type": "organization", "value": "E7"}])
    login = user(9003, "sam.roux@acme.com", externalIds=[{"type": "login", "value": "E7"}])
    groups = list(generated.directory.groups)
    level1 = next(g for g in groups if g["email"] == "team000-level1@acme.com")
    level1["members"] = [*level1["members"], member(nora)]
    groups.append(
        {
            "id": "everyone",
            "email": CUSTOMER_GROUP,
            "members": [{"id": "C01abc234", "type": "CUSTOMER"}, member(twin)],
        }
    )
    directory = Directory(users=[*users, nora, twin, login], groups=groups)
    return directory, (*generated.selected, CUSTOMER_GROUP), generated.admin


@pytest.fixture(scope="module")
def google(tmp_path_factory, service_account_info):
    from tests.support.google_workspace import start_workspace

    directory, selected, admin = generated_directory()
    found = start_workspace(directory, tmp_path_factory.mktemp("google"), service_account_info)
    yield found, directory, selected, admin
    found.emulator.stop()


@pytest.fixture(scope="module")
def config(google) -> DomainConfig:
    _, _, selected, admin = google
    return DomainConfig.create(
        "acme.com",
        "google",
        groups=[*selected, GONE],
        alias_domains=["acme.io"],
        admin_email=admin,
    )


@pytest.fixture(scope="module")
def whole(google, config) -> DirectorySnapshot:
    workspace, _, _, admin = google
    return workspace.reader(admin).extract(config.domains, config.groups)


@pytest.fixture(scope="module")
def keys(whole, config) -> pd.DataFrame:
    found = node_keys(whole, KomeetAccounts.of(empty_frame(KOMEET_ACCOUNTS)), config)
    return found[found["person"]]


def people(google, config) -> GooglePeople:
    workspace, _, _, admin = google
    return GooglePeople(workspace.reader(admin), config)


def assert_same(ours: DirectorySnapshot, theirs: DirectorySnapshot) -> None:
    for name in ("users", "aliases", "members", "groups", "read_errors"):
        mine, expected = getattr(ours, name), getattr(theirs, name)
        pd.testing.assert_frame_equal(
            mine.sort_values(list(mine.columns)).reset_index(drop=True),
            expected.sort_values(list(expected.columns)).reset_index(drop=True),
            obj=name,
        )


def holder_ids(keys: pd.DataFrame, wanted: set[tuple[str, str]]) -> set[str]:
    held = [(n, v) in wanted for n, v in zip(keys["namespace"], keys["value"], strict=True)]
    return set(keys.loc[held, "id"])


def test_random_people_read_by_key_are_the_whole_read_restricted_to_them(
    google, config, whole, keys
):
    rng = random.Random(5)
    ids = sorted(whole.users["account_id"])
    suspended = list(whole.users.loc[~whole.users["active"], "account_id"])
    aliased = sorted(set(whole.aliases["account_id"]))
    grouped = set(whole.members["member_id"].dropna())
    outside = [i for i in ids if i not in grouped]
    chosen = {
        *rng.sample(ids, 8),
        *rng.sample(suspended, 2),
        *rng.sample(aliased, 3),
        *rng.sample(outside, 2),
        "9001",  # nested across domains
        "9002",  # only in the CUSTOMER group
    }
    side = people(google, config)
    for person in sorted(chosen):
        mine = keys[keys["id"] == person]
        namespace, value = mine.iloc[rng.randrange(len(mine))][["namespace", "value"]]
        wanted = {(namespace, value)}
        ours = side.holding(wanted)
        assert_same(ours, whole.restricted_to(holder_ids(keys, wanted)))
        assert person in set(ours.users["account_id"])
        assert_same(side.by_ids([person]), whole.restricted_to([person]))


def test_many_keys_at_once_and_unknown_ones(google, config, whole, keys):
    rng = random.Random(8)
    drawn = keys.sample(25, random_state=3)
    wanted = set(zip(drawn["namespace"], drawn["value"], strict=True)) | {
        ("email", "nobody@acme.com"),
        ("email", "someone@globex.com"),
        ("id", "x1"),
        ("id", "ann@acme.com"),  # an externalId that looks like an address holds no id key
        ("employee id", "E404"),
    }
    side = people(google, config)

    assert_same(side.holding(wanted), whole.restricted_to(holder_ids(keys, wanted)))
    nobody = side.holding({("email", "nobody@acme.com"), ("id", str(rng.random()))})
    assert nobody.users.empty
    assert_same(nobody, whole.restricted_to([]))  # the CUSTOMER row and the groups stay
    assert_same(side.by_ids(["404", "x1"]), whole.restricted_to([]))


def test_employee_id_holders_are_counted_over_the_domain(google, config, keys):
    side = people(google, config)
    wanted = ["E7", "E404", *keys.loc[keys["namespace"] == "employee id", "value"][:3]]

    held = keys[(keys["namespace"] == "employee id") & keys["value"].isin(wanted)]
    assert side.holders(wanted) == held.groupby("value")["id"].nunique().to_dict()
    assert side.holders(["E7"]) == {"E7": 2}  # a login id of E7 is no employee id


def test_groups_listed_says_which_groups_exist_and_list_anyone(google, config, whole):
    listed = people(google, config).groups_listed()

    counts = whole.members.groupby("group").size()
    found = set(whole.groups.loc[whole.groups["found"], "group"])
    assert listed == {group: min(int(counts.get(group, 0)), 1) for group in found}
    assert GONE not in listed


def test_an_empty_group_is_listed_empty_and_a_group_of_an_empty_group_is_not(workspace):
    admin = user(1, "admin@acme.com", isAdmin=True)
    nested = {"id": "g3", "email": "nested@acme.com", "type": "GROUP"}
    directory = Directory(
        users=[admin],
        groups=[
            {"id": "g1", "email": "empty@acme.com", "members": []},
            {"id": "g2", "email": "parent@acme.com", "members": [nested]},
            {"id": "g3", "email": "nested@acme.com", "members": []},
        ],
    )
    google = workspace(directory)
    config = DomainConfig.create(
        "acme.com",
        "google",
        groups=["empty@acme.com", "parent@acme.com"],
        admin_email="admin@acme.com",
    )
    whole = google.reader("admin@acme.com").extract(config.domains, config.groups)

    listed = GooglePeople(google.reader("admin@acme.com"), config).groups_listed()

    assert listed == {"empty@acme.com": 0, "parent@acme.com": 1}
    assert whole.members.groupby("group").size().to_dict() == {"parent@acme.com": 1}


def test_one_person_costs_a_few_requests_and_no_listing(google, config, whole):
    workspace, directory, _, _ = google
    person = next(u for u in directory.users if u.get("aliases") and not u.get("isAdmin"))
    workspace.emulator.reset()

    found = people(google, config).holding({("email", person["aliases"][0])})

    assert_same(found, whole.restricted_to([person["id"]]))
    calls = workspace.emulator.calls
    assert not [c for c in calls if c.method == "users.list" and not c.params.get("query")]
    assert not [c for c in calls if c.method == "members.list" and c.params["maxResults"] != "1"]
    groups = len(config.groups)
    # users.get; each selected group: one member of its listing, its CUSTOMER member (not for
    # the missing one), whether the person is in it
    assert [c.method for c in calls].count("users.get") == 1
    assert len(calls) == 1 + groups + (groups - 1) * 2
    assert workspace.emulator.requests["token"] == 1


def test_membership_paths_walk_down_the_nested_groups(google, config, whole):
    _, directory, _, _ = google
    side = people(google, config)
    team = directory.group("team000@acme.com")
    by_depth: dict[int, str] = {}
    for user_id in whole.members.loc[whole.members["group"] == "team000@acme.com", "member_id"]:
        chain = directory.chain(team, str(user_id))
        if directory.user_by_key(str(user_id)) is not None and chain is not None:
            by_depth.setdefault(len(chain), str(user_id))

    assert sorted(by_depth) == [1, 2, 3]
    assert side.membership_paths(by_depth[1])["team000@acme.com"] == []
    assert side.membership_paths(by_depth[3])["team000@acme.com"] == [
        "team000-level1@acme.com",
        "team000-level2@acme.com",
    ]
    # A person of the alias domain, nested: Google's hasMember refuses, the listing answers.
    # The CUSTOMER member lists everyone directly.
    assert side.membership_paths("9001") == {
        "team000@acme.com": ["team000-level1@acme.com"],
        CUSTOMER_GROUP: [],
    }
    assert side.membership_paths("404") == {}


def test_a_decision_gathered_from_google_is_the_full_syncs(google, config, whole):
    """``gather`` reads whole components through GooglePeople, and the engine decides for
    them what it decides reading everyone (ARCHITECTURE.md, "Full and incremental syncs")."""
    from komeet_sync.engine.reconcile import DomainFacts, reconcile
    from komeet_sync.runs.incremental import SnapshotAccounts, gather
    from tests.runs.test_incremental import COMPARED, identity

    users = whole.users.sample(80, random_state=4).reset_index(drop=True)
    aliases = whole.aliases.drop_duplicates("account_id").set_index("account_id")["alias"]
    rows = []
    for i, person in users.iterrows():
        how = i % 5
        alias = aliases.get(person["account_id"])
        rows.append(
            {
                "komeet_id": f"k{i}",
                # renamed: the account still has the old address, a Google alias
                "user_name": alias if how == 1 and alias else person["email"],
                "external_id": person["account_id"] if how in (2, 3) else None,
                "given_name": person["given_name"] if how != 3 else "Someone",
                "family_name": person["family_name"],
                "active": how != 4,
                "employee_id": person["employee_id"] if how == 0 else None,
            }
        )
    # a dispute: another person's address on an account linked to this one
    other, linked = users.loc[1, "email"], users.loc[2, "account_id"]
    rows.append({"komeet_id": "kd", "user_name": other, "external_id": linked, "active": True})
    rows.append(
        {"komeet_id": "kl", "user_name": "left@acme.com", "external_id": "7", "active": True}
    )
    accounts = KomeetAccounts.of(pd.DataFrame(rows, columns=list(KOMEET_ACCOUNTS)))
    full = reconcile(whole, accounts, config)
    side = people(google, config)

    for changed in (
        ["9001"],  # nested across domains
        ["9002"],  # in the CUSTOMER group
        ["9003"],  # in no group: in scope through the CUSTOMER member only
        list(users["account_id"][:3]),
        [users.loc[2, "account_id"]],
    ):
        found = gather(config, side, SnapshotAccounts(accounts, config), side.by_ids(changed))
        facts = DomainFacts(side.groups_listed(), found.common_employee_ids)
        part = reconcile(found.snapshot, found.komeet, config, facts=facts)

        assert set(changed) <= set(part.rows["account_id"].dropna())
        theirs = full.rows.assign(identity=identity(full.rows)).set_index("identity")
        ours = part.rows.assign(identity=identity(part.rows)).set_index("identity")
        pd.testing.assert_frame_equal(
            ours[COMPARED].sort_index(),
            theirs.loc[ours.index, COMPARED].sort_index(),
            check_dtype=False,
        )
    assert "disputed" in set(full.rows["situation"])
