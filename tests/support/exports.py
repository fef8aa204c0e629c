"""Hand-written directory data in the sources' own formats, for the scenario tests."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from tests.support import EXAMPLES


def google_user(
    uid: str, email: str, given: str = "Given", family: str = "Family", **extra: Any
) -> dict[str, Any]:
    user = {
        "kind": "admin#directory#user",
        "id": uid,
        "primaryEmail": email,
        "name": {"givenName": given, "familyName": family},
        "suspended": False,
        "archived": False,
    }
    user.update(extra)
    return user


def member(uid: str, email: str, kind: str = "USER") -> dict[str, Any]:
    return {
        "kind": "admin#directory#member",
        "id": uid,
        "email": email,
        "role": "MEMBER",
        "type": kind,
        "status": "ACTIVE",
    }


def scim_user(
    rid: str,
    user_name: str,
    given: str = "Given",
    family: str = "Family",
    external_id: str | None = None,
    active: Any = True,
    **extra: Any,
) -> dict[str, Any]:
    user: dict[str, Any] = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": rid,
        "userName": user_name,
        "name": {"givenName": given, "familyName": family},
        "active": active,
    }
    if external_id is not None:
        user["externalId"] = external_id
    user.update(extra)
    return user


def scim_group(gid: str, name: str, members: list[str]) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": gid,
        "displayName": name,
        "members": [{"value": m} for m in members],
    }


def account(
    kid: str,
    user_name: str,
    external_id: str | None = None,
    given: str = "Given",
    family: str = "Family",
    active: bool = True,
) -> dict[str, Any]:
    return scim_user(kid, user_name, given, family, external_id=external_id, active=active)


@dataclass
class Audit:
    """One audit's input files and, once run, its outcome."""

    root: Path
    domain: str = "acme.com"
    groups: list[str] = field(default_factory=lambda: ["all@acme.com"])
    args: list[str] = field(default_factory=list)

    def files(
        self, *, users=None, members=None, scim_users=None, scim_groups=None, komeet=()
    ) -> list[str]:
        self.root.mkdir(parents=True, exist_ok=True)
        args = []
        for flag, name, content in (
            ("--google-users", "users.json", users),
            ("--google-members", "members.json", members),
            ("--scim-users", "scim_users.json", scim_users),
            ("--scim-groups", "scim_groups.json", scim_groups),
            ("--komeet", "komeet_users.json", komeet if isinstance(komeet, dict) else list(komeet)),
        ):
            if content is not None:
                (self.root / name).write_text(json.dumps(content))
                args += [flag, str(self.root / name)]
        return args

    def run(self, cli, **contents) -> tuple[int, dict[str, Any]]:
        group_args = [arg for group in self.groups for arg in ("--group", group)]
        code, out, err = cli(
            "audit",
            "--domain",
            self.domain,
            *group_args,
            *self.args,
            *self.files(**contents),
            "--out",
            str(self.root / "out"),
            "--json",
        )
        assert code in (0, 3), err
        return code, json.loads(out)

    def report(self, name: str) -> pd.DataFrame:
        return pd.read_csv(self.root / "out" / f"{name}.csv", dtype=str, keep_default_na=False)


def example_args(out: Path) -> list[str]:
    """``komeet-sync audit`` of the bundled acme.com exports, its reports to ``out``."""
    acme = EXAMPLES / "acme"
    return [
        "audit",
        "--domain",
        "acme.com",
        "--alias-domain",
        "acme.io",
        "--group",
        "all@acme.com",
        "--protect",
        "it-admin@acme.com",
        "--google-users",
        str(acme / "users.json"),
        "--google-members",
        str(acme / "members.json"),
        "--komeet",
        str(acme / "komeet_users.json"),
        "--out",
        str(out),
    ]
