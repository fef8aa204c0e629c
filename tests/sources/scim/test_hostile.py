"""Hostile input at the SCIM endpoint, one regression test per finding of the fuzzing run:
every request gets a SCIM error (never a 500 nor a dropped connection), and the request log
keeps one row per request, without a password in any spelling."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from komeet_sync.sources.scim.limits import MAX_DEPTH, nesting_depth, too_deep
from komeet_sync.store.tables import ScimRequestRow, ScimResourceRow
from tests.support.scim_server import PATCH_OP, USER


def logged(scim, expected: int) -> list[ScimRequestRow]:
    """The request log once it holds ``expected`` rows (a row is added as the answer goes,
    and may follow the client's read of it by a moment), or what it holds after 10 s."""
    deadline = time.monotonic() + 10
    while True:
        scim.flush_log()
        with Session(scim.engine) as session:
            rows = list(session.scalars(select(ScimRequestRow).order_by(ScimRequestRow.id)))
        if len(rows) >= expected or time.monotonic() > deadline:
            return rows
        time.sleep(0.02)


def user(user_name: str, **extra) -> dict:
    return {"schemas": [USER], "userName": user_name, **extra}


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 1000 + b"]" * 1000,
        b'{"a":' * 500 + b"1" + b"}" * 500,
        json.dumps(user("deep@globex.com", password="S3cret", x=[[[[[[[[[[]]]]]]]]]] * 3))
        .replace("[]", "[" * 80 + "]" * 80)
        .encode(),
    ],
    ids=["array-1000", "object-500", "deep-with-password"],
)
def test_deep_json_is_a_400_and_is_logged(scim, body):
    scim.add_domain("globex.com")
    with scim.client("globex.com") as client:
        answer = client.post("/Users", content=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["scimType"] == "invalidSyntax"
    assert f"deeper than {MAX_DEPTH}" in answer.json()["detail"]
    [row] = logged(scim, 1)
    assert row.status == 400 and "nested deeper" in row.body and "S3cret" not in row.body


def test_a_control_character_in_the_path_is_answered(scim):
    scim.add_domain("globex.com")
    with scim.client("globex.com") as client:
        answer = client.get("/Users/%00")
        newline = client.get("/Users/a%0Ab")
    assert answer.status_code == 404 and "control character" in answer.json()["detail"]
    assert newline.status_code == 404
    rows = logged(scim, 2)
    assert [row.status for row in rows] == [404, 404]
    assert "\x00" not in rows[0].path


@pytest.mark.parametrize(
    "query",
    ["startIndex=100000000000000000000", "startIndex=0", "count=-1", "COUNT=abc", "startindex=1e3"],
)
def test_paging_numbers_out_of_range_are_refused(scim, query):
    scim.add_domain("globex.com")
    with scim.client("globex.com") as client:
        answer = client.get(f"/Users?{query}")
    assert answer.status_code == 400, answer.text
    assert answer.json()["scimType"] == "invalidValue"
    assert query.split("=")[1][:20] in answer.json()["detail"]


def test_a_password_in_any_spelling_never_reaches_the_log(scim):
    scim.add_domain("globex.com")
    with scim.client("globex.com") as client:
        created = client.post("/Users", json=user("ada@globex.com", PassWord="S3cret-1"))
        assert created.status_code == 201, created.text
        user_id = created.json()["id"]
        for operation in (
            {"op": "replace", "Path": "password", "Value": "S3cret-2"},
            {"OP": "Replace", "PATH": "urn:ietf:params:scim:schemas:core:2.0:User:password",
             "VALUE": "S3cret-3"},
            {"op": "replace", "value": {"Password": "S3cret-4"}},
        ):  # fmt: skip
            answer = client.patch(
                f"/Users/{user_id}", json={"schemas": [PATCH_OP], "Operations": [operation]}
            )
            assert answer.status_code < 500, answer.text
    bodies = " ".join(row.body or "" for row in logged(scim, 4))
    assert "S3cret" not in bodies


def test_a_lone_surrogate_is_logged_not_lost(scim):
    scim.add_domain("globex.com")
    body = (
        '{"schemas": ["' + USER + '"], "userName": "sur@globex.com", '
        '"urn:example:unknown": {"note": "\\ud800"}}'
    ).encode()
    with scim.client("globex.com") as client:
        answer = client.post("/Users", content=body)
    assert answer.status_code < 500, answer.text
    [row] = logged(scim, 1)
    assert row.status == answer.status_code and row.body is not None


def test_nesting_depth_counts_brackets_outside_strings():
    assert nesting_depth(b"") == 0
    assert nesting_depth(b'{"a": [1, {"b": "[[[[{{{"}]}') == 3
    assert nesting_depth(b'"\\"[[["') == 0
    assert nesting_depth(b"[" * 70) == 70


LIBRARY_WORDS = ("pydantic", "validation error for", "User[", "instance of", "Input should", "\n")


@pytest.mark.parametrize(
    ("operation", "expected"),
    [
        ({"op": "replace", "path": "emails", "value": "x"}, 'expected a JSON object, got "x"'),
        ({"op": "replace", "value": {"emails": [{"value": 5}]}}, "expected a string, got 5"),
        ({"op": "replace", "path": "name", "value": "x"}, 'expected a JSON object, got "x"'),
    ],
)
def test_patch_errors_speak_scim_not_the_validation_library(scim, operation, expected):
    scim.add_domain("globex.com")
    with scim.client("globex.com") as client:
        user_id = client.post("/Users", json=user("pat@globex.com")).json()["id"]
        answer = client.patch(
            f"/Users/{user_id}", json={"schemas": [PATCH_OP], "Operations": [operation]}
        )
    assert answer.status_code == 400
    detail = answer.json()["detail"]
    assert answer.json()["scimType"] == "invalidValue"
    for internal in LIBRARY_WORDS:
        assert internal not in detail, detail
    assert expected in detail, detail


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"emails": [{"value": {"x": 1}}]}, 'emails[0].value: expected a string, got {"x": 1}'),
        ({"active": "maybe"}, 'active: expected true or false, got "maybe"'),
        ({"name": ["Ada"]}, 'name: expected a JSON object, got ["Ada"]'),
        ({"userName": 7}, "userName: expected a string, got 7"),
    ],
)
def test_creation_errors_name_the_attribute_the_expectation_and_the_value(scim, extra, expected):
    scim.add_domain("globex.com")
    with scim.client("globex.com") as client:
        user_id = client.post("/Users", json=user("ada@globex.com")).json()["id"]
        created = client.post("/Users", json=user("bob@globex.com", **extra))
        replaced = client.put(f"/Users/{user_id}", json=user("ada@globex.com", **extra))
    for answer in (created, replaced):
        assert answer.status_code == 400, answer.text
        detail = answer.json()["detail"]
        for internal in LIBRARY_WORDS:
            assert internal not in detail, detail
        assert detail.startswith(expected) or f"; {expected}" in detail, detail


def test_query_parameter_names_are_matched_whatever_their_case(scim):
    scim.add_domain("globex.com")
    with scim.client("globex.com") as client:
        for name in ("ada", "bob", "cy"):
            assert client.post("/Users", json=user(f"{name}@globex.com")).status_code == 201
        found = client.get("/Users", params={"FILTER": 'userName eq "bob@globex.com"'}).json()
        paged = client.get("/Users", params={"COUNT": "1", "StartIndex": "2"}).json()
    assert found["totalResults"] == 1
    assert [u["userName"] for u in found["Resources"]] == ["bob@globex.com"]
    assert paged["itemsPerPage"] == 1 and paged["startIndex"] == 2


def test_too_deep_is_exact_at_the_limit_whatever_the_bracket_count():
    assert not too_deep(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH)
    assert too_deep(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1))
    wide = b"[" + b",".join([b"[]"] * 500) + b"]"  # many brackets, depth 2
    assert not too_deep(wide)
    assert too_deep(b'{"a":' * (MAX_DEPTH + 1))  # unbalanced: deep before it fails to parse


def test_count_is_capped_at_the_announced_max_results(scim):
    """``count=2147483647`` is a valid number, answered with at most maxResults resources
    (RFC 7644 §3.4.2.4), never the whole staging table."""
    from datetime import UTC, datetime

    from sqlalchemy import insert

    from komeet_sync.store.domains import DomainStore

    scim.add_domain("globex.com")
    domain_id = DomainStore(scim.engine).id_of("globex.com")
    now = datetime.now(UTC)
    with scim.engine.begin() as connection:  # 1,001 users staged earlier, in one insert
        connection.execute(
            insert(ScimResourceRow),
            [
                {
                    "id": f"u{number:05d}",
                    "domain_id": domain_id,
                    "resource_type": "User",
                    "user_name_key": f"u{number:05d}@globex.com",
                    "version": 1,
                    "created_at": now,
                    "updated_at": now,
                    "document": user(f"u{number:05d}@globex.com"),
                }
                for number in range(1001)
            ],
        )
    with scim.client("globex.com") as client:
        announced = client.get("/ServiceProviderConfig").json()["filter"]["maxResults"]
        pages = [
            client.get(f"/Users?{query}").json() for query in ("count=2147483647", "COUNT=5000")
        ]
    assert announced == 1000
    for page in pages:
        assert page["totalResults"] == 1001
        assert page["itemsPerPage"] == len(page["Resources"]) == announced


def test_dangling_memberships_are_reported_by_the_migration_and_kept(
    scim, database_url, komeet_env, cli, caplog
):
    """Memberships an earlier version stored without checking their member (an id never
    staged, another domain's user) are counted when the database is migrated, listed by
    ``komeet-sync scim check``, and not deleted."""
    from sqlalchemy import insert, text

    from komeet_sync.sources.scim.checks import NO_SUCH_RESOURCE, OTHER_DOMAIN
    from komeet_sync.store.database import open_database
    from komeet_sync.store.tables import ScimMembershipRow
    from tests.support.migrations import downgrade

    scim.add_domain("globex.com")
    scim.add_domain("initech.com")
    with scim.client("initech.com") as client:
        foreign = client.post("/Users", json=user("peter@initech.com")).json()["id"]
    with scim.client("globex.com") as client:
        own = client.post("/Users", json=user("ada@globex.com")).json()["id"]
        group = client.post(
            "/Groups",
            json={
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Staff",
                "members": [{"value": own}],
            },
        )
        assert group.status_code == 201, group.text
        group_id = group.json()["id"]
    with scim.engine.connect() as connection:  # closed: the downgrade below drops tables
        domain_id = connection.execute(
            text("select domain_id from scim_resources where id = :id"), {"id": group_id}
        ).scalar_one()
    with scim.engine.begin() as connection:  # as stored before the member check
        connection.execute(
            insert(ScimMembershipRow),
            [
                {"group_id": group_id, "member_id": "never-staged", "domain_id": domain_id},
                {"group_id": group_id, "member_id": foreign, "domain_id": domain_id},
            ],
        )
    downgrade(scim.engine, "0006")

    with caplog.at_level("WARNING", logger="komeet_sync.migrations"):
        open_database(database_url).dispose()
    [warning] = [r.getMessage() for r in caplog.records if r.name == "komeet_sync.migrations"]
    assert warning.startswith("2 staged group memberships name no resource")
    assert "globex.com 2" in warning and "komeet-sync scim check" in warning

    code, out, err = cli("scim", "check")
    assert code == 1, err
    assert "2 staged memberships of 1 group" in out
    assert "never-staged" in out and foreign in out and "initech.com" in out
    listed = json.loads(cli("scim", "check", "globex.com", "--json")[1])
    assert [(row["member_id"], row["reason"]) for row in listed] == sorted(
        [("never-staged", NO_SUCH_RESOURCE), (foreign, OTHER_DOMAIN)]
    )
    assert cli("scim", "check", "initech.com")[0] == 0
    with scim.engine.connect() as connection:  # kept
        kept = connection.execute(
            text("select count(*) from scim_memberships where group_id = :id"), {"id": group_id}
        ).scalar_one()
    assert kept == 3


@pytest.mark.parametrize("body", [b"null", b"[]", b"1", b'"filter"', b"true"])
def test_a_search_body_that_is_not_an_object_is_a_400_in_scim_words(scim, body):
    scim.add_domain("globex.com")
    with scim.client("globex.com") as client:
        answers = [client.post(path, content=body) for path in ("/Users/.search", "/.search")]
    for answer in answers:
        assert answer.status_code == 400, answer.text
        detail = answer.json()["detail"]
        assert detail.startswith("expected a JSON object"), answer.text
        assert "Input should" not in detail and "SearchRequest" not in detail
    assert [row.status for row in logged(scim, 2)] == [400, 400]
