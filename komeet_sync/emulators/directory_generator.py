"""Realistic synthetic Google Workspace directories of any size, the same for the same seed.

What real directories hold and the sync must handle: a super admin in no group, suspended
and archived users, aliases and Google's non-editable aliases, people renamed (their old
address kept as an alias), employee ids, users missing a family name, selected groups with
nested groups (``nesting`` levels below each), members from outside the domain, and users
in no selected group. The names are invented from common first and last names.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from komeet_sync.emulators.directory import Directory

GIVEN = tuple(
    str.split(
        "alex amina anna arthur ava camille chloe david elena emma ethan farid gabriel "
        "hana hugo ines isaac jade jules karim kenji lea leo lina louis lucas maria "
        "marie mateo mia nadia noah nora olga omar paul rosa ruth sami sara sofia theo "
        "tom yara yusuf zoe"
    )
)
FAMILY = tuple(
    str.split(
        "adams bakker bernard blanc chen costa dubois durand fischer fontaine garcia "
        "haddad ivanova jensen kim kowalski lambert larsen lefebvre leroy martin meyer "
        "moreau muller nguyen novak oconnor okafor petit rossi roux santos schmidt silva "
        "simon tanaka weber"
    )
)
ORG_UNITS = ("/", "/Engineering", "/Sales", "/Support", "/Finance", "/Contractors")
NEVER = "1970-01-01T00:00:00.000Z"  # Google's lastLoginTime of a user who never signed in


@dataclass(frozen=True)
class GeneratedDirectory:
    directory: Directory
    domain: str
    admin: str  # the super admin that delegation acts as
    selected: tuple[str, ...]  # the group emails a domain configuration would select


def generate_directory(
    users: int,
    *,
    domain: str = "example.com",
    groups: int = 10,
    group_size: int | None = None,
    nesting: int = 2,
    seed: int = 0,
    other_groups: int = 0,
) -> GeneratedDirectory:
    """``users`` users (the admin included) and ``groups`` selected groups of
    ``group_size`` members each (derived, nested groups flattened), ``nesting`` levels deep;
    ``other_groups`` more groups that no configuration selects (``_other_group``), as a large
    Workspace has thousands: mailing lists, projects, teams.
    """
    if users < 2:
        raise ValueError(f"users={users}: a directory needs its admin and at least one user")
    rng = random.Random(seed)
    admin = f"admin@{domain}"
    records = [_admin(admin)] + [_user(rng, number, domain) for number in range(1, users)]
    # The last 5% of users are in no selected group.
    pool = max(1, int((users - 1) * 0.95))
    size = min(group_size or max(1, pool // max(groups, 1)), pool)
    group_records: list[dict[str, Any]] = []
    selected = []
    for number in range(groups):
        chosen = rng.sample(range(1, pool + 1), size)
        email = f"team{number:03d}@{domain}"
        selected.append(email)
        group_records.extend(_nested_group(rng, email, chosen, records, nesting, number))
    others = random.Random(seed + 1)  # the selected groups stay those of the same seed
    group_records.extend(
        _other_group(others, number, records, domain) for number in range(other_groups)
    )
    return GeneratedDirectory(
        directory=Directory(users=records, groups=group_records),
        domain=domain,
        admin=admin,
        selected=tuple(selected),
    )


def _admin(email: str) -> dict[str, Any]:
    return {
        "kind": "admin#directory#user",
        "id": "100000000000000000000",
        "primaryEmail": email,
        "name": {"givenName": "Workspace", "familyName": "Admin", "fullName": "Workspace Admin"},
        "isAdmin": True,
        "suspended": False,
        "archived": False,
        "emails": [{"address": email, "primary": True}],
        "orgUnitPath": "/",
        "creationTime": "2015-01-05T09:00:00.000Z",
        "lastLoginTime": "2026-11-20T08:00:00.000Z",
    }


def _user(rng: random.Random, number: int, domain: str) -> dict[str, Any]:
    given, family = rng.choice(GIVEN), rng.choice(FAMILY)
    local = f"{given}.{family}.{number}"
    primary = f"{local}@{domain}"
    aliases: list[str] = []
    roll = rng.random()
    if roll < 0.10:
        aliases.append(f"{given[0]}{family}{number}@{domain}")
    elif roll < 0.12:  # renamed: the old address stays as an alias
        aliases.append(f"{given}.{rng.choice(FAMILY)}.{number}@{domain}")
    user: dict[str, Any] = {
        "kind": "admin#directory#user",
        "id": str(100000000000000000000 + number * 7919),
        "primaryEmail": primary,
        "name": {
            "givenName": given.title(),
            "familyName": "" if rng.random() < 0.002 else family.title(),
            "fullName": f"{given.title()} {family.title()}",
        },
        "isAdmin": False,
        "suspended": False,
        "archived": False,
        "emails": [{"address": primary, "primary": True}]
        + [{"address": alias} for alias in aliases],
        "orgUnitPath": rng.choice(ORG_UNITS),
        "creationTime": f"{rng.randint(2015, 2026)}-{rng.randint(1, 12):02d}-"
        f"{rng.randint(1, 28):02d}T09:00:00.000Z",
        "lastLoginTime": NEVER
        if rng.random() < 0.05
        else f"2026-{rng.randint(1, 11):02d}-{rng.randint(1, 28):02d}T08:30:00.000Z",
    }
    state = rng.random()
    if state < 0.02:
        user["suspended"] = True
    elif state < 0.03:
        user["archived"] = True
    if aliases:
        user["aliases"] = aliases
    if rng.random() < 0.3:
        user["nonEditableAliases"] = [f"{local}@{domain.split('.')[0]}.test-google-a.com"]
    if rng.random() < 0.9:
        user["externalIds"] = [{"type": "organization", "value": f"E{number:07d}"}]
    return user


def _nested_group(
    rng: random.Random,
    email: str,
    chosen: list[int],
    users: list[dict[str, Any]],
    nesting: int,
    number: int,
) -> list[dict[str, Any]]:
    """The selected group and the groups nested below it: half of the members directly in
    the group, the rest split between the levels below; 1% are guests of another domain."""
    tiers: list[list[int]] = []
    rest = chosen
    for _ in range(nesting):
        half = (len(rest) + 1) // 2
        tiers.append(rest[:half])
        rest = rest[half:]
    tiers.append(rest)
    local, _, domain = email.partition("@")
    emails = [email] + [f"{local}-level{level}@{domain}" for level in range(1, nesting + 1)]
    groups = []
    for level, (group_email, tier) in enumerate(zip(emails, tiers, strict=True)):
        members = []
        for position, index in enumerate(tier):
            user = users[index]
            if level == 0 and position % 100 == 99:  # a guest instead of a domain user
                members.append(_guest(number, position))
                continue
            members.append(
                {
                    "kind": "admin#directory#member",
                    "id": user["id"],
                    "email": user["primaryEmail"],
                    "role": "MEMBER",
                    "type": "USER",
                    "status": "SUSPENDED" if user["suspended"] else "ACTIVE",
                }
            )
        if level < nesting:
            members.append(
                {
                    "kind": "admin#directory#member",
                    "id": f"0{number:03d}group{level + 1}",
                    "email": emails[level + 1],
                    "role": "MEMBER",
                    "type": "GROUP",
                    "status": "ACTIVE",
                }
            )
        groups.append(
            {
                "kind": "admin#directory#group",
                "id": f"0{number:03d}group{level}",
                "email": group_email,
                "name": group_email.split("@")[0].replace("-", " ").title(),
                "members": members,
            }
        )
    return groups


TOPICS = ("Project", "Team", "List", "Office", "Committee", "Guild")


def _other_group(
    rng: random.Random, number: int, users: list[dict[str, Any]], domain: str
) -> dict[str, Any]:
    """A group of 2 to 12 users (the admin excepted); one in ten also holds the previous
    other group, nested."""
    chosen = rng.sample(range(1, len(users)), min(len(users) - 1, rng.randint(2, 12)))
    members = [
        {
            "kind": "admin#directory#member",
            "id": users[index]["id"],
            "email": users[index]["primaryEmail"],
            "role": "MEMBER",
            "type": "USER",
            "status": "SUSPENDED" if users[index]["suspended"] else "ACTIVE",
        }
        for index in chosen
    ]
    if number and number % 10 == 0:
        members.append(
            {
                "kind": "admin#directory#member",
                "id": f"3{number - 1:08d}",
                "email": f"list{number - 1:05d}@{domain}",
                "role": "MEMBER",
                "type": "GROUP",
                "status": "ACTIVE",
            }
        )
    topic = TOPICS[number % len(TOPICS)]
    return {
        "kind": "admin#directory#group",
        "id": f"3{number:08d}",
        "email": f"list{number:05d}@{domain}",
        "name": f"{topic} {rng.choice(GIVEN).title()} {number}",
        "members": members,
    }


def _guest(group: int, position: int) -> dict[str, Any]:
    return {
        "kind": "admin#directory#member",
        "id": f"2{group:03d}{position:08d}",
        "email": f"guest{group}.{position}@partner.example",
        "role": "MEMBER",
        "type": "USER",
        "status": "ACTIVE",
    }
