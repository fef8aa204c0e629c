"""Extracting a Google Workspace: the real google-auth and google-api-python-client against
the Directory API emulator over HTTP on loopback."""

from __future__ import annotations

import math
import random

import pandas as pd
import pytest

from komeet_sync.backoff import Backoff
from komeet_sync.emulators.directory import Directory
from komeet_sync.emulators.directory_generator import NEVER, generate_directory
from komeet_sync.engine.reconcile import reconcile
from komeet_sync.komeet.accounts import accounts_from_resources
from komeet_sync.model.domain_config import DomainConfig
from komeet_sync.sources.google.credentials import SCOPES
from komeet_sync.sources.google.reader import AuthorisationRefused, ExtractionFailed
from tests.support.google_workspace import FAST, member, user

ADMIN = user(1, "admin@acme.com", isAdmin=True)


def minimum_requests(directory: Directory, domain: str, groups) -> int:
    """1 token + ceil(U/500) + one groups.get per group + sum of ceil(M/200)."""
    users = len(directory.users_of(domain))
    members = [len(directory.members(directory.group(g), derived=True)) for g in groups]
    return 1 + math.ceil(users / 500) + len(groups) + sum(math.ceil(m / 200) for m in members)


@pytest.fixture
def generated():
    return generate_directory(2_600, domain="acme.com", groups=3, group_size=450, seed=11)


def test_reads_every_page_in_the_fewest_requests(workspace, generated):
    google = workspace(generated.directory)
    reader = google.reader(generated.admin)

    extract = reader.extract([generated.domain], generated.selected)

    directory = generated.directory
    assert len(extract.users) == len(directory.users) == len(extract.users)
    assert set(extract.users["account_id"]) == {u["id"] for u in directory.users}
    per_group = extract.members.groupby("group").size().to_dict()
    for group in generated.selected:
        expected = directory.members(directory.group(group), derived=True)
        assert per_group[group] == len(expected) > 400  # three pages of 200
    minimum = minimum_requests(directory, "acme.com", generated.selected)
    assert minimum == 1 + 6 + 3 + 3 * 3
    assert extract.requests == minimum == google.emulator.requests["total"]
    assert google.emulator.requests["token"] == 1
    assert not google.waits


def test_member_lists_are_read_while_the_users_page(workspace, generated):
    google = workspace(generated.directory)
    google.emulator.latency = 0.02
    reader = google.reader(generated.admin, workers=3)

    reader.extract([generated.domain], generated.selected)

    # The users' pages and three member lists: requests overlapped, each on its own Http.
    assert google.emulator.most_in_flight >= 3


def test_the_snapshot_keeps_what_the_engine_uses(workspace):
    renamed = user(
        2,
        "lea.durand@acme.com",
        aliases=["lea.martin@acme.com"],
        nonEditableAliases=["lea.durand@acme.test-google-a.com"],
        emails=[
            {"address": "lea.durand@acme.com", "primary": True},
            {"address": "l.durand@acme.com", "type": "work"},
            {"address": "lea@home.example", "type": "home"},
        ],
        externalIds=[{"type": "organization", "value": "E042"}],
        orgUnitPath="/Sales",
        creationTime="2021-03-01T09:00:00.000Z",
        lastLoginTime="2026-11-02T08:00:00.000Z",
    )
    suspended = user(3, "max.weber@acme.com", suspended=True, lastLoginTime=NEVER)
    directory = Directory(
        users=[ADMIN, renamed, suspended],
        groups=[
            {"id": "g1", "email": "all@acme.com", "members": [member(renamed), member(suspended)]}
        ],
    )
    google = workspace(directory)

    snapshot = google.reader("admin@acme.com").extract(["acme.com"], ["all@acme.com"])

    people = snapshot.users.set_index("account_id")
    assert people.loc["2", "employee_id"] == "E042"
    assert people.loc["2", "given_name"] == "Lea"
    assert not people.loc["3", "active"]
    assert people.loc["3", "inactive_reason"] == "suspended in Google Workspace"
    assert people.loc["2", ["org_unit", "created_at", "last_login_at"]].tolist() == [
        "/Sales",
        "2021-03-01T09:00:00.000Z",
        "2026-11-02T08:00:00.000Z",
    ]
    assert pd.isna(people.loc["3", "last_login_at"])  # Google's epoch means never
    assert set(snapshot.aliases.loc[snapshot.aliases["account_id"] == "2", "alias"]) == {
        "lea.martin@acme.com",
        "lea.durand@acme.test-google-a.com",
        "l.durand@acme.com",
    }


def test_nested_groups_make_their_users_members(workspace):
    direct, nested, deeper, outsider = (
        user(2, "ana.costa@acme.com"),
        user(3, "ben.kim@acme.com"),
        user(4, "cleo.roux@acme.com"),
        user(5, "dan.petit@acme.com"),
    )
    guest = {"id": "9001", "email": "pat@partner.example", "type": "USER"}
    directory = Directory(
        users=[ADMIN, direct, nested, deeper, outsider],
        groups=[
            {
                "id": "g1",
                "email": "all@acme.com",
                "members": [member(direct), {"id": "g2", "email": "eng@acme.com", "type": "GROUP"}],
            },
            {
                "id": "g2",
                "email": "eng@acme.com",
                "members": [
                    member(nested),
                    guest,
                    {"id": "g3", "email": "infra@acme.com", "type": "GROUP"},
                ],
            },
            {"id": "g3", "email": "infra@acme.com", "members": [member(deeper)]},
        ],
    )
    google = workspace(directory)
    config = DomainConfig.create(
        "acme.com", "google", groups=["all@acme.com"], admin_email=ADMIN["primaryEmail"]
    )

    extract = google.reader("admin@acme.com").extract(config.domains, config.groups)
    result = reconcile(extract, accounts_from_resources([]), config)

    joiners = set(result.reports["joiners"]["email"])
    assert joiners == {"ana.costa@acme.com", "ben.kim@acme.com", "cleo.roux@acme.com"}
    assert set(result.reports["out_of_scope"]["email"]) == {"admin@acme.com", "dan.petit@acme.com"}
    errors = result.reports["errors"]
    assert errors.loc[errors["email"] == "pat@partner.example", "error"].tolist() == [
        "outside_domain"
    ]


def test_alias_domains_are_read_too(workspace):
    other = user(2, "nora.dubois@acme.io")
    directory = Directory(
        users=[ADMIN, other],
        groups=[{"id": "g1", "email": "all@acme.com", "members": [member(other)]}],
    )
    google = workspace(directory)

    extract = google.reader("admin@acme.com").extract(
        ["acme.com", "acme.io", "acme.dev"], ["all@acme.com"]
    )

    # acme.dev is no domain of this Workspace: nobody can be in it, and that is not a failure.
    assert set(extract.users["email"]) == {"admin@acme.com", "nora.dubois@acme.io"}


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (429, None),
        (500, None),
        (502, None),
        (503, None),
        (504, None),
        (403, "rateLimitExceeded"),
        (403, "userRateLimitExceeded"),
    ],
)
def test_transient_errors_are_retried(workspace, generated, status, reason):
    google = workspace(generated.directory)
    google.emulator.fail("users.list", status, page=2, times=2, reason=reason)
    google.emulator.fail("members.list", status, page=3, group=generated.selected[1], reason=reason)

    extract = google.reader(generated.admin).extract([generated.domain], generated.selected)

    assert len(extract.users) == len(generated.directory.users)
    minimum = minimum_requests(generated.directory, generated.domain, generated.selected)
    assert extract.requests == minimum + 3
    assert len(google.waits) == 3


def test_backoff_grows_exponentially_is_capped_and_jittered():
    backoff = Backoff(attempts=8, base=0.5, cap=4.0)
    rng = random.Random(3)
    waits = [[backoff.delay(retry, rng) for _ in range(200)] for retry in range(1, 8)]
    ceilings = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0]
    for found, ceiling in zip(waits, ceilings, strict=True):
        assert min(found) >= 0 and max(found) <= ceiling
        assert max(found) > 0.8 * ceiling  # jitter spreads the waits up to the ceiling
        assert len(set(found)) == len(found)


def test_a_persistent_503_on_page_3_yields_no_snapshot(workspace, generated):
    google = workspace(generated.directory)
    google.emulator.fail("users.list", 503, page=3, times=None)
    reader = google.reader(generated.admin)

    with pytest.raises(ExtractionFailed) as failure:
        reader.extract([generated.domain], generated.selected)

    message = str(failure.value)
    assert "users.list page 3 of acme.com" in message
    assert "HTTP 503 backendError" in message and f"after {FAST.attempts} attempts" in message
    assert google.emulator.requests["users.list"] == 2 + FAST.attempts  # never page 4
    assert len(google.waits) == FAST.attempts - 1


def test_a_failing_member_list_stops_the_whole_extraction(workspace, generated):
    google = workspace(generated.directory)
    google.emulator.fail("members.list", 500, page=2, group=generated.selected[0], times=None)

    with pytest.raises(ExtractionFailed, match=rf"members.list page 2 of {generated.selected[0]}"):
        google.reader(generated.admin).extract([generated.domain], generated.selected)


def test_other_errors_are_not_retried(workspace, generated):
    google = workspace(generated.directory)
    google.emulator.fail("members.list", 400, times=None, message="Invalid Input: groupKey")

    with pytest.raises(ExtractionFailed, match="HTTP 400 invalid"):
        google.reader(generated.admin).extract([generated.domain], generated.selected)
    assert not google.waits


def test_a_missing_group_stops_the_domain(workspace, generated):
    google = workspace(generated.directory)
    groups = [generated.selected[0], "gone@acme.com"]
    config = DomainConfig.create("acme.com", "google", groups=groups, admin_email=generated.admin)

    extract = google.reader(generated.admin).extract(config.domains, config.groups)
    result = reconcile(extract, accounts_from_resources([]), config)

    assert extract.groups.set_index("group")["found"].to_dict() == {
        generated.selected[0]: True,
        "gone@acme.com": False,
    }
    errors = result.reports["errors"]
    assert errors.loc[errors["error"] == "group_not_found", "email"].tolist() == ["gone@acme.com"]
    assert result.plan.held


def test_authorisation_refused_names_the_subject_and_the_scopes(workspace, generated):
    google = workspace(generated.directory, scopes=["admin.directory.user.readonly"])
    reader = google.reader(generated.admin)

    with pytest.raises(AuthorisationRefused) as refused:
        reader.extract([generated.domain], generated.selected)

    message = str(refused.value)
    assert generated.admin in message and google.key["client_id"] in message
    assert all(scope in message for scope in SCOPES)
    assert "unauthorized_client" in message
    assert google.emulator.requests["total"] == 1  # only the token request


def test_an_unknown_admin_is_named(workspace, generated):
    google = workspace(generated.directory)

    with pytest.raises(AuthorisationRefused, match=r"nobody@acme\.com"):
        google.reader("nobody@acme.com").extract([generated.domain], generated.selected)


def test_an_admin_without_admin_rights_is_refused_without_retries(workspace, generated):
    google = workspace(generated.directory)
    someone = generated.directory.users[5]["primaryEmail"]

    with pytest.raises(AuthorisationRefused, match="must be a super admin"):
        google.reader(someone).extract([generated.domain], generated.selected)
    assert not google.waits


def test_an_unreachable_api_fails_after_the_retries(workspace, generated):
    google = workspace(generated.directory)
    reader = google.reader(generated.admin)
    reader.authenticate()
    google.emulator.stop()

    with pytest.raises(ExtractionFailed, match="no response"):
        reader.extract([generated.domain], generated.selected)


def test_the_check_counts_users_and_members(workspace, generated):
    google = workspace(generated.directory)
    groups = [*generated.selected, "gone@acme.com"]

    check = google.reader(generated.admin).check(["acme.com"], groups)

    assert check.users == len(generated.directory.users)
    counts = {group.group: (group.found, group.members) for group in check.groups}
    assert counts["gone@acme.com"] == (False, 0)
    for group in generated.selected:
        derived = generated.directory.members(generated.directory.group(group), derived=True)
        users = sum(1 for m in derived if m["type"] != "GROUP")
        assert counts[group] == (True, users)
    assert len(check.problems) == 1 and "gone@acme.com does not exist" in check.problems[0]


def test_extraction_feeds_the_engine_directly(workspace, generated):
    google = workspace(generated.directory)
    config = DomainConfig.create(
        "acme.com", "google", groups=list(generated.selected), admin_email=generated.admin
    )

    extract = google.reader(generated.admin).extract(config.domains, config.groups)
    result = reconcile(extract, accounts_from_resources([]), config)

    assert pd.api.types.is_bool_dtype(extract.users["active"])
    joiners = len(result.reports["joiners"])
    assert 0 < joiners < len(generated.directory.users)
    assert result.plan.actions["action"].value_counts().to_dict() == {"create": joiners}


def test_the_token_request_is_retried_when_google_is_briefly_unavailable(workspace, generated):
    google = workspace(generated.directory)
    google.emulator.fail("token", 503, times=1)

    extract = google.reader(generated.admin).extract([generated.domain], generated.selected)

    assert google.emulator.requests["token"] == 2
    assert len(extract.users) == len(generated.directory.users)


def test_an_unreachable_token_endpoint_fails_after_the_retries(workspace, generated):
    google = workspace(generated.directory)
    reader = google.reader(generated.admin)
    google.emulator.stop()

    with pytest.raises(ExtractionFailed) as failure:
        reader.extract([generated.domain], generated.selected)

    assert f"the token request to {google.key['token_uri']}" in str(failure.value)
    assert "no response (Connection refused)" in str(failure.value)
    assert len(google.waits) == FAST.attempts - 1


def test_list_groups_pages_with_a_fields_mask_and_searches_on_googles_side(workspace):
    from tests.support.google_workspace import groups_directory

    google = workspace(groups_directory())
    reader = google.reader("alice.martin@acme.com")

    every = reader.list_groups()
    assert [g["email"] for g in every] == [
        "all@acme.com", "board@acme.com", "eng@acme.com", "sales@acme.com",
    ]  # fmt: skip
    assert every[0] == {
        "id": "g1", "email": "all@acme.com", "name": "All Staff", "directMembersCount": "2",
    }  # fmt: skip
    assert [g["email"] for g in reader.list_groups("name:'all st'*")] == ["all@acme.com"]
    assert [g["email"] for g in reader.list_groups("email:SA*")] == ["sales@acme.com"]
    assert [g["email"] for g in reader.list_groups("name:eng*")] == ["eng@acme.com"]  # any case
    assert reader.list_groups("name:neer*") == []  # the start of the name, not a part
    with pytest.raises(ExtractionFailed, match=r"groups\.list page 1 failed: HTTP 400"):
        reader.list_groups("name:eng")  # ':' takes a prefix with '*'


def test_list_groups_reads_every_page(workspace):
    generated = generate_directory(30, domain="acme.com", groups=1, other_groups=420, seed=5)
    google = workspace(generated.directory)
    reader = google.reader(generated.admin)

    groups = reader.list_groups()

    assert len(groups) == 423 and len({g["id"] for g in groups}) == 423
    pages = [call for call in google.emulator.calls if call.method == "groups.list"]
    assert [call.params.get("maxResults") for call in pages] == ["200"] * 3
    assert all(call.params["customer"] == "my_customer" for call in pages)
