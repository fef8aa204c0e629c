"""The engine decides as it did before it was made fast at a million accounts: on generated
directories and Komeet states full of odd cases, its rows, reports, plan and summary equal
those recorded with the engine of commit 8505a81 (tests/fixtures/reconciled_8505a81/).

Record them again only for a change meant to alter decisions:
``python -m tests.engine.test_reconcile_recorded`` (from the repository's root).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from komeet_sync.engine.reconcile import Reconciliation, reconcile
from komeet_sync.model.domain_config import DomainConfig
from komeet_sync.model.frames import Source
from komeet_sync.model.snapshots import DirectorySnapshot, KomeetAccounts

RECORDED = Path(__file__).parents[1] / "fixtures" / "reconciled_8505a81"
PEOPLE = 1_500


def text(values) -> np.ndarray:
    return np.array(values, dtype=object)


def directory(rng: np.random.Generator, people: int, *, customer: bool = False):
    """Google users with every oddity the engine must handle: invalid, missing, padded,
    upper-case, Unicode and shared addresses, other and alias domains, missing names,
    suspended people, shared and placeholder employee ids, aliases (some their own email),
    members by id, by email only, unknown, nested groups, and a CUSTOMER member."""
    ids = text([f"{10**11 + i}" for i in range(people)])
    domains = text(["acme.com", "ACME.io", "globex.com", "Acme.Com"])
    domain = rng.choice(domains, people, p=[0.8, 0.1, 0.05, 0.05])
    email = text([f"u{i}@{d}" for i, d in enumerate(domain)])
    odd = rng.random(people)
    cases = [
        (0.010, lambda i: None),
        (0.010, lambda i: "nope"),
        (0.005, lambda i: "  "),
        (0.005, lambda i: f"  Jöe{i}@acme.com "),
        (0.005, lambda i: f"a..{i}@acme.com"),
        (0.005, lambda i: f" U{i}@ACME.COM"),
        (0.002, lambda i: "shared@acme.com"),
        (0.002, lambda i: f"u{i}@bücher.example"),
    ]
    low = 0.0
    for share, make in cases:
        at = np.flatnonzero((odd >= low) & (odd < low + share))
        email[at] = text([make(i) for i in at])
        low += share
    active = rng.random(people) < 0.93
    employee = text([None] * people)
    draw = rng.random(people)
    employee[draw < 0.2] = text([f"E{k}" for k in rng.integers(0, people, (draw < 0.2).sum())])
    employee[(draw >= 0.2) & (draw < 0.22)] = "n/a"
    employee[(draw >= 0.22) & (draw < 0.23)] = "  "
    stable = ids.copy()
    stable[rng.random(people) < 0.01] = None
    users = pd.DataFrame(
        {
            "source": "google",
            "account_id": ids,
            "stable_id": stable,
            "email": email,
            "given_name": rng.choice(
                text(["Ann", " Bob", "", None, "Cy "]), people, p=[0.5, 0.2, 0.02, 0.02, 0.26]
            ),
            "family_name": rng.choice(
                text(["Xu", "Yi", None, " "]), people, p=[0.6, 0.38, 0.01, 0.01]
            ),
            "active": active,
            "inactive_reason": np.where(active, None, "suspended in Google Workspace"),
            "employee_id": employee,
            "org_unit": rng.choice(text(["/", "/eng", None]), people),
        }
    )
    renamed = np.flatnonzero(rng.random(people) < 0.08)
    kind = rng.choice(3, len(renamed))
    alias = [
        (f"old.u{i}@acme.com", f"U{i}@acme.com", "bad alias")[k]
        for i, k in zip(renamed, kind, strict=True)
    ]
    aliases = pd.DataFrame(
        {
            "account_id": np.concatenate([ids[renamed], ids[:5]]),
            "alias": np.concatenate([text(alias), email[:5]]),  # 5 list their own email
        }
    )
    draw = rng.random(people)
    member_id = np.where(draw < 0.05, None, ids)  # known by email only
    strangers = people // 200
    members = pd.concat(
        [
            pd.DataFrame({"group": "all@acme.com", "member_id": member_id, "member_email": email})[
                draw < 0.85
            ],
            pd.DataFrame({"group": "eng@acme.com", "member_id": ids, "member_email": email})[
                (draw > 0.5) & (draw < 0.95)
            ],
            pd.DataFrame(
                {
                    "group": rng.choice(["all@acme.com", "eng@acme.com"], strangers),
                    "member_id": [f"x{i}" for i in range(strangers)],
                    "member_email": rng.choice(
                        text(["ext@other.org", "ghost@acme.com", None]), strangers
                    ),
                }
            ),
            pd.DataFrame(
                {"group": ["all@acme.com"], "member_id": ["g1"], "member_email": ["eng@acme.com"]}
            ).assign(member_type="GROUP"),
        ],
        ignore_index=True,
    )
    members["member_type"] = members["member_type"].fillna("USER")
    if customer:
        members.loc[len(members)] = ["all@acme.com", "C1", None, "CUSTOMER"]
    groups = pd.DataFrame(
        {"group": ["all@acme.com", "eng@acme.com", "empty@acme.com"], "found": True}
    )
    return DirectorySnapshot.of(Source.GOOGLE, users, aliases, members, groups)


def komeet(rng: np.random.Generator, snapshot: DirectorySnapshot) -> KomeetAccounts:
    """Accounts for nine people in ten (userNames upper-cased, under an old address, or
    for nobody), externalIds missing, blank, padded or wrong, other given names, inactive
    accounts, emails beside userNames, and leavers: some outside the domain, protected,
    invalid or unmanaged. One resource Komeet returned could not be read."""
    users = snapshot.users
    held = np.flatnonzero(rng.random(len(users)) < 0.9)
    email = users["email"].to_numpy(object)[held]
    ids = users["account_id"].to_numpy(object)[held]
    draw = rng.random(len(held))
    user_name = np.where(draw < 0.1, text([str(e).upper() for e in email]), email)
    user_name = np.where(
        (draw >= 0.1) & (draw < 0.12), text([f"old.u{i}@acme.com" for i in held]), user_name
    )
    user_name = text(
        [u if u is not None else f"none{i}@acme.com" for i, u in zip(held, user_name, strict=True)]
    )
    external = ids.copy()
    draw = rng.random(len(held))
    external[draw < 0.05] = None
    external[(draw >= 0.05) & (draw < 0.06)] = "  "
    padded = (draw >= 0.06) & (draw < 0.07)
    external[padded] = text([f" {i} " for i in ids[padded]])
    external[(draw >= 0.07) & (draw < 0.08)] = "999"
    account_email = np.where(rng.random(len(held)) < 0.5, user_name, None)
    other = np.flatnonzero(rng.random(len(held)) < 0.05)
    account_email[other] = text([f"mail{i}@acme.com" for i in other])
    leavers = len(users) // 50
    left = text([f"left{i}@{'globex.com' if i % 7 == 0 else 'acme.com'}" for i in range(leavers)])
    left[:3] = ["boss@acme.com", "not an email", "X@ACME.COM"]
    accounts = pd.DataFrame(
        {
            "komeet_id": np.concatenate(
                [text([f"k{i}" for i in held]), text([f"kl{i}" for i in range(leavers)])]
            ),
            "user_name": np.concatenate([user_name, left]),
            "email": np.concatenate([account_email, np.where(np.arange(leavers) % 3, None, left)]),
            "external_id": np.concatenate(
                [
                    external,
                    np.where(np.arange(leavers) % 4, text([f"L{i}" for i in range(leavers)]), None),
                ]
            ),
            "given_name": np.concatenate(
                [
                    np.where(
                        rng.random(len(held)) < 0.05,
                        "Other",
                        users["given_name"].to_numpy(object)[held],
                    ),
                    np.full(leavers, "G", dtype=object),
                ]
            ),
            "family_name": np.concatenate(
                [users["family_name"].to_numpy(object)[held], np.full(leavers, None)]
            ),
            "active": np.concatenate([rng.random(len(held)) < 0.95, np.arange(leavers) % 5 != 0]),
            "employee_id": np.concatenate(
                [users["employee_id"].to_numpy(object)[held], np.full(leavers, None)]
            ),
        }
    )
    unreadable = pd.DataFrame(
        {
            "source": ["komeet"],
            "account_id": ["zz"],
            "email": [None],
            "error": ["invalid_record"],
            "detail": ["userName is missing"],
        }
    )
    return KomeetAccounts.of(accounts, unreadable)


def google(**options) -> DomainConfig:
    return DomainConfig.create(
        "acme.com",
        "google",
        groups=["all@acme.com", "eng@acme.com"],
        require_admin=False,
        **options,
    )


CASES = {
    "groups": dict(
        config=google(
            alias_domains=["acme.io"],
            protected=["boss@acme.com", "u3@acme.com"],
            max_deactivations=10**9,
            max_deactivation_share=1.0,
        )
    ),
    "default_guards": dict(config=google(), last_good_desired=2 * PEOPLE),
    "missing_group": dict(
        config=DomainConfig.create(
            "acme.com",
            "google",
            groups=["all@acme.com", "nope@acme.com", "empty@acme.com"],
            require_admin=False,
        )
    ),
    "no_group": dict(
        config=DomainConfig.create(
            "acme.com", "scim", groups=[], alias_domains=["bücher.example"], require_admin=False
        )
    ),
    "customer": dict(config=google(alias_domains=["acme.io"]), customer=True),
    "no_account": dict(config=google(), accounts=False),
}


def reconciled(case: str) -> Reconciliation:
    options = dict(CASES[case])
    rng = np.random.default_rng(sorted(CASES).index(case))
    snapshot = directory(rng, PEOPLE, customer=options.pop("customer", False))
    accounts = komeet(rng, snapshot)
    if not options.pop("accounts", True):
        accounts = KomeetAccounts.of(accounts.accounts.iloc[:0])
    return reconcile(snapshot, accounts, options.pop("config"), **options)


def frames(result: Reconciliation) -> dict[str, pd.DataFrame]:
    return {"rows": result.rows, "plan": result.plan.actions} | result.reports


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_engine_decides_as_recorded(case):
    result = reconciled(case)

    folder = RECORDED / case
    assert json.loads((folder / "summary.json").read_text()) == json.loads(
        json.dumps(result.summary(), default=str)
    )
    for name, frame in frames(result).items():
        expected = pd.read_parquet(folder / f"{name}.parquet")
        pd.testing.assert_frame_equal(frame, expected, check_exact=True, obj=f"{case}: {name}")


def record() -> None:
    for case in sorted(CASES):
        result = reconciled(case)
        folder = RECORDED / case
        folder.mkdir(parents=True, exist_ok=True)
        summary = json.dumps(result.summary(), default=str, indent=1, sort_keys=True)
        (folder / "summary.json").write_text(summary + "\n")
        for name, frame in frames(result).items():
            frame.to_parquet(folder / f"{name}.parquet", index=False, compression="zstd")
        print(f"{case}: {result.summary()['counts']}")


if __name__ == "__main__":
    record()
