"""Every decision explains itself (``runs.explain``): acme.com on the Directory API emulator
(a nested group, a group that is not selected), Komeet the scim2-server stand-in, a real
sync stored and applied through the ledger; explained from live reads and from the last
stored sync, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import pandas as pd
import pytest
from sqlalchemy import Engine

from komeet_sync.analysis.investigation import why
from komeet_sync.analysis.loader import Loader
from komeet_sync.emulators.directory import Directory
from komeet_sync.model.domain_config import DomainChange, DomainConfig
from komeet_sync.runs import sync
from komeet_sync.runs.explain import Explanation, NoStoredSync, explain, sides_for
from komeet_sync.runs.incremental import SnapshotAccounts, SnapshotPeople
from komeet_sync.sources.google.reader import DirectoryReader
from komeet_sync.store.database import open_database
from komeet_sync.store.domains import DomainStore
from komeet_sync.store.results import ResultStore
from tests.support import frames
from tests.support.google_workspace import member
from tests.support.komeet_server import KomeetTenant
from tests.support.provisioning import DOMAIN, GROUP, account_for, configure, person, synced
from tests.support.world import push_directory

ADMIN = "admin@acme.com"
TEAM, OTHER = "team@acme.com", "other@acme.com"
ANN = person(1, "ann@acme.com")  # in the selected group: a joiner
BOB = person(2, "bob@acme.com")  # in no group
CY = person(3, "cy@acme.com")  # in the selected group through team@, nested in it
DAN = person(4, "dan@acme.com")  # in other@, a group that is not selected
EVE = person(5, "eve@acme.com", aliases=["eve.old@acme.com"])  # two accounts: disputed
FAY = person(6, "fay@acme.com", name={"givenName": "", "familyName": "Person"})  # invalid
GUS = person(7, "gus@acme.com", suspended=True)  # inactive


@dataclass
class Acme:
    engine: Engine
    config: DomainConfig
    reader: DirectoryReader
    komeet: KomeetTenant

    def live(self, email: str) -> Explanation:
        sides = sides_for(self.config, self.engine, reader=self.reader, client=self.komeet.client())
        return explain(
            self.config, email, sides.people, sides.accounts, self.engine, origin=sides.origin
        )

    def last(self, email: str) -> Explanation:
        sides = sides_for(self.config, self.engine, last=True, store=ResultStore.from_settings())
        return explain(
            self.config, email, sides.people, sides.accounts, self.engine, origin=sides.origin
        )

    def sync(self) -> sync.SyncRun:
        return synced(
            self.config,
            lambda: sync.read_source(self.config, self.engine, self.reader),
            self.komeet.client(),
            self.engine,
        )


def acme_directory() -> Directory:
    admin = person(0, ADMIN)
    users = [admin, ANN, BOB, CY, DAN, EVE, FAY, GUS]
    team = {"id": "team", "email": TEAM, "members": [member(CY)]}
    selected = {
        "id": "all",
        "email": GROUP,
        "members": [*(member(u) for u in (admin, ANN, EVE, FAY, GUS)), member(team, "GROUP")],
    }
    other = {"id": "other", "email": OTHER, "members": [member(DAN)]}
    return Directory([{**admin, "isAdmin": True}, *users[1:]], [selected, team, other])


@pytest.fixture
def acme(komeet_env, workspace, komeet) -> Acme:
    """acme.com served by the emulator, configured; Komeet holds Eve's two accounts and a
    shared mailbox nobody in the directory has."""
    engine = open_database(komeet_env)
    config = configure(engine)
    komeet.add("eve@acme.com", name={"givenName": "Eve", "familyName": "Person"})
    komeet.add("eve.old@acme.com", name={"givenName": "Eve", "familyName": "Old"})
    komeet.add("shared@acme.com", name={"givenName": "Shared", "familyName": "Mailbox"})
    yield Acme(engine, config, workspace(acme_directory()).reader(ADMIN), komeet)
    engine.dispose()


def test_a_joiner_then_the_create_the_ledger_recorded(acme):
    before = acme.live("ANN@acme.com")

    assert (before.situation, before.action) == ("joiner", "create")
    assert before.subject == "google user g1" and before.valid and before.active
    assert before.groups == {GROUP: []}  # listed directly
    assert before.matches == [] and before.ledger == [] and before.holds == []
    assert before.records[0]["email"] == "ann@acme.com"
    assert "Decided from live reads of Google Workspace and Komeet." in before.reasons
    assert "Action: create." in before.reasons
    assert "No Komeet account has this person's id, email, aliases or employee id." in (
        before.reasons
    )
    with pytest.raises(NoStoredSync, match=r"komeet-sync sync acme\.com"):
        acme.last("ann@acme.com")

    run = acme.sync()
    assert run.applied is not None and run.applied.result is not None

    after = acme.live("ann@acme.com")
    assert (after.situation, after.action) == ("unchanged", None)
    [account] = after.matches
    assert account["rule"] == "stable_id" and account["external_id"] == "g1"
    assert "externalId g1 is the person's id" in account["shared"]
    [created] = after.ledger
    assert (created["action"], created["status"], created["plan_id"]) == (
        "create",
        "applied",
        run.planned.plan_id,
    )
    assert created["komeet_id"] == account["komeet_id"]
    assert any(
        sentence.startswith("Ledger, ") and "create ann@acme.com applied" in sentence
        for sentence in after.reasons
    )
    assert "Action: none." in after.reasons

    stored = acme.last("ann@acme.com")  # what the sync read, before it applied
    assert (stored.situation, stored.action) == ("joiner", "create")
    assert stored.origin.startswith(f"the last stored sync, {run.folder.sync_id}")
    assert stored.ledger == after.ledger
    # The investigation notebook asks the same function of the same stored sync.
    assert why(Loader(), DOMAIN, "ann@acme.com") == stored


def test_people_in_no_selected_group_directly_or_through_a_group_that_is_not_nested(acme):
    bob, dan = acme.live("bob@acme.com"), acme.live("dan@acme.com")

    for explained in (bob, dan):
        assert (explained.situation, explained.action) == ("out_of_scope", None)
        assert explained.groups == {}
        assert f"In none of the selected groups ({GROUP})." in explained.reasons
        assert explained.valid is None and explained.active is True

    cy = acme.live("cy@acme.com")
    assert (cy.situation, cy.action) == ("joiner", "create")
    assert cy.groups == {GROUP: ["team@acme.com"]}
    assert any("member of all@acme.com" in s.lower() and "team@acme.com" in s for s in cy.reasons)


def test_a_disputed_person_names_every_account_and_claimant(acme):
    eve = acme.live("eve.old@acme.com")  # found by her alias

    assert (eve.subject, eve.situation, eve.action) == ("google user g5", "disputed", None)
    assert {m["user_name"]: m["shared"] for m in eve.matches} == {
        "eve@acme.com": ["eve@acme.com is the person's email"],
        "eve.old@acme.com": ["eve.old@acme.com is an alias of the person"],
    }
    assert all(m["rule"] is None for m in eve.matches)
    assert eve.dispute is not None and eve.dispute["cluster_id"].startswith("dup_")
    assert sorted(eve.dispute["claimants"]) == [
        f"komeet account {m['komeet_id']} ({m['user_name']})"
        for m in sorted(eve.matches, key=lambda m: m["komeet_id"])
    ]
    assert "share email eve.old@acme.com" in str(eve.reason)


def test_invalid_inactive_unmanaged_and_unknown(acme):
    fay = acme.live("fay@acme.com")
    assert (fay.situation, fay.valid, fay.action) == ("invalid", False, None)
    assert "Not valid: missing_name (givenName and familyName are both required)." in fay.reasons

    gus = acme.live("gus@acme.com")
    assert (gus.situation, gus.active, gus.action) == ("inactive", False, None)
    assert any(s.startswith("Not active in Google Workspace: suspended") for s in gus.reasons)

    shared = acme.live("shared@acme.com")
    assert (shared.situation, shared.action) == ("unmanaged", None)
    assert shared.subject.startswith("komeet account ") and shared.records == []
    assert shared.account is not None and shared.account["managed"] is False
    assert "No directory user has its externalId, userName or email." in shared.reasons

    nobody = acme.live("nobody@acme.com")
    assert not nobody.found and (nobody.situation, nobody.action) == (None, None)
    assert "and no Komeet account of acme.com (userName in acme.com)" in nobody.reasons[-1]
    garbled = acme.live("not an address")
    assert not garbled.found
    assert "'not an address' is not a valid email address" in garbled.reasons[-1]


def test_a_disabled_domain_and_a_held_plan_hold_the_action(acme):
    for number in (50, 51):  # two leavers, over a budget of one deactivation
        acme.komeet.add(**account_for(person(number)))
    acme.config, _ = DomainStore(acme.engine).update(DOMAIN, DomainChange(max_deactivations=1))
    run = acme.sync()
    plan_id = run.planned.plan_id
    assert run.applied is not None and run.applied.stopped is not None  # held

    ann, leaver = acme.live("ann@acme.com"), acme.live("user00050@acme.com")

    assert ann.action == "create" and ann.ledger == []
    assert leaver.subject.startswith("komeet account ")
    assert (leaver.situation, leaver.action) == ("leaver", "deactivate")
    for explained, action in ((ann, "create"), (leaver, "deactivate")):
        [hold] = explained.holds
        assert hold.startswith(f"{plan_id} (held (waiting for approval)) has its {action}")
        assert f"komeet-sync plans approve {plan_id}" in hold

    acme.config = DomainStore(acme.engine).set_enabled(DOMAIN, False)
    assert any("the domain is disabled" in hold for hold in acme.live("ann@acme.com").holds)


def test_the_as_dict_keys_and_json_values(acme):
    explained = json.loads(json.dumps(acme.live("ann@acme.com").as_dict()))  # JSON values only

    assert {"situation", "action", "groups", "matches", "reasons"} <= set(explained)
    assert explained["reasons"] and all(isinstance(s, str) for s in explained["reasons"])


def test_a_snapshot_knows_a_direct_member_and_says_when_it_does_not_know_the_path():
    snapshot = frames.directory(frames.person("g1", "ann@acme.com"))
    config = frames.config()
    assert SnapshotPeople(snapshot, config).membership_paths("g1") == {GROUP: []}
    assert SnapshotPeople(snapshot, config).membership_paths("g9") == {}

    team = pd.DataFrame([[GROUP, "team", TEAM, "GROUP"]], columns=list(snapshot.members.columns))
    nesting = dataclasses.replace(  # the group lists a nested group: the path is not known
        snapshot, members=pd.concat([snapshot.members, team], ignore_index=True)
    )
    assert SnapshotPeople(nesting, config).membership_paths("g1") == {GROUP: None}


@pytest.fixture
def engine(sqlite_url, tmp_path):
    engine = open_database(sqlite_url)
    yield engine
    engine.dispose()


def test_an_account_matched_by_alias_or_by_externalid_is_explained_by_its_person(engine):
    """Ann was renamed: her old address is an alias, and the account still has it. Bob was
    renamed too, and his account (found by its old userName) has his id as externalId."""
    snapshot = frames.directory(
        frames.person("g1", "ann@acme.com", aliases=("ann.old@acme.com",)),
        frames.person("g2", "bob@acme.com"),
    )
    accounts = frames.komeet(
        frames.account("k1", "ann.old@acme.com"),
        frames.account("k2", "bob.old@acme.com", external_id="g2"),
    )
    config = frames.config()
    people, komeet = SnapshotPeople(snapshot, config), SnapshotAccounts(accounts, config)

    ann = explain(config, "ann.old@acme.com", people, komeet, engine)
    bob = explain(config, "bob.old@acme.com", people, komeet, engine)

    assert (ann.subject, ann.situation, ann.action) == ("google user g1", "changed", "update")
    [account] = ann.matches
    assert (account["komeet_id"], account["rule"]) == ("k1", "alias")
    assert account["shared"] == ["ann.old@acme.com is an alias of the person"]
    assert (bob.subject, bob.situation, bob.action) == ("google user g2", "changed", "update")
    assert bob.reasons[:2] == [
        "No directory user has bob.old@acme.com; Komeet account k2 (bob.old@acme.com) does: "
        "active, externalId g2.",
        "It is matched to google user g2 (bob@acme.com) by externalId (rule 1): the decision "
        "is that person's.",
    ]
    assert [m["rule"] for m in bob.matches] == ["stable_id"]
    assert any("userName bob.old@acme.com -> bob@acme.com" in s for s in bob.reasons)


def test_a_scim_domain_from_its_staging_tables(komeet_env, scim, komeet):
    """globex.com's IdP pushed three people in "Komeet Users"; a staged snapshot lists
    groups expanded, so it never says through which nested group."""
    push_directory(scim, "globex.com")
    config = DomainStore(scim.engine).get("globex.com")
    sides = sides_for(config, scim.engine, client=komeet.client())

    anna = explain(
        config, "anna.schmidt@globex.com", sides.people, sides.accounts, scim.engine,
        origin=sides.origin,
    )  # fmt: skip

    assert (anna.situation, anna.action) == ("joiner", "create")
    assert anna.records[0]["stable_id"] == "entra-anna.schmidt"
    assert anna.groups == {"Komeet Users": []}
    assert anna.reasons[0] == "Decided from live reads of the SCIM staging tables and Komeet."
