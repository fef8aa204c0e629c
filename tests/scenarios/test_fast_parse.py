"""The audit reads its files column by column, and writes exactly what it wrote when every
record went through the per-record reading (kept as the reference): the same reports, the
same plan, the same ids.

Each case runs ``komeet-sync audit`` twice on the same files: as it is, and with the readers
swapped for the per-record ones; then every file of the two ``--out`` folders is compared.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from komeet_sync.emulators.directory_generator import generate_directory
from komeet_sync.model import scim_resources
from tests.support import EXAMPLES

USER_SCHEMA = scim_resources.USER_SCHEMA
ENTERPRISE_SCHEMA = scim_resources.ENTERPRISE_SCHEMA


def use_the_reference_readers(monkeypatch) -> None:
    monkeypatch.setattr(scim_resources, "read_users", scim_resources.read_users_one_by_one)


def audit_twice(cli, monkeypatch, tmp_path: Path, args: list[str]) -> tuple[Path, Path]:
    """The reports of the audit as it is, and of the audit reading record by record."""
    fast, reference = tmp_path / "fast", tmp_path / "reference"
    code, _, err = cli("audit", *args, "--out", str(fast))
    assert code in (0, 3), err
    with monkeypatch.context() as patched:
        use_the_reference_readers(patched)
        reference_code, _, err = cli("audit", *args, "--out", str(reference))
    assert reference_code == code, err
    return fast, reference


def assert_same_reports(fast: Path, reference: Path) -> None:
    names = sorted(path.name for path in reference.iterdir())
    assert names == sorted(path.name for path in fast.iterdir())
    assert "plan.csv" in names and "summary.json" in names
    for name in names:
        if name.endswith(".parquet"):
            pd.testing.assert_frame_equal(
                pd.read_parquet(fast / name), pd.read_parquet(reference / name)
            )
        else:
            assert (fast / name).read_bytes() == (reference / name).read_bytes(), name
    summary = json.loads((fast / "summary.json").read_text())
    assert summary["plan_id"] == json.loads((reference / "summary.json").read_text())["plan_id"]


def test_the_bundled_google_example(cli, monkeypatch, tmp_path):
    acme = EXAMPLES / "acme"
    args = [
        "--domain", "acme.com", "--alias-domain", "acme.io", "--group", "all@acme.com",
        "--protect", "it-admin@acme.com",
        "--google-users", str(acme / "users.json"),
        "--google-members", str(acme / "members.json"),
        "--komeet", str(acme / "komeet_users.json"),
    ]  # fmt: skip
    assert_same_reports(*audit_twice(cli, monkeypatch, tmp_path, args))


def test_the_bundled_scim_example(cli, monkeypatch, tmp_path):
    globex = EXAMPLES / "globex"
    args = [
        "--domain", "globex.com", "--group", "Komeet Users",
        "--scim-users", str(globex / "scim_users.json"),
        "--scim-groups", str(globex / "scim_groups.json"),
        "--komeet", str(globex / "komeet_users.json"),
    ]  # fmt: skip
    assert_same_reports(*audit_twice(cli, monkeypatch, tmp_path, args))


def quirk(rng: random.Random, resource: dict[str, Any]) -> Any:
    """A resource as some source or some Komeet export might hold it: most as they are, the
    others with names in another case, unknown or URN-qualified attributes, odd or bad
    values, or no id."""
    roll = rng.random()
    if roll < 0.75:
        return resource
    changed = dict(resource)
    kind = rng.randrange(12)
    if kind == 0:
        changed = {key.upper(): value for key, value in changed.items() if key != "schemas"}
    elif kind == 1:
        changed["x-idp-attribute"] = {"nested": [1, 2]}
    elif kind == 2:
        changed["userName"] = changed["userName"].upper()
    elif kind == 3:
        changed["emails"] = [{"value": "not an address", "primary": True}]
    elif kind == 4:
        changed.pop("id")
    elif kind == 5:
        changed["active"] = rng.choice(["false", "True", 0, None])
    elif kind == 6:
        changed[ENTERPRISE_SCHEMA.lower()] = {"employeeNumber": f"E{rng.randrange(99)}"}
    elif kind == 7:
        changed["name"] = {"GivenName": "Zoé", "familyName": None, "nickname": "z"}
    elif kind == 8:
        changed["meta"] = {"created": rng.choice(["2024-02-30T00:00:00Z", "2024-01-01"])}
    elif kind == 9:
        changed["emails"] = [{"value": f"  {changed['userName']}  ", "type": "work"}]
    elif kind == 10:
        changed[f"{USER_SCHEMA}:userName"] = "ignored@acme.com"
    else:
        return rng.choice([None, "a string", 42, []])
    return changed


def komeet_accounts(rng: random.Random, users: list[dict[str, Any]], domain: str) -> list:
    """Komeet accounts for most people of a directory (some without externalId, some
    inactive), accounts of people who left, and a few records with quirks."""
    accounts: list[Any] = []
    for number, user in enumerate(users):
        if rng.random() < 0.05:
            continue  # a joiner
        email = user.get("primaryEmail") or user.get("userName")
        account: dict[str, Any] = {
            "schemas": [USER_SCHEMA],
            "id": f"k{number}",
            "userName": email,
            "name": {"givenName": "Given", "familyName": "Family"},
            "active": rng.random() > 0.03,
            "emails": [{"value": email, "type": "work", "primary": True}],
            "meta": {"resourceType": "User", "created": "2025-01-10T10:00:00Z"},
        }
        if rng.random() < 0.9:
            account["externalId"] = user.get("externalId") or user["id"]
        if rng.random() < 0.2:
            account["schemas"] = [USER_SCHEMA, ENTERPRISE_SCHEMA]
            account[ENTERPRISE_SCHEMA] = {"employeeNumber": f"E{number:07d}"}
        accounts.append(quirk(rng, account))
    for number in range(max(1, len(users) // 50)):
        accounts.append(
            {
                "id": f"left{number}",
                "userName": f"left.{number}@{domain}",
                "externalId": f"gone{number}",
                "active": True,
            }
        )
    return accounts


def scim_users(rng: random.Random, users: list[dict[str, Any]]) -> list:
    """The directory's people as an IdP pushes them (RFC 7643 §4.1, with the enterprise
    extension), a few with quirks."""
    staged = []
    for user in users:
        resource: dict[str, Any] = {
            "schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA],
            "id": f"stg-{user['id']}",
            "externalId": user["id"],
            "userName": user["primaryEmail"],
            "active": not user.get("suspended"),
            "displayName": user["name"].get("fullName"),
            "name": {
                "givenName": user["name"].get("givenName"),
                "familyName": user["name"].get("familyName"),
            },
            "emails": [{"value": user["primaryEmail"], "type": "work", "primary": True}]
            + [{"value": alias, "type": "work"} for alias in user.get("aliases", [])],
            ENTERPRISE_SCHEMA: {"department": user.get("orgUnitPath", "/").strip("/") or None},
            "meta": {"resourceType": "User", "created": user.get("creationTime")},
        }
        staged.append(quirk(rng, resource))
    return staged


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_generated_google_directories(cli, monkeypatch, tmp_path, seed):
    generated = generate_directory(400, domain="acme.com", groups=3, nesting=1, seed=seed)
    rng = random.Random(seed)
    users = list(generated.directory.users)
    rng.shuffle(users)
    members = {
        group["email"]: group["members"]
        for group in generated.directory.groups
        if group["email"] in generated.selected
    }
    (tmp_path / "users.json").write_text(json.dumps({"users": users}))
    (tmp_path / "members.json").write_text(json.dumps(members))
    (tmp_path / "komeet.json").write_text(
        json.dumps({"Resources": komeet_accounts(rng, users, "acme.com")})
    )
    args = ["--domain", "acme.com", "--max-deactivation-share", "1"]
    for group in generated.selected:
        args += ["--group", group]
    args += [
        "--google-users", str(tmp_path / "users.json"),
        "--google-members", str(tmp_path / "members.json"),
        "--komeet", str(tmp_path / "komeet.json"),
    ]  # fmt: skip
    assert_same_reports(*audit_twice(cli, monkeypatch, tmp_path, args))


@pytest.mark.parametrize("seed", [4, 5])
def test_generated_scim_directories(cli, monkeypatch, tmp_path, seed):
    generated = generate_directory(300, domain="acme.com", groups=1, nesting=0, seed=seed)
    rng = random.Random(seed)
    users = list(generated.directory.users)
    staged = scim_users(rng, users)
    selected = [user for user in staged if isinstance(user, dict) and rng.random() < 0.8]
    group = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": "g1",
        "displayName": "Komeet Users",
        "members": [{"value": user["id"]} for user in selected if "id" in user],
    }
    (tmp_path / "scim_users.json").write_text(json.dumps({"Resources": staged}))
    (tmp_path / "scim_groups.json").write_text(json.dumps([group]))
    (tmp_path / "komeet.json").write_text(
        json.dumps({"Resources": komeet_accounts(rng, users, "acme.com")})
    )
    args = [
        "--domain", "acme.com", "--group", "Komeet Users", "--max-deactivation-share", "1",
        "--scim-users", str(tmp_path / "scim_users.json"),
        "--scim-groups", str(tmp_path / "scim_groups.json"),
        "--komeet", str(tmp_path / "komeet.json"),
    ]  # fmt: skip
    assert_same_reports(*audit_twice(cli, monkeypatch, tmp_path, args))


def test_the_reference_readers_are_not_the_fast_ones():
    """The comparison above compares two readings, not one with itself."""
    assert scim_resources.read_users is not scim_resources.read_users_one_by_one
