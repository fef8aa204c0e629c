"""`komeet-sync explain` as an admin runs it: acme.com on the Directory API emulator, Komeet
the scim2-server stand-in, both over HTTP; the answer from live reads and from the last
stored sync, in sentences and as JSON, and the exit codes."""

from __future__ import annotations

import pytest

from komeet_sync.emulators.directory import Directory
from tests.support.google_workspace import member
from tests.support.provisioning import DOMAIN, GROUP, person

ADMIN = "admin@acme.com"
ANN = person(1, "ann@acme.com")
BOB = person(2, "bob@acme.com")  # in other@acme.com, which is not selected
EVE = person(5, "eve@acme.com", aliases=["eve.old@acme.com"])


@pytest.fixture
def acme(cli, workspace, komeet_env, komeet, monkeypatch):
    """acme.com with Ann in the selected group, Bob in another group, Eve in the selected
    group with two Komeet accounts (her address, her old one)."""
    admin = person(0, ADMIN)
    directory = Directory.from_exports(
        [admin, ANN, BOB, EVE],
        {GROUP: [member(user) for user in (admin, ANN, EVE)], "other@acme.com": [member(BOB)]},
        admins=[ADMIN],
    )
    workspace(directory).env(monkeypatch)
    komeet.env(monkeypatch)
    komeet.add("eve@acme.com", name={"givenName": "Eve", "familyName": "Person"})
    komeet.add("eve.old@acme.com", name={"givenName": "Eve", "familyName": "Old"})
    code, _, err = cli(
        "domains", "add", DOMAIN, "--source", "google", "--admin-email", ADMIN, "--group", GROUP
    )
    assert code == 0, err
    return komeet


def test_a_joiner_before_and_after_the_sync_live_and_from_the_last_sync(cli, acme):
    code, out, err = cli("explain", DOMAIN, "ann@acme.com")

    assert code == 0, err
    assert out.startswith("ann@acme.com in acme.com: google user g1, joiner, create\n")
    assert "  - Decided from live reads of Google Workspace and Komeet.\n" in out
    assert "  - Valid: an address of the domain, given and family names present.\n" in out
    assert "  - Action: create.\n" in out
    code, out, err = cli("explain", DOMAIN, "ann@acme.com", "--last")
    assert code == 1 and out == ""
    assert f"no stored sync of {DOMAIN}" in err and "Traceback" not in err

    code, _, err = cli("sync", DOMAIN)
    assert code == 0, err

    code, out, err = cli("explain", DOMAIN, "ann@acme.com")
    assert code == 0, err
    assert "google user g1, unchanged, no action" in out
    assert "matched by externalId (rule 1); externalId g1 is the person's id" in out
    assert "create ann@acme.com applied (HTTP 201)" in out
    code, out, err = cli("explain", DOMAIN, "ann@acme.com", "--last")
    assert code == 0, err
    assert "google user g1, joiner, create" in out  # what the sync decided, then applied
    assert "Decided from the last stored sync, " in out
    assert "create ann@acme.com applied (HTTP 201)" in out


def test_a_person_in_no_selected_group_and_a_disputed_one(cli, acme):
    code, out, err = cli("explain", DOMAIN, "bob@acme.com")

    assert code == 0, err
    assert "google user g2, out_of_scope, no action" in out
    assert f"  - In none of the selected groups ({GROUP}).\n" in out

    code, out, err = cli("explain", DOMAIN, "eve.old@acme.com")
    assert code == 0, err
    assert "google user g5, disputed, no action" in out
    assert "(eve.old@acme.com): considered; eve.old@acme.com is an alias of the person" in out
    assert "(eve@acme.com): considered; eve@acme.com is the person's email" in out
    assert "Disputed, cluster dup_" in out and "the other claimants: komeet account " in out


def test_json_has_the_decision_its_rules_and_the_sentences(cli, acme):
    explained = cli.json("explain", DOMAIN, "eve@acme.com")

    assert {"situation", "action", "groups", "matches", "reasons"} <= set(explained)
    assert (explained["situation"], explained["action"]) == ("disputed", None)
    assert explained["groups"] == {GROUP: []}  # listed directly: the group nests no group
    assert sorted(match["user_name"] for match in explained["matches"]) == [
        "eve.old@acme.com",
        "eve@acme.com",
    ]
    assert len(explained["dispute"]["claimants"]) == 2
    assert explained["reasons"][0] == "Decided from live reads of Google Workspace and Komeet."


def test_an_unknown_address_exits_4_and_an_unknown_domain_1(cli, acme):
    code, out, err = cli("explain", DOMAIN, "nobody@acme.com")
    assert code == 4
    assert out.startswith("nobody@acme.com in acme.com: not found\n")
    assert "No user of Google Workspace has nobody@acme.com as primary email or alias" in out

    code, out, _ = cli("explain", DOMAIN, "nobody@acme.com", "--json")
    assert code == 4 and '"found": false' in out

    code, out, err = cli("explain", "globex.com", "ann@globex.com")
    assert code == 1 and "globex.com" in err and "Traceback" not in err
