"""Requests as Microsoft Entra ID and Okta really send them, one test per form.

The bodies follow the identity providers' own documentation:

- Microsoft Learn, "Tutorial: Develop and plan provisioning for a SCIM endpoint in
  Microsoft Entra ID" (use-scim-to-provision-users-and-groups): the request examples
  "Create User", "Update User [Multi-valued properties]", "Update User [Add Manager]",
  "Disable User", "Create Group", "Update Group [Add Members]", "Update Group [Remove
  Members]", "Delete User", and the extension attribute
  ``urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User:CustomAttribute``;
- Microsoft Learn, "Known issues and resolutions with SCIM 2.0 protocol compliance of the
  Microsoft Entra user provisioning service": ``op`` in any case, ``"active": "False"``,
  members removed with a value list, a path-less replace with ``name.givenName`` and
  ``urn:...:enterprise:2.0:User:...`` keys;
- Okta Developer, "Okta and SCIM Version 2.0" (SCIM 2.0 provisioning reference): user
  creation with ``password``, ``GET /Users?startIndex=1&count=100``,
  ``filter=userName eq "..."``, 409 for an existing user, ``PUT`` of the whole user, the
  path-less ``{"op": "replace", "value": {"active": false}}``, group push and membership.

Every test sends real HTTP to the endpoint and checks the status and what was staged.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from komeet_sync.store.tables import ScimMembershipRow, ScimRequestRow, ScimResourceRow
from tests.support.scim_server import ENTERPRISE, GROUP, PATCH_OP, USER

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
CUSTOM_EXTENSION = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User"


# -- request bodies, as the documentation shows them --


def entra_user(user_name: str, given: str = "Ana", family: str = "Costa", **extra) -> dict:
    """Entra ID's "Create User" body (the tutorial's request example)."""
    return {
        "schemas": [USER, ENTERPRISE],
        "externalId": f"ext-{user_name.split('@')[0]}",
        "userName": user_name,
        "active": True,
        "displayName": f"{given} {family}",
        "emails": [{"primary": True, "type": "work", "value": user_name}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": f"{given} {family}", "familyName": family, "givenName": given},
        "roles": [],
        ENTERPRISE: {"department": "Finance", "employeeNumber": "1001"},
        **extra,
    }


def okta_user(user_name: str, given: str = "Ana", family: str = "Costa", **extra) -> dict:
    """Okta's "Create users" body (SCIM 2.0 reference), with the password Okta sends."""
    return {
        "schemas": [USER],
        "userName": user_name,
        "name": {"givenName": given, "familyName": family},
        "emails": [{"primary": True, "value": user_name, "type": "work"}],
        "displayName": f"{given} {family}",
        "locale": "en-US",
        "externalId": f"00u{user_name.split('@')[0].replace('.', '')}",
        "groups": [],
        "password": "1mz050nq",
        "active": True,
        **extra,
    }


def patch_op(*operations: dict) -> dict:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


# -- reading staging --


def row_of(scim, resource_id: str) -> ScimResourceRow:
    with Session(scim.engine) as session:
        row = session.get(ScimResourceRow, resource_id)
        assert row is not None, f"no staged row {resource_id}"
        session.expunge(row)
        return row


def document(scim, resource_id: str) -> dict:
    return row_of(scim, resource_id).document


def staged(scim) -> list[ScimResourceRow]:
    with Session(scim.engine) as session:
        return list(session.scalars(select(ScimResourceRow)))


def members_of(scim, group_id: str) -> set[str]:
    with Session(scim.engine) as session:
        rows = session.scalars(
            select(ScimMembershipRow.member_id).where(ScimMembershipRow.group_id == group_id)
        )
        return set(rows)


def document_members(scim, group_id: str) -> set[str]:
    return {member["value"] for member in document(scim, group_id).get("members") or []}


def create(client, body: dict, resource: str = "/Users") -> str:
    response = client.post(resource, json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def assert_patched(response) -> None:
    # RFC 7644 §3.5.2: 200 with the resource, or 204 No Content.
    assert response.status_code in (200, 204), response.text


# -- 1. op in any case --


def test_op_in_any_case_as_entra_sends_it(scim):
    scim.add_domain("globex.com")
    with scim.client("globex.com") as client:
        user_id = create(client, entra_user("ana.costa@globex.com", nickName="Nana"))
        response = client.patch(
            f"/Users/{user_id}",
            json=patch_op(
                {"op": "Replace", "path": "name.givenName", "value": "Ana Maria"},
                {"op": "Add", "path": "title", "value": "Controller"},
                {"op": "Remove", "path": "nickName"},
            ),
        )

    assert_patched(response)
    staged_user = document(scim, user_id)
    assert staged_user["name"]["givenName"] == "Ana Maria"
    assert staged_user["title"] == "Controller"
    assert staged_user.get("nickName") is None


# -- 2. booleans as strings --


def test_active_as_a_string_in_post_and_in_patch(scim):
    scim.add_domain("globex.com")
    with scim.client("globex.com") as client:
        created = client.post("/Users", json=entra_user("ana.costa@globex.com", active="False"))
        other_id = create(client, entra_user("bo.silva@globex.com", "Bo", "Silva"))
        # Known issues: without the aadOptscim062020 flag, Entra disables a user so.
        disabled = client.patch(
            f"/Users/{other_id}",
            json=patch_op({"op": "Replace", "path": "active", "value": "False"}),
        )

    assert created.status_code == 201, created.text
    assert document(scim, created.json()["id"])["active"] is False
    assert_patched(disabled)
    assert document(scim, other_id)["active"] is False


# -- 3. members removed with a value list --


def test_group_member_removal_with_a_value_list(scim):
    scim.add_domain("globex.com")
    with scim.client("globex.com") as client:
        ana = create(client, entra_user("ana.costa@globex.com"))
        bo = create(client, entra_user("bo.silva@globex.com", "Bo", "Silva"))
        group_id = create(
            client,
            {
                "schemas": [GROUP],
                "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
                "displayName": "Finance",
                "meta": {"resourceType": "Group"},
                "members": [{"value": ana}, {"value": bo}],
            },
            "/Groups",
        )
        response = client.patch(
            f"/Groups/{group_id}",
            json=patch_op(
                {"op": "Remove", "path": "members", "value": [{"$ref": None, "value": ana}]}
            ),
        )

    assert_patched(response)
    assert document_members(scim, group_id) == {bo}
    assert members_of(scim, group_id) == {bo}


# -- 4. filtered paths that create or replace the entry --


def test_filtered_email_path_creates_the_entry_then_replaces_it(scim):
    scim.add_domain("globex.com")
    with scim.client("globex.com") as client:
        body = entra_user("ana.costa@globex.com")
        del body["emails"]
        user_id = create(client, body)
        added = client.patch(
            f"/Users/{user_id}",
            json=patch_op(
                {
                    "op": "Add",
                    "path": 'emails[type eq "work"].value',
                    "value": "ana.costa@globex.com",
                }
            ),
        )
        after_add = document(scim, user_id)["emails"]
        replaced = client.patch(
            f"/Users/{user_id}",
            json=patch_op(
                {
                    "op": "Replace",
                    "path": 'emails[type eq "work"].value',
                    "value": "ana.maria.costa@globex.com",
                },
                {"op": "Replace", "path": "name.familyName", "value": "Costa Lima"},
            ),
        )

    assert_patched(added)
    assert [(e["type"], e["value"]) for e in after_add] == [("work", "ana.costa@globex.com")]
    assert_patched(replaced)
    staged_user = document(scim, user_id)
    assert [(e["type"], e["value"]) for e in staged_user["emails"]] == [
        ("work", "ana.maria.costa@globex.com")
    ]
    assert staged_user["name"]["familyName"] == "Costa Lima"


def test_filtered_email_path_replaces_an_existing_work_email(scim):
    scim.add_domain("globex.com")
    with scim.client("globex.com") as client:
        user_id = create(client, entra_user("ana.costa@globex.com"))
        response = client.patch(
            f"/Users/{user_id}",
            json=patch_op(
                {
                    "op": "Replace",
                    "path": 'emails[type eq "work"].value',
                    "value": "ana.maria.costa@globex.com",
                }
            ),
        )

    assert_patched(response)
    [email] = document(scim, user_id)["emails"]
    assert email["value"] == "ana.maria.costa@globex.com"
    assert email["type"] == "work" and email["primary"] is True


# -- 5. path-less replace with dotted keys or URN keys --


def test_pathless_replace_with_dotted_and_urn_keys(scim):
    scim.add_domain("globex.com")
    with scim.client("globex.com") as client:
        user_id = create(client, entra_user("ana.costa@globex.com"))
        dotted = client.patch(
            f"/Users/{user_id}",
            json=patch_op({"op": "replace", "value": {"name.givenName": "X", "active": False}}),
        )
        after_dotted = document(scim, user_id)
        # Known issues, "Requests to replace multiple attributes" (with the flag).
        urns = client.patch(
            f"/Users/{user_id}",
            json=patch_op(
                {
                    "op": "replace",
                    "value": {
                        "displayName": "Ana Lima",
                        'emails[type eq "work"].value': "ana.lima@globex.com",
                        "name.familyName": "Lima",
                        "externalId": "Eqpj",
                        f"{ENTERPRISE}:department": "Sales",
                        f"{ENTERPRISE}:employeeNumber": "2002",
                    },
                }
            ),
        )

    assert_patched(dotted)
    assert after_dotted["name"]["givenName"] == "X" and after_dotted["active"] is False
    assert after_dotted["name"]["familyName"] == "Costa"
    assert_patched(urns)
    staged_user = document(scim, user_id)
    assert staged_user["displayName"] == "Ana Lima"
    assert staged_user["name"] == {"formatted": "Ana Costa", "givenName": "X", "familyName": "Lima"}
    assert [e["value"] for e in staged_user["emails"]] == ["ana.lima@globex.com"]
    assert staged_user["externalId"] == "Eqpj"
    assert staged_user[ENTERPRISE]["department"] == "Sales"
    assert staged_user[ENTERPRISE]["employeeNumber"] == "2002"


# -- 6. unknown schema URIs and null attributes --


def test_unknown_extension_and_null_attributes_are_accepted_and_not_stored(scim):
    scim.add_domain("globex.com")
    body = entra_user("ana.costa@globex.com", title=None, preferredLanguage=None)
    body["schemas"] = [USER, ENTERPRISE, CUSTOM_EXTENSION]
    body[CUSTOM_EXTENSION] = {"CustomAttribute": "Blue"}
    with scim.client("globex.com") as client:
        created = client.post("/Users", json=body)
        user_id = created.json().get("id")
        patched = client.patch(
            f"/Users/{user_id}",
            json=patch_op(
                {"op": "Add", "path": f"{CUSTOM_EXTENSION}:CustomAttribute", "value": "Green"},
                {"op": "Replace", "path": "displayName", "value": "Ana C."},
            ),
        )
        fetched = client.get(f"/Users/{user_id}")

    assert created.status_code == 201, created.text
    assert_patched(patched)
    staged_user = document(scim, user_id)
    assert CUSTOM_EXTENSION not in staged_user
    assert CUSTOM_EXTENSION not in staged_user["schemas"]
    assert "Blue" not in str(staged_user) and "Green" not in str(staged_user)
    assert staged_user.get("title") is None and staged_user.get("preferredLanguage") is None
    assert staged_user["displayName"] == "Ana C."
    assert staged_user[ENTERPRISE]["department"] == "Finance"
    assert fetched.status_code == 200 and CUSTOM_EXTENSION not in fetched.json()


# -- 7. manager as a string, an object or a list --

MANAGER_FORMS = {
    "string": lambda manager_id: manager_id,
    "object": lambda manager_id: {"value": manager_id},
    "list": lambda manager_id: [{"$ref": None, "value": manager_id}],
}


def test_manager_in_every_form_in_post_and_patch(scim):
    scim.add_domain("globex.com")
    with scim.client("globex.com") as client:
        boss = create(client, entra_user("bo.silva@globex.com", "Bo", "Silva"))
        new_boss = create(client, entra_user("cy.lopes@globex.com", "Cy", "Lopes"))
        for form, make in MANAGER_FORMS.items():
            body = entra_user(f"{form}.report@globex.com", "Report", form.title())
            body[ENTERPRISE] = {"department": "Finance", "manager": make(boss)}
            created = client.post("/Users", json=body)
            assert created.status_code == 201, (form, created.text)
            user_id = created.json()["id"]
            assert document(scim, user_id)[ENTERPRISE]["manager"] == {"value": boss}, form

            # Entra's "Update User [Add Manager]" request.
            patched = client.patch(
                f"/Users/{user_id}",
                json=patch_op(
                    {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": make(new_boss)}
                ),
            )
            assert patched.status_code in (200, 204), (form, patched.text)
            assert document(scim, user_id)[ENTERPRISE]["manager"] == {"value": new_boss}, form


# -- 8. Okta's paging and userName filter --


def test_okta_paging_and_case_insensitive_user_name_filter(scim):
    scim.add_domain("globex.com")
    with scim.client("globex.com") as client:
        ids = {
            create(client, okta_user(f"user{i:03d}@globex.com", "User", f"N{i}"))
            for i in range(104)
        }
        ids.add(create(client, okta_user("Ana.Costa@globex.com")))
        first = client.get("/Users", params={"startIndex": 1, "count": 100})
        second = client.get("/Users", params={"startIndex": 101, "count": 100})
        found = client.get(
            "/Users",
            params={"filter": 'userName eq "ana.costa@GLOBEX.com"', "startIndex": 1, "count": 100},
        )
        missing = client.get(
            "/Users",
            params={"filter": 'userName eq "nobody@globex.com"', "startIndex": 1, "count": 100},
        )

    assert first.status_code == second.status_code == 200
    page1, page2 = first.json(), second.json()
    assert page1["schemas"] == [LIST_RESPONSE]
    assert (page1["totalResults"], page1["itemsPerPage"], page1["startIndex"]) == (105, 100, 1)
    assert len(page1["Resources"]) == 100
    assert (page2["totalResults"], page2["itemsPerPage"], page2["startIndex"]) == (105, 5, 101)
    assert len(page2["Resources"]) == 5
    assert {r["id"] for r in page1["Resources"] + page2["Resources"]} == ids

    assert found.status_code == 200, found.text
    assert found.json()["totalResults"] == 1
    assert [r["userName"] for r in found.json()["Resources"]] == ["Ana.Costa@globex.com"]
    assert missing.status_code == 200, missing.text
    assert missing.json()["totalResults"] == 0 and not missing.json().get("Resources")


# -- 9. a duplicate userName in another case --


def test_duplicate_user_name_in_another_case_is_a_409_uniqueness(scim):
    scim.add_domain("globex.com")
    with scim.client("globex.com") as client:
        first_id = create(client, okta_user("ana.costa@globex.com"))
        duplicate = client.post("/Users", json=okta_user("ANA.Costa@Globex.com"))

    assert duplicate.status_code == 409, duplicate.text
    error = duplicate.json()
    assert error["schemas"] == [ERROR] and error["scimType"] == "uniqueness"
    assert [row.id for row in staged(scim)] == [first_id]


# -- 10. full PUT --


def test_put_replaces_the_whole_user(scim):
    scim.add_domain("globex.com")
    with scim.client("globex.com") as client:
        user_id = create(
            client,
            okta_user(
                "ana.costa@globex.com",
                title="Analyst",
                nickName="Nana",
                schemas=[USER, ENTERPRISE],
                **{ENTERPRISE: {"department": "Finance"}},
            ),
        )
        body = okta_user("ana.costa@globex.com", "Ana", "Lima")
        del body["password"]
        response = client.put(f"/Users/{user_id}", json={**body, "id": user_id})

    assert response.status_code == 200, response.text
    staged_user = document(scim, user_id)
    assert staged_user["name"] == {"givenName": "Ana", "familyName": "Lima"}
    assert staged_user.get("title") is None
    assert staged_user.get("nickName") is None
    assert not staged_user.get(ENTERPRISE)
    assert response.json().get("title") is None


# -- 11. PATCH active false, then true --


def test_okta_deactivates_then_reactivates_a_user(scim):
    scim.add_domain("globex.com")
    with scim.client("globex.com") as client:
        user_id = create(client, okta_user("ana.costa@globex.com"))
        deactivated = client.patch(
            f"/Users/{user_id}", json=patch_op({"op": "replace", "value": {"active": False}})
        )
        after_deactivation = document(scim, user_id)["active"]
        reactivated = client.patch(
            f"/Users/{user_id}", json=patch_op({"op": "replace", "value": {"active": True}})
        )

    assert_patched(deactivated)
    assert after_deactivation is False
    assert_patched(reactivated)
    assert document(scim, user_id)["active"] is True


# -- 12. group push and membership --


def test_group_push_and_membership_add_remove_replace(scim):
    scim.add_domain("globex.com")
    with scim.client("globex.com") as client:
        ana = create(client, okta_user("ana.costa@globex.com"))
        bo = create(client, okta_user("bo.silva@globex.com", "Bo", "Silva"))
        cy = create(client, okta_user("cy.lopes@globex.com", "Cy", "Lopes"))
        pushed = client.post(
            "/Groups",
            json={
                "schemas": [GROUP],
                "displayName": "Finance",
                "members": [{"value": ana, "display": "ana.costa@globex.com"}],
            },
        )
        group_id = pushed.json()["id"]
        after_push = (document_members(scim, group_id), members_of(scim, group_id))

        added = client.patch(
            f"/Groups/{group_id}",
            json=patch_op(
                {
                    "op": "add",
                    "path": "members",
                    "value": [{"value": bo, "display": "bo.silva@globex.com"}],
                }
            ),
        )
        after_add = (document_members(scim, group_id), members_of(scim, group_id))

        removed = client.patch(
            f"/Groups/{group_id}",
            json=patch_op({"op": "remove", "path": f'members[value eq "{ana}"]'}),
        )
        after_remove = (document_members(scim, group_id), members_of(scim, group_id))

        replaced = client.patch(
            f"/Groups/{group_id}",
            json=patch_op({"op": "replace", "path": "members", "value": [{"value": cy}]}),
        )

    assert pushed.status_code == 201, pushed.text
    assert document(scim, group_id)["displayName"] == "Finance"
    assert after_push == ({ana}, {ana})
    assert_patched(added)
    assert after_add == ({ana, bo}, {ana, bo})
    assert_patched(removed)
    assert after_remove == ({bo}, {bo})
    assert_patched(replaced)
    assert (document_members(scim, group_id), members_of(scim, group_id)) == ({cy}, {cy})


def test_okta_renames_a_group_with_a_pathless_replace(scim):
    # Okta, "Update a specific group name": the value carries the group's id as well.
    scim.add_domain("globex.com")
    with scim.client("globex.com") as client:
        group_id = create(client, {"schemas": [GROUP], "displayName": "Finance"}, "/Groups")
        response = client.patch(
            f"/Groups/{group_id}",
            json=patch_op(
                {"op": "replace", "value": {"id": group_id, "displayName": "Finance EMEA"}}
            ),
        )

    assert_patched(response)
    assert document(scim, group_id)["displayName"] == "Finance EMEA"


# -- 13. DELETE keeps a leaver --


def test_deleted_user_is_gone_from_scim_but_kept_as_a_leaver(scim):
    from komeet_sync.sources.scim.staging import read_staging
    from komeet_sync.store.domains import DomainStore

    scim.add_domain("globex.com")
    with scim.client("globex.com") as client:
        user_id = create(client, entra_user("ana.costa@globex.com"))
        kept_id = create(client, entra_user("bo.silva@globex.com", "Bo", "Silva"))
        deleted = client.delete(f"/Users/{user_id}")
        fetched = client.get(f"/Users/{user_id}")
        listed = client.get("/Users", params={"filter": 'userName eq "ana.costa@globex.com"'})

    assert deleted.status_code == 204, deleted.text
    assert fetched.status_code == 404
    assert listed.json()["totalResults"] == 0
    row = row_of(scim, user_id)
    assert row.deleted_at is not None
    assert row.document["userName"] == "ana.costa@globex.com"
    assert row_of(scim, kept_id).deleted_at is None

    config = DomainStore(scim.engine).get("globex.com")
    users = read_staging(scim.engine, config).users.set_index("account_id")
    assert not users.loc[user_id, "active"]
    assert "deleted" in users.loc[user_id, "inactive_reason"]
    assert users.loc[kept_id, "active"]


# -- 14. userName outside the domain --


def test_user_name_not_an_email_or_not_in_the_domain_is_a_400_invalid_value(scim):
    scim.add_domain("globex.com", alias_domains=["globex.io"])
    with scim.client("globex.com") as client:
        not_an_email = client.post("/Users", json=entra_user("Ana Costa"))
        other_domain = client.post("/Users", json=entra_user("ana.costa@initech.com"))
        alias = client.post("/Users", json=entra_user("x@globex.io", "X", "Io"))

    for response in (not_an_email, other_domain):
        assert response.status_code == 400, response.text
        error = response.json()
        assert error["schemas"] == [ERROR] and error["scimType"] == "invalidValue"
        assert "globex.com" in error["detail"]
    assert alias.status_code == 201, alias.text
    assert [row.document["userName"] for row in staged(scim)] == ["x@globex.io"]


# -- 15. Okta's password --


def test_okta_password_is_neither_staged_nor_logged(scim):
    scim.add_domain("globex.com")
    with scim.client("globex.com") as client:
        created = client.post("/Users", json=okta_user("ana.costa@globex.com"))
    scim.flush_log()

    assert created.status_code == 201, created.text
    assert "password" not in created.json() and "1mz050nq" not in created.text
    staged_user = document(scim, created.json()["id"])
    assert staged_user["userName"] == "ana.costa@globex.com"
    assert staged_user.get("password") is None and "1mz050nq" not in str(staged_user)
    with Session(scim.engine) as session:
        [logged] = session.scalars(select(ScimRequestRow).where(ScimRequestRow.method == "POST"))
    assert logged.status == 201 and "ana.costa@globex.com" in logged.body
    assert "1mz050nq" not in logged.body and "password" not in logged.body
