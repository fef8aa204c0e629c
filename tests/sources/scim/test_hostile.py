"""Hostile input at the SCIM endpoint, one regression test per finding of the fuzzing run:
every request gets a SCIM error (never a 500 nor a dropped connection), and the request log
keeps one row per request, without a password in any spelling."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from komeet_sync.sources.scim.limits import MAX_DEPTH, nesting_depth
from komeet_sync.store.tables import ScimRequestRow
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


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "replace", "path": "emails", "value": "x"},
        {"op": "replace", "value": {"emails": [{"value": 5}]}},
        {"op": "replace", "path": "name", "value": "x"},
    ],
)
def test_errors_speak_scim_not_the_validation_library(scim, operation):
    scim.add_domain("globex.com")
    with scim.client("globex.com") as client:
        user_id = client.post("/Users", json=user("pat@globex.com")).json()["id"]
        answer = client.patch(
            f"/Users/{user_id}", json={"schemas": [PATCH_OP], "Operations": [operation]}
        )
    assert answer.status_code == 400
    detail = answer.json()["detail"]
    assert answer.json()["scimType"] == "invalidValue"
    for internal in ("pydantic", "validation error for", "User[", "instance of", "\n"):
        assert internal not in detail, detail
    assert "invalid (expected" in detail


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
