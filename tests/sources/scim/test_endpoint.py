"""The SCIM endpoint over real HTTP: tenants, secrets, robustness, the request log."""

from __future__ import annotations

import json
import threading

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from komeet_sync.store.tables import ScimRequestRow, ScimResourceRow
from tests.support.scim_server import PATCH_OP, USER


def user(user_name: str, **extra) -> dict:
    return {
        "schemas": [USER],
        "userName": user_name,
        "name": {"givenName": "A", "familyName": "B"},
        **extra,
    }


def staged(scim) -> list[ScimResourceRow]:
    with Session(scim.engine) as session:
        return list(session.scalars(select(ScimResourceRow)))


def test_a_user_pushed_is_staged(scim):
    scim.add_domain("globex.com")
    with scim.client("globex.com") as client:
        response = client.post("/Users", json=user("ana@globex.com"))

    assert response.status_code == 201
    body = response.json()
    assert body["meta"]["location"] == f"{scim.url}/scim/globex.com/v2/Users/{body['id']}"
    [row] = staged(scim)
    assert row.id == body["id"] and row.document["userName"] == "ana@globex.com"


def test_a_secret_reaches_only_its_own_domain(scim):
    scim.add_domain("globex.com")
    other = scim.add_domain("initech.com")
    with scim.client("initech.com") as client:
        client.post("/Users", json=user("bob@initech.com"))
    before = len(staged(scim))

    with scim.client("globex.com", secret=other) as client:
        listed = client.get("/Users")
        created = client.post("/Users", json=user("eve@globex.com"))
    anonymous = httpx.get(f"{scim.url}/scim/globex.com/v2/Users", timeout=30)

    assert listed.status_code == created.status_code == anonymous.status_code == 401
    assert "Resources" not in listed.text
    assert listed.headers["www-authenticate"].startswith("Bearer")
    assert len(staged(scim)) == before


def test_a_disabled_domain_answers_403(scim):
    from komeet_sync.store.domains import DomainStore

    scim.add_domain("globex.com")
    DomainStore(scim.engine).set_enabled("globex.com", False)

    with scim.client("globex.com") as client:
        response = client.post("/Users", json=user("ana@globex.com"))

    assert response.status_code == 403
    assert response.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert "disabled" in response.json()["detail"] and not staged(scim)


def test_an_unknown_domain_answers_404(scim):
    with scim.client("nowhere.com", secret="x") as client:
        response = client.get("/Users")
    assert response.status_code == 404 and "not configured" in response.json()["detail"]


@pytest.mark.parametrize(
    ("content", "headers", "status"),
    [
        (b'{"userName": ', {}, 400),
        (b"userName=ana", {"Content-Type": "application/x-www-form-urlencoded"}, 415),
        (json.dumps(user("ana@globex.com", favouriteColour="blue")).encode(), {}, 400),
        (b'{"schemas": [], "userName": "' + b"a" * (1 << 20) + b'"}', {}, 413),
        (json.dumps(user("not an email")).encode(), {}, 400),
    ],
    ids=["malformed JSON", "wrong content type", "unknown attribute", "over 1 MiB", "bad userName"],
)
def test_bad_requests_get_a_scim_error_and_change_nothing(scim, content, headers, status):
    scim.add_domain("globex.com")
    with scim.client("globex.com") as client:
        response = client.post("/Users", content=content, headers=headers)

    assert response.status_code == status
    assert response.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert not staged(scim)


def test_concurrent_creations_of_one_user_give_one_201_and_one_409(scim):
    scim.add_domain("globex.com")
    barrier = threading.Barrier(8)
    statuses = []

    def push(name):
        with scim.client("globex.com") as client:
            barrier.wait()
            statuses.append(client.post("/Users", json=user(name)).status_code)

    threads = [
        threading.Thread(target=push, args=("ana@globex.com" if i % 2 else "ANA@globex.com",))
        for i in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [201] + [409] * 7
    assert len(staged(scim)) == 1


def test_the_request_log_keeps_no_password(scim):
    scim.add_domain("globex.com")
    with scim.client("globex.com") as client:
        created = client.post("/Users", json=user("ana@globex.com", password="Tr0ub4dor&3"))
        client.patch(
            f"/Users/{created.json()['id']}",
            json={
                "schemas": [PATCH_OP],
                "Operations": [{"op": "replace", "path": "password", "value": "Hunter2!"}],
            },
        )
    scim.flush_log()

    with Session(scim.engine) as session:
        rows = list(session.scalars(select(ScimRequestRow).order_by(ScimRequestRow.id)))
    assert [(r.domain, r.method, r.status) for r in rows] == [
        ("globex.com", "POST", 201),
        ("globex.com", "PATCH", 204),
    ]
    assert all("Tr0ub4dor" not in (r.body or "") and "Hunter2" not in (r.body or "") for r in rows)
    assert "ana@globex.com" in rows[0].body
    assert "Tr0ub4dor" not in json.dumps([row.document for row in staged(scim)])


def test_a_refused_write_leaves_nothing_half_done(scim):
    scim.add_domain("globex.com")
    with scim.client("globex.com") as client:
        client.post("/Users", json=user("ana@globex.com"))
        ben = client.post("/Users", json=user("ben@globex.com", title="Engineer")).json()

        # The write deletes ben's unique values, then fails on ana's userName: all of it
        # is rolled back.
        taken = client.put(f"/Users/{ben['id']}", json=user("Ana@globex.com", title="Boss"))
        again = client.post("/Users", json=user("BEN@globex.com"))
        kept = client.get(f"/Users/{ben['id']}").json()

    assert taken.status_code == 409 and taken.json()["scimType"] == "uniqueness"
    assert again.status_code == 409  # ben's userName is still his
    assert kept["userName"] == "ben@globex.com" and kept["title"] == "Engineer"
    assert kept["meta"]["version"] == ben["meta"]["version"]


@pytest.mark.parametrize(
    "body",
    [
        b'{"userName": "ana@globex.com", "password": "Tr0ub4dor&3"}',
        b'{"userName": "ana@globex.com", "PASSWORD": "Tr0ub4dor&3"}',
        b'{"userName": "ana@globex.com", "p\\u0061ssword": "Tr0ub4dor&3"}',
        b'{"Operations": [{"op": "replace", "path": "password", "value": "Tr0ub4dor&3"}]}',
    ],
)
def test_the_log_never_keeps_a_password_however_it_is_written(body):
    from komeet_sync.sources.scim.request_log import redacted

    logged = redacted(body)
    assert logged is not None and "Tr0ub4dor" not in logged


def test_a_request_for_an_absurd_domain_is_answered_and_logged(scim):
    domain = "x" * 300 + ".com"
    with scim.client(domain, secret="x") as client:
        response = client.get("/Users")
    scim.flush_log()

    assert response.status_code == 404
    with Session(scim.engine) as session:
        [row] = session.scalars(select(ScimRequestRow))
    assert row.status == 404 and len(row.domain) == 253


def test_a_unicode_domain_is_reached_by_every_form_of_its_url(scim):
    secret = scim.add_domain("Bücher.example")
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/scim+json"}
    forms = [
        "xn--bcher-kva.example",  # as stored, and as its SCIM URL is given
        "b%C3%BCcher.example",  # the Unicode name, percent-encoded in UTF-8
        "B%C3%9CCHER.EXAMPLE",  # the same, upper case
        "XN--BCHER-KVA.Example",
        "b%c3%bccher.example.",  # lower-case escapes, and a final dot
    ]
    created = []
    for number, form in enumerate(forms):
        response = httpx.post(
            f"{scim.url}/scim/{form}/v2/Users",
            json=user(f"user{number}@bücher.example"),
            headers=headers,
            timeout=30,
        )
        assert response.status_code == 201, (form, response.text)
        created.append(response.json()["id"])

    for form in forms:
        listed = httpx.get(f"{scim.url}/scim/{form}/v2/Users", headers=headers, timeout=30)
        assert listed.status_code == 200, form
        assert sorted(u["id"] for u in listed.json()["Resources"]) == sorted(created)
        assert all(
            u["meta"]["location"].startswith(f"{scim.url}/scim/xn--bcher-kva.example/v2/")
            for u in listed.json()["Resources"]
        )
    scim.flush_log()
    with Session(scim.engine) as session:
        logged = set(session.scalars(select(ScimRequestRow.domain)))
    assert logged == {"xn--bcher-kva.example"}


def test_a_secret_reaches_no_other_domain_in_any_form(scim):
    scim.add_domain("Bücher.example")
    other = scim.add_domain("globex.com")
    response = httpx.get(
        f"{scim.url}/scim/B%C3%9CCHER.example/v2/Users",
        headers={"Authorization": f"Bearer {other}"},
        timeout=30,
    )
    assert response.status_code == 401
    assert "xn--bcher-kva.example (bücher.example)" in response.json()["detail"]
