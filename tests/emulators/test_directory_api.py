"""The Directory API emulator speaks Google's protocol: checked with plain HTTP (requests)
and with the real client libraries."""

from __future__ import annotations

import base64
import hashlib
import json
import signal
import subprocess
import sys
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
from googleapiclient.errors import HttpError

from komeet_sync.emulators import partial_response
from komeet_sync.emulators.directory import Directory
from komeet_sync.emulators.directory_generator import generate_directory
from komeet_sync.sources.google.credentials import SCOPES
from tests.support.google_workspace import consent, user


@pytest.fixture
def google(workspace):
    return workspace(
        generate_directory(1_200, domain="acme.com", groups=2, group_size=300, seed=5).directory
    )


@pytest.fixture
def token(google) -> str:
    reader = google.reader("admin@acme.com")
    reader.authenticate()
    return reader.credentials.token


def get(google, path: str, token: str, **params) -> requests.Response:
    return requests.get(
        f"{google.emulator.url}/admin/directory/v1/{path}",
        params=params,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


def test_pages_follow_their_tokens_to_the_end(google, token):
    seen, page_token, pages = [], None, 0
    while True:
        params = {"domain": "acme.com", "maxResults": 500}
        if page_token:
            params["pageToken"] = page_token
        body = get(google, "users", token, **params).json()
        seen += [u["id"] for u in body["users"]]
        pages += 1
        page_token = body.get("nextPageToken")
        if not page_token:
            break
    assert pages == 3 and len(seen) == len(set(seen)) == 1_200


@pytest.mark.parametrize(
    ("path", "limit"), [("users", 500), ("groups/team000@acme.com/members", 200)]
)
def test_page_sizes_above_googles_limits_are_refused(google, token, path, limit):
    response = get(google, path, token, domain="acme.com", maxResults=limit + 1)

    assert response.status_code == 400
    assert response.json()["error"]["errors"][0]["reason"] == "invalid"
    assert get(google, path, token, domain="acme.com", maxResults=limit).status_code == 200


def test_a_page_token_of_another_query_is_refused(google, token):
    first = get(google, "users", token, domain="acme.com", maxResults=100).json()

    response = get(google, "users", token, domain="acme.com", maxResults=200,
                   pageToken=first["nextPageToken"])  # fmt: skip

    assert response.status_code == 400


def test_fields_masks_return_only_what_was_asked(google, token):
    body = get(google, "users", token, domain="acme.com", maxResults=2,
               fields="nextPageToken,users(id,name/givenName)").json()  # fmt: skip

    assert set(body) == {"nextPageToken", "users"}
    assert all(set(u) == {"id", "name"} and set(u["name"]) == {"givenName"} for u in body["users"])


def test_partial_response_syntax():
    document = {"kind": "k", "items": [{"id": 1, "a": {"b": 2, "c": 3}, "d": 4}], "next": "t"}

    assert partial_response.select(document, partial_response.parse("items(id,a/c),next")) == {
        "items": [{"id": 1, "a": {"c": 3}}],
        "next": "t",
    }
    assert partial_response.select(document, partial_response.parse("items/a")) == {
        "items": [{"a": {"b": 2, "c": 3}}]
    }
    assert partial_response.select(document, partial_response.parse("*")) == document
    with pytest.raises(partial_response.InvalidFields):
        partial_response.parse("items(id")


def test_derived_membership_flattens_nested_groups(google, token):
    direct = get(google, "groups/team000@acme.com/members", token).json()["members"]
    derived = []
    page_token = None
    while True:
        params = {"includeDerivedMembership": "true"}
        if page_token:
            params["pageToken"] = page_token
        body = get(google, "groups/team000@acme.com/members", token, **params).json()
        derived += body["members"]
        page_token = body.get("nextPageToken")
        if not page_token:
            break

    assert [m["type"] for m in direct].count("GROUP") == 1  # 150 users and the nested group
    users = [m for m in derived if m["type"] == "USER"]
    assert len(users) == len({m["id"] for m in users}) == 300


def test_errors_have_googles_shape(google, token):
    response = get(google, "groups/nobody@acme.com", token)

    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "code": 404,
            "message": "Resource Not Found: groupKey",
            "errors": [
                {
                    "message": "Resource Not Found: groupKey",
                    "domain": "global",
                    "reason": "notFound",
                }
            ],
            "status": "NOT_FOUND",
        }
    }


def test_the_client_library_reads_injected_errors(google):
    google.emulator.fail("users.list", 403, reason="userRateLimitExceeded")
    reader = google.reader("admin@acme.com")
    service = reader.service

    with pytest.raises(HttpError) as error:
        service.users().list(domain="acme.com").execute(num_retries=0)

    assert error.value.resp.status == 403
    assert error.value.error_details[0]["reason"] == "userRateLimitExceeded"
    service.users().list(domain="acme.com").execute(num_retries=0)  # the fault hit only once


def test_requests_without_a_valid_token_are_unauthenticated(google):
    assert get(google, "users", "ya29.forged", domain="acme.com").status_code == 401


def test_a_token_for_other_scopes_cannot_read_users(workspace):
    directory = generate_directory(10, domain="acme.com", groups=1).directory
    google = workspace(directory, scopes=["admin.directory.group.readonly"])
    from google.oauth2 import service_account

    credentials = service_account.Credentials.from_service_account_info(
        google.key,
        scopes=["https://www.googleapis.com/auth/admin.directory.group.readonly"],
        subject="admin@acme.com",
    )
    from google.auth.transport.requests import Request

    credentials.refresh(Request())
    response = get(google, "users", credentials.token, domain="acme.com")

    assert response.status_code == 403
    assert "insufficient authentication scopes" in response.json()["error"]["message"]


def test_a_jwt_signed_by_another_key_is_refused(workspace, google):
    from komeet_sync.emulators.service_account import service_account_key

    impostor = dict(service_account_key(google.emulator.token_uri))
    impostor["client_email"] = google.key["client_email"]
    from google.auth.exceptions import RefreshError
    from google.auth.transport.requests import Request
    from google.oauth2 import service_account

    credentials = service_account.Credentials.from_service_account_info(
        impostor, scopes=["https://www.googleapis.com/auth/admin.directory.user.readonly"],
        subject="admin@acme.com",
    )  # fmt: skip
    with pytest.raises(RefreshError, match="invalid_grant"):
        credentials.refresh(Request())


def test_the_request_counter_and_faults_are_reachable_over_http(google, token):
    url = google.emulator.url
    requests.post(f"{url}/_emulator/faults", json={"method": "users.list", "status": 503},
                  timeout=10)  # fmt: skip

    assert get(google, "users", token, domain="acme.com").status_code == 503
    assert get(google, "users", token, domain="acme.com").status_code == 200
    counts = requests.get(f"{url}/_emulator/requests", timeout=10).json()
    assert counts["users.list"] == 2 and counts["token"] == 1


def test_the_generator_is_deterministic_and_realistic():
    first = generate_directory(5_000, groups=4, group_size=300, seed=3)
    again = generate_directory(5_000, groups=4, group_size=300, seed=3)
    other = generate_directory(5_000, groups=4, group_size=300, seed=4)

    assert first.directory.to_json() == again.directory.to_json()
    assert first.directory.to_json() != other.directory.to_json()
    users = first.directory.users
    assert 50 < sum(u["suspended"] for u in users) < 200
    assert 20 < sum(u["archived"] for u in users) < 100
    assert 400 < sum("aliases" in u for u in users) < 800
    assert sum("nonEditableAliases" in u for u in users) > 1_000
    directory = first.directory
    members = [directory.members(directory.group(g), derived=True) for g in first.selected]
    assert all(sum(m["type"] != "GROUP" for m in found) == 300 for found in members)
    assert all(any(m["email"].endswith("@partner.example") for m in found) for found in members)
    in_groups = {m["id"] for found in members for m in found}
    assert sum(u["id"] not in in_groups for u in users) > 1_000


def test_it_runs_on_its_own(tmp_path):
    key_file = tmp_path / "key.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "komeet_sync.emulators.directory_api", "--generate", "50",
         "--domain", "acme.com", "--groups", "2", "--key-out", str(key_file)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        started = json.loads(process.stdout.readline())
        assert started["users"] == 50 and started["admins"] == ["admin@acme.com"]
        assert started["selected"] == ["team000@acme.com", "team001@acme.com"]
        key = json.loads(key_file.read_text())
        assert key["token_uri"] == started["token_uri"] and key_file.stat().st_mode & 0o077 == 0
        assert requests.get(f"{started['url']}/_emulator/requests", timeout=10).json() == {
            "most_in_flight": 0
        }
    finally:
        process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0


def test_users_get_finds_a_user_by_address_alias_or_id(google):
    service = google.reader("admin@acme.com").service
    person = next(u for u in google.emulator.directory.users if u.get("aliases"))

    for key in (person["primaryEmail"].upper(), person["aliases"][0], person["id"]):
        found = service.users().get(userKey=key, fields="id,customerId").execute(num_retries=0)
        assert found == {"id": person["id"], "customerId": "C01abc234"}
    with pytest.raises(HttpError) as error:
        service.users().get(userKey="nobody@acme.com").execute(num_retries=0)
    assert error.value.resp.status == 404
    assert json.loads(error.value.content) == {
        "error": {
            "code": 404,
            "message": "Resource Not Found: userKey",
            "errors": [
                {"message": "Resource Not Found: userKey", "domain": "global", "reason": "notFound"}
            ],
            "status": "NOT_FOUND",
        }
    }


def test_has_member_answers_for_direct_and_nested_members(google):
    service = google.reader("admin@acme.com").service
    directory = google.emulator.directory
    team = directory.group("team000@acme.com")
    listed = directory.members(team, derived=True)
    direct = next(m for m in team["members"] if m["type"] == "USER")
    nested = next(m for m in listed if m not in team["members"] and m["type"] == "USER")
    outsider = next(u for u in directory.users if u["id"] not in {m["id"] for m in listed})

    def has(key: str) -> bool:
        request = service.members().hasMember(groupKey="team000@acme.com", memberKey=key)
        return request.execute(num_retries=0)["isMember"]

    assert has(direct["email"]) and has(nested["id"]) and not has(outsider["primaryEmail"])
    get = service.members().get(groupKey="team000@acme.com", memberKey=direct["id"])
    assert get.execute(num_retries=0)["email"] == direct["email"]
    with pytest.raises(HttpError) as error:  # members.get lists direct members only
        service.members().get(groupKey="team000@acme.com", memberKey=nested["id"]).execute(
            num_retries=0
        )
    assert error.value.resp.status == 404


def test_has_member_refuses_a_nested_membership_across_domains(workspace):
    directory = Directory(
        users=[
            {"id": "1", "primaryEmail": "admin@acme.com", "isAdmin": True},
            {"id": "2", "primaryEmail": "nora@acme.io"},
        ],
        groups=[
            {"id": "g1", "email": "all@acme.com", "members": [
                {"id": "g2", "email": "eng@acme.com", "type": "GROUP"}]},
            {"id": "g2", "email": "eng@acme.com", "members": [
                {"id": "2", "email": "nora@acme.io", "type": "USER"}]},
        ],
    )  # fmt: skip
    service = workspace(directory).reader("admin@acme.com").service

    assert service.members().hasMember(groupKey="eng@acme.com", memberKey="2").execute()["isMember"]
    with pytest.raises(HttpError) as error:
        service.members().hasMember(groupKey="all@acme.com", memberKey="2").execute(num_retries=0)
    assert error.value.resp.status == 400
    assert error.value.error_details[0]["reason"] == "invalid"


def test_users_list_searches_by_external_id_and_email(google):
    service = google.reader("admin@acme.com").service
    users = google.emulator.directory.users
    person = next(u for u in users if u.get("externalIds") and u.get("aliases"))
    value = person["externalIds"][0]["value"]

    def search(query: str) -> list[str]:
        request = service.users().list(customer="my_customer", query=query, fields="users(id)")
        return [u["id"] for u in request.execute(num_retries=0).get("users", [])]

    assert search(f"externalId='{value}'") == [person["id"]]
    assert search(f"externalId={value.lower()}") == [person["id"]]
    assert search(f"email='{person['aliases'][0]}'") == [person["id"]]
    assert search("externalId='E\\'404'") == []
    assert len(search("isSuspended=true")) == sum(bool(u["suspended"]) for u in users)
    with pytest.raises(HttpError) as error:
        search("shoeSize=42")
    assert error.value.resp.status == 400
    assert google.emulator.calls[-1].params["query"] == "shoeSize=42"


def test_the_consent_endpoints_check_what_google_checks(workspace):
    """The authorization-code grant refuses what Google refuses (a reused code, a wrong
    PKCE verifier or client secret, a redirect that is not loopback), and a refresh token
    works until it is revoked."""
    google = workspace(Directory.from_exports([user(1, "admin@acme.com", isAdmin=True)], {}))
    client = google.emulator.oauth_client()["installed"]
    verifier = "v" * 43
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    asked = {
        "response_type": "code", "client_id": client["client_id"],
        "redirect_uri": "http://127.0.0.1:5/", "scope": "openid " + " ".join(SCOPES),
        "state": "s1", "code_challenge": challenge.decode().rstrip("="),
        "code_challenge_method": "S256",
    }  # fmt: skip
    auth = f"{google.emulator.url}/o/oauth2/auth"
    elsewhere = asked | {"redirect_uri": "https://attacker.example/"}
    assert requests.get(auth, params=elsewhere, timeout=5).status_code == 400

    def code() -> str:
        location = consent(f"{auth}?{urlencode(asked)}", "admin@acme.com")
        answer = dict(parse_qsl(urlsplit(location).query))
        assert location.startswith("http://127.0.0.1:5/?") and answer["state"] == "s1"
        return answer["code"]

    def exchange(**changed: str) -> requests.Response:
        form = {"grant_type": "authorization_code", "redirect_uri": "http://127.0.0.1:5/",
                "client_id": client["client_id"], "client_secret": client["client_secret"],
                "code_verifier": verifier} | changed  # fmt: skip
        return requests.post(client["token_uri"], data=form, timeout=5)

    assert exchange(code=code(), code_verifier="w" * 43).json()["error"] == "invalid_grant"
    assert exchange(code=code(), client_secret="nope").json()["error"] == "invalid_client"
    first = code()
    tokens = exchange(code=first).json()
    assert exchange(code=first).json()["error"] == "invalid_grant"  # a code works once
    assert tokens["id_token"] and tokens["scope"].split()[1:] == list(SCOPES)
    refresh = {
        "grant_type": "refresh_token",
        "refresh_token": tokens["refresh_token"],
        "client_id": client["client_id"],
        "client_secret": client["client_secret"],
    }
    assert requests.post(client["token_uri"], data=refresh, timeout=5).ok
    revoked = requests.post(
        client["revoke_uri"], params={"token": tokens["refresh_token"]}, timeout=5
    )
    assert revoked.ok
    ended = requests.post(client["token_uri"], data=refresh, timeout=5).json()
    assert ended == {
        "error": "invalid_grant",
        "error_description": "Token has been expired or revoked.",
    }
