"""Reconciliation: from a directory snapshot and Komeet's accounts to reports and a plan.

Pure pandas, no I/O (ARCHITECTURE.md, "Layers"). One row per person or account, each with
its situation (ARCHITECTURE.md, "Situations"), the action it needs and the reason in words;
the reports are views of those rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from komeet_sync import guards, scope
from komeet_sync.domain_config import DomainConfig
from komeet_sync.emails import email_domain, normalise_emails
from komeet_sync.frames import KOMEET_USERS, DirectorySnapshot, Source, conform
from komeet_sync.matching import KeyKind, MatchRule, dispute_clusters, key_rows, link
from komeet_sync.plan import Plan, build_plan
from komeet_sync.situations import ACTION_OF, Action, Situation

REPORT_COLUMNS: dict[str, list[str]] = {
    "joiners": [
        "email",
        "situation",
        "source",
        "account_id",
        "stable_id",
        "given_name",
        "family_name",
        "komeet_id",
        "reason",
    ],
    "leavers": ["email", "komeet_id", "external_id", "protected", "source", "account_id", "reason"],
    "updates": [
        "email",
        "komeet_id",
        "komeet_user_name",
        "changes",
        "source",
        "account_id",
        "reason",
    ],
    "duplicates": ["cluster_id", "source", "account_id", "email", "reason"],
    "errors": ["source", "account_id", "email", "error", "detail", "reason"],
    "out_of_scope": ["email", "source", "account_id", "reason"],
}

_RULE_WORDS = {
    MatchRule.STABLE_ID.value: "matched by externalId",
    MatchRule.EMAIL.value: "matched by email",
    MatchRule.ALIAS.value: "matched by alias (renamed)",
}


@dataclass(frozen=True)
class Reconciliation:
    """Everything one reconciliation decided, for one domain."""

    domain: str
    rows: pd.DataFrame  # one per person or account
    reports: dict[str, pd.DataFrame]  # joiners, leavers, updates, duplicates, errors, ...
    plan: Plan
    stats: dict[str, int]

    def summary(self) -> dict[str, object]:
        return {
            "domain": self.domain,
            "counts": {name: len(frame) for name, frame in self.reports.items()}
            | {"plan": len(self.plan.actions)},
            "actions": self.plan.counts(),
            "plan_id": self.plan.plan_id,
            "held": self.plan.held,
            "hold_reasons": [hold.as_dict() for hold in self.plan.holds],
            **self.stats,
        }


def reconcile(
    snapshot: DirectorySnapshot,
    komeet_users: pd.DataFrame,
    config: DomainConfig,
    *,
    last_good_desired: int | None = None,
    komeet_errors: pd.DataFrame | None = None,
) -> Reconciliation:
    """Decide every person's and account's situation, the reports and the plan.

    ``last_good_desired`` is the number of desired people in the last snapshot that was
    applied; the shrink guard compares against it. ``komeet_errors`` are Komeet accounts
    that could not be read (READ_ERRORS); they are listed in the errors report.
    """
    assessed = scope.assess(snapshot, config)
    people = assessed.people.reset_index(drop=True)
    accounts, outside = _domain_accounts(
        conform(komeet_users, KOMEET_USERS, "komeet users"), config
    )

    n, m = len(people), len(accounts)
    alias_owner = assessed.aliases.merge(
        pd.DataFrame({"account_id": people["account_id"], "position": np.arange(n)}),
        on="account_id",
    )
    account_nodes = np.arange(n, n + m)
    keys = pd.concat(
        [
            key_rows(np.arange(n), KeyKind.STABLE_ID, people["stable_id"]),
            key_rows(np.arange(n), KeyKind.EMAIL, people["email"]),
            key_rows(alias_owner["position"].to_numpy(), KeyKind.ALIAS, alias_owner["alias"]),
            key_rows(np.arange(n), KeyKind.EMPLOYEE_ID, people["employee_id"]),
            key_rows(account_nodes, KeyKind.EXTERNAL_ID, accounts["external_id"]),
            key_rows(account_nodes, KeyKind.USER_NAME, accounts["user_name_norm"]),
            key_rows(account_nodes, KeyKind.ACCOUNT_EMAIL, accounts["email_norm"]),
            key_rows(account_nodes, KeyKind.EMPLOYEE_ID, accounts["employee_id"]),
        ],
        ignore_index=True,
    )
    links = link(keys, n, m)
    names = np.concatenate(
        [
            (people["source"] + " user " + people["account_id"].fillna("?")).to_numpy(object),
            ("komeet account " + accounts["komeet_id"].fillna("?")).to_numpy(object),
        ]
    )
    clusters = dispute_clusters(links, names)

    rows = _rows(people, accounts, links, clusters)
    rows = _situate(rows, assessed.groups_of, config)

    errors = assessed.errors
    if komeet_errors is not None and len(komeet_errors):
        errors = pd.concat(
            [errors, komeet_errors.assign(reason="this Komeet account is left as it is")],
            ignore_index=True,
        )
    desired = int(people["desired"].sum())
    active_managed = int((accounts["active"] & accounts["managed"]).sum())
    planned = rows[rows["action"] != ""]
    holds = guards.evaluate(
        config,
        missing_groups=assessed.missing_groups,
        desired=desired,
        last_good_desired=last_good_desired,
        deactivations=int((planned["action"] == Action.DEACTIVATE).sum()),
        active_managed=active_managed,
    )
    plan = build_plan(config.domain, _plan_rows(planned), holds)
    reports = {
        "joiners": rows[rows["situation"].isin([Situation.JOINER, Situation.RETURNER])],
        "leavers": rows[rows["situation"] == Situation.LEAVER],
        "updates": rows[rows["situation"] == Situation.CHANGED],
        "duplicates": rows[rows["situation"] == Situation.DISPUTED].assign(
            source=lambda frame: frame["source"].fillna(Source.KOMEET.value),
            account_id=lambda frame: frame["account_id"].fillna(frame["komeet_id"]),
        ),
        "errors": errors,
        "out_of_scope": rows[
            rows["has_person"] & rows["person_active"] & ~rows["in_scope"].astype(bool)
        ].assign(reason=_out_of_scope_reason(config)),
    }
    reports = {
        name: frame[REPORT_COLUMNS[name]]
        .sort_values(REPORT_COLUMNS[name][:2], kind="stable")
        .reset_index(drop=True)
        for name, frame in reports.items()
    }
    stats = {
        "directory_users": n,
        "desired": desired,
        "komeet_accounts": m,
        "komeet_accounts_outside_domain": outside,
        "active_managed_accounts": active_managed,
    }
    return Reconciliation(config.domain, rows, reports, plan, stats)


def _domain_accounts(komeet: pd.DataFrame, config: DomainConfig) -> tuple[pd.DataFrame, int]:
    """The domain's accounts: userName in the domain or an alias domain. The sync never
    reads or writes any other account."""
    user_name = normalise_emails(komeet["user_name"])["email"]
    # A userName that is not a valid email still identifies its account, lower-cased.
    user_name = user_name.fillna(komeet["user_name"].str.strip().str.lower())
    mine = email_domain(user_name).isin(config.domains).to_numpy()
    accounts = komeet[mine].reset_index(drop=True)
    accounts["user_name_norm"] = user_name[mine].to_numpy()
    accounts["email_norm"] = normalise_emails(accounts["email"])["email"]
    external = accounts["external_id"].str.strip()
    accounts["managed"] = (external.notna() & (external != "")).to_numpy()
    protected = set(config.protected)
    accounts["protected"] = (
        accounts["user_name_norm"].isin(protected) | accounts["email_norm"].isin(protected)
    ).to_numpy()
    return accounts, int((~mine).sum())


def _rows(
    people: pd.DataFrame, accounts: pd.DataFrame, links, clusters: pd.DataFrame
) -> pd.DataFrame:
    n = len(people)
    account_columns = {
        "komeet_id": "komeet_id",
        "user_name_norm": "komeet_user_name",
        "active": "komeet_active",
        "external_id": "external_id",
        "given_name": "komeet_given_name",
        "family_name": "komeet_family_name",
        "managed": "managed",
        "protected": "protected",
    }
    side = accounts[list(account_columns)].rename(columns=account_columns)
    matched = links.matched_account
    person_rows = people.rename(columns={"active": "person_active"}).assign(has_person=True)
    taken = side.reindex(matched).reset_index(drop=True)  # -1 is no account: NA columns
    person_rows = pd.concat([person_rows, taken], axis=1)
    person_rows["has_account"] = matched >= 0
    person_rows["match_rule"] = links.match_rule
    person_rows["node"] = np.arange(n)

    alone = np.ones(len(accounts), dtype=bool)
    alone[matched[matched >= 0]] = False
    account_rows = side[alone].assign(has_person=False, has_account=True, match_rule="")
    account_rows["node"] = np.flatnonzero(alone) + n
    rows = pd.concat([person_rows, account_rows], ignore_index=True)
    rows = rows.merge(clusters.rename(columns={"reason": "dispute_reason"}), on="node", how="left")
    rows["disputed"] = links.disputed[rows["node"].to_numpy()]
    for column in ("komeet_active", "managed", "protected", "person_active", "in_scope", "desired"):
        rows[column] = rows[column].fillna(False).astype(bool)
    return rows


def _situate(rows: pd.DataFrame, groups_of: pd.Series, config: DomainConfig) -> pd.DataFrame:
    """Each row's situation, action and reason (ARCHITECTURE.md, "Situations")."""
    has_person = rows["has_person"].to_numpy()
    has_account = rows["has_account"].to_numpy()
    desired = has_person & rows["desired"].to_numpy()
    active = rows["komeet_active"].to_numpy()
    managed = rows["managed"].to_numpy()
    invalid = has_person & rows["error"].notna().to_numpy()

    changes, differs = _changes(rows, desired & has_account)
    situation = np.select(
        [
            rows["disputed"].to_numpy(),
            invalid,
            desired & ~has_account,
            desired & ~active,
            desired & differs,
            desired,
            has_account & active & managed,
            has_account & active,
            has_person & rows["person_active"].to_numpy() & ~rows["in_scope"].to_numpy(),
        ],
        [
            Situation.DISPUTED,
            Situation.INVALID,
            Situation.JOINER,
            Situation.RETURNER,
            Situation.CHANGED,
            Situation.UNCHANGED,
            Situation.LEAVER,
            Situation.UNMANAGED,
            Situation.OUT_OF_SCOPE,
        ],
        default=Situation.INACTIVE,
    ).astype(object)
    rows = rows.assign(situation=situation, changes=changes)
    protected_leaver = (situation == Situation.LEAVER) & rows["protected"].to_numpy()
    action = pd.Series(situation).map({s.value: a.value for s, a in ACTION_OF.items()})
    rows["action"] = action.fillna("").where(~protected_leaver, "").astype("str").to_numpy()
    rows["reason"] = _reasons(rows, groups_of, config)
    rows["email"] = rows["email"].fillna(rows["email_given"]).fillna(rows["komeet_user_name"])
    return rows


def _changes(rows: pd.DataFrame, compared: np.ndarray) -> tuple[pd.Series, np.ndarray]:
    """What differs between a desired person and their account, in words."""

    def differ(ours: str, theirs: str) -> np.ndarray:
        a = rows[ours].fillna("").str.strip()
        b = rows[theirs].fillna("").str.strip()
        return compared & (a != b).to_numpy()

    user_name = differ("email", "komeet_user_name")
    given = differ("given_name", "komeet_given_name")
    family = differ("family_name", "komeet_family_name")
    external = differ("stable_id", "external_id")
    differs = user_name | given | family | external
    changes = pd.Series("", index=rows.index, dtype="str")
    if not differs.any():
        return changes, differs
    sub = rows[differs].fillna({"external_id": ""})
    parts = []
    for mask, label, before, after in (
        (user_name, "userName", "komeet_user_name", "email"),
        (given, "givenName", "komeet_given_name", "given_name"),
        (family, "familyName", "komeet_family_name", "family_name"),
        (external, "externalId", "external_id", "stable_id"),
    ):
        text = (
            label + " " + sub[before].fillna("(none)").replace("", "(none)") + " -> " + sub[after]
        )
        parts.append(text.where(mask[differs], ""))
    joined = parts[0]
    for part in parts[1:]:
        joined = joined.str.cat(part, sep="; ")
    changes[differs] = joined.str.replace(r"(; )+", "; ", regex=True).str.strip("; ").to_numpy()
    return changes, differs


def _reasons(rows: pd.DataFrame, groups_of: pd.Series, config: DomainConfig) -> pd.Series:
    reason = pd.Series("", index=rows.index, dtype="str")
    situation = rows["situation"]
    rule = rows["match_rule"].map(_RULE_WORDS).fillna("")
    member_of = rows["account_id"].map(groups_of)
    in_groups = ("member of " + member_of).fillna("active in the directory")

    def put(which: Situation, text: pd.Series | str) -> None:
        mask = situation == which
        if mask.any():
            reason[mask] = text[mask] if isinstance(text, pd.Series) else text

    put(
        Situation.JOINER,
        in_groups + "; no Komeet account has this person's externalId, email or aliases",
    )
    put(
        Situation.RETURNER,
        in_groups + "; " + rule + " to deactivated account " + rows["komeet_id"].fillna(""),
    )
    put(Situation.CHANGED, rule + ": " + rows["changes"])
    put(Situation.UNCHANGED, rule + "; up to date")
    put(
        Situation.INVALID,
        rows["error"].fillna("") + " (" + rows["error_detail"].fillna("") + "): " + scope.NO_ACTION,
    )
    put(Situation.DISPUTED, rows["dispute_reason"].fillna(""))

    gone = _why_not_desired(rows, config)
    leaver = gone + "; deactivate (never delete) account " + rows["komeet_id"].fillna("")
    leaver = leaver.where(~rows["protected"], gone + "; account is protected: kept active")
    put(Situation.LEAVER, leaver)
    put(
        Situation.UNMANAGED,
        pd.Series(
            np.where(
                rows["has_person"],
                "account has no externalId, so the sync never touches it (" + gone + ")",
                "account has no externalId and matches nobody in the directory: the sync "
                "did not create it and never touches it",
            ),
            index=rows.index,
        ),
    )
    put(Situation.OUT_OF_SCOPE, _out_of_scope_reason(config))
    put(
        Situation.INACTIVE,
        pd.Series(
            np.where(
                rows["has_person"],
                rows["inactive_reason"].fillna("not desired") + "; no active Komeet account",
                "deactivated account; nobody in the directory matches it",
            ),
            index=rows.index,
        ),
    )
    return reason


def _why_not_desired(rows: pd.DataFrame, config: DomainConfig) -> pd.Series:
    return pd.Series(
        np.select(
            [
                ~rows["has_person"].to_numpy(),
                ~rows["person_active"].to_numpy(),
            ],
            [
                (
                    "no directory user has externalId "
                    + rows["external_id"].fillna("")
                    + " or email "
                    + rows["komeet_user_name"].fillna("")
                ).to_numpy(object),
                rows["inactive_reason"].fillna("inactive in the directory").to_numpy(object),
            ],
            default=f"in none of the selected groups ({', '.join(config.groups)})",
        ),
        index=rows.index,
        dtype="str",
    )


def _out_of_scope_reason(config: DomainConfig) -> str:
    return (
        f"active in the directory but in none of the selected groups ({', '.join(config.groups)})"
    )


def _plan_rows(planned: pd.DataFrame) -> pd.DataFrame:
    deactivate = (planned["action"] == Action.DEACTIVATE).to_numpy()
    return pd.DataFrame(
        {
            "action": planned["action"],
            "email": planned["email"],
            "komeet_id": planned["komeet_id"],
            "user_name": planned["email"].where(~deactivate, planned["komeet_user_name"]),
            "external_id": planned["stable_id"].where(~deactivate, planned["external_id"]),
            "given_name": planned["given_name"].where(~deactivate, None),
            "family_name": planned["family_name"].where(~deactivate, None),
            "changes": planned["changes"],
            "reason": planned["reason"],
        }
    )
