"""Who is desired: valid, active, and in a selected group (ARCHITECTURE.md, "Situations").

*Desired* = valid, active (Google: not suspended, not archived; SCIM: ``active``), and a
member (direct or nested) of at least one selected group. With no selected group on a SCIM
domain every active staged user is in scope: the IdP's assignment already scoped them.
A person who would be desired but is invalid is reported in errors and gets no action.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from komeet_sync.domain_config import DomainConfig
from komeet_sync.emails import email_domain, normalise_emails
from komeet_sync.frames import READ_ERRORS, DirectorySnapshot, conform, empty_frame

ERRORS: dict[str, str] = {**READ_ERRORS, "reason": "str"}

NO_ACTION = "no Komeet account is created or changed for this person until it is fixed"


@dataclass(frozen=True)
class Scope:
    """The directory's people with their normalised email, validity and scope."""

    people: pd.DataFrame
    aliases: pd.DataFrame  # account_id, alias (normalised, valid only)
    errors: pd.DataFrame  # ERRORS
    missing_groups: pd.DataFrame  # group, error (group_not_found | group_empty)
    groups_of: pd.Series  # account_id -> the selected groups it is in, joined for reasons


def assess(snapshot: DirectorySnapshot, config: DomainConfig) -> Scope:
    users = snapshot.users
    normal = normalise_emails(users["email"])
    people = users.assign(email_given=users["email"], email=normal["email"])
    domains = set(config.domains)
    in_domain = email_domain(people["email"]).isin(domains).to_numpy()

    group_status = _group_status(snapshot, config)
    members = snapshot.members[snapshot.members["group"].isin(config.groups)]
    if config.groups:
        in_scope, groups_of, member_errors = _membership(
            members, people, domains, snapshot.source.value
        )
    else:
        in_scope = np.ones(len(people), dtype=bool)
        groups_of = pd.Series(dtype="str")
        member_errors = empty_frame(ERRORS)

    candidate = people["active"].to_numpy() & in_scope
    no_name = (
        people["given_name"].fillna("").str.strip().eq("")
        | people["family_name"].fillna("").str.strip().eq("")
    ).to_numpy()
    bad_email = normal["email"].isna().to_numpy()
    error = np.select(
        [candidate & bad_email, candidate & ~in_domain, candidate & no_name],
        ["invalid_email", "outside_domain", "missing_name"],
        default="",
    )
    domain_list = _listing(config.domains)
    detail = np.select(
        [error == "invalid_email", error == "outside_domain", error == "missing_name"],
        [
            normal["error"].fillna("").to_numpy(dtype=object),
            np.full(len(people), f"its domain is not {domain_list}", dtype=object),
            np.full(len(people), "givenName and familyName are both required", dtype=object),
        ],
        default="",
    )
    people["in_scope"] = in_scope
    people["error"] = pd.Series(error, dtype="str").replace("", pd.NA).to_numpy()
    people["error_detail"] = pd.Series(detail, dtype="str").replace("", pd.NA).to_numpy()
    people["desired"] = candidate & (error == "")

    flagged = error != ""
    person_errors = pd.DataFrame(
        {
            "source": people["source"][flagged],
            "account_id": people["account_id"][flagged],
            "email": people["email_given"][flagged],
            "error": error[flagged],
            "detail": detail[flagged],
            "reason": NO_ACTION,
        }
    )
    alias_normal = normalise_emails(snapshot.aliases["alias"])
    aliases = pd.DataFrame(
        {"account_id": snapshot.aliases["account_id"], "alias": alias_normal["email"]}
    ).dropna()
    read_errors = snapshot.read_errors.assign(reason=NO_ACTION)
    group_errors = pd.DataFrame(
        {
            "source": snapshot.source.value,
            "account_id": group_status["group"],
            "email": group_status["group"],
            "error": group_status["error"],
            "detail": group_status["detail"],
            "reason": "the domain's plan is held: no account is created, changed or "
            "deactivated until the group selection is fixed",
        }
    )
    errors = pd.concat(
        [frame for frame in (group_errors, read_errors, person_errors, member_errors) if len(frame)]
        or [empty_frame(ERRORS)],
        ignore_index=True,
    )
    return Scope(
        people=people,
        aliases=aliases,
        errors=conform(errors, ERRORS, "errors"),
        missing_groups=group_status[["group", "error", "detail"]],
        groups_of=groups_of,
    )


def _group_status(snapshot: DirectorySnapshot, config: DomainConfig) -> pd.DataFrame:
    """The selected groups that do not exist or came back empty: each stops the domain."""
    found = set(snapshot.groups.loc[snapshot.groups["found"], "group"])
    counts = snapshot.members["group"].value_counts()
    rows = []
    for group in config.groups:
        if group not in found:
            rows.append(
                (
                    group,
                    "group_not_found",
                    f"selected group {group!r} does not exist in the "
                    "directory; select an existing group or remove it from the configuration",
                )
            )
        elif counts.get(group, 0) == 0:
            rows.append(
                (
                    group,
                    "group_empty",
                    f"selected group {group!r} has no members; an empty "
                    "group would deactivate everyone in it, so the domain is held",
                )
            )
    return pd.DataFrame(rows, columns=["group", "error", "detail"], dtype="str")


def _membership(
    members: pd.DataFrame, people: pd.DataFrame, domains: set[str], source: str
) -> tuple[np.ndarray, pd.Series, pd.DataFrame]:
    """Which people are in a selected group, and which members are nobody we know."""
    if (members["member_type"] == "CUSTOMER").any():
        # A CUSTOMER member makes every user of the Workspace account a member.
        everyone = np.ones(len(people), dtype=bool)
        names = ", ".join(sorted(members.loc[members["member_type"] == "CUSTOMER", "group"]))
        return everyone, pd.Series(names, index=people["account_id"].unique()), empty_frame(ERRORS)
    users = members[members["member_type"] != "GROUP"]
    by_id = users["member_id"].isin(people["account_id"])
    member_email = normalise_emails(users["member_email"])["email"]
    known_emails = people.dropna(subset=["email"]).drop_duplicates("email")
    email_to_id = pd.Series(known_emails["account_id"].to_numpy(), index=known_emails["email"])
    matched_id = users["member_id"].where(by_id, member_email.map(email_to_id))
    found = matched_id.notna()
    scoped = pd.DataFrame({"account_id": matched_id[found], "group": users["group"][found]})
    in_scope = people["account_id"].isin(scoped["account_id"]).to_numpy()
    groups_of = (
        scoped.drop_duplicates().sort_values(["account_id", "group"]).groupby("account_id")["group"]
    ).agg(", ".join)

    strangers = users[~found].assign(email_norm=member_email[~found])
    if strangers.empty:
        return in_scope, groups_of, empty_frame(ERRORS)
    outside = ~email_domain(strangers["email_norm"]).isin(domains)
    listed = (
        strangers.assign(outside=outside)
        .sort_values(["member_id", "group"])
        .groupby(["member_id", "member_email", "outside"], dropna=False)["group"]
        .agg(", ".join)
        .reset_index()
    )
    domain_list = _listing(sorted(domains))
    errors = pd.DataFrame(
        {
            "source": source,
            "account_id": listed["member_id"],
            "email": listed["member_email"],
            "error": np.where(listed["outside"], "outside_domain", "member_not_found"),
            "detail": np.where(
                listed["outside"],
                "member of " + listed["group"] + f", but its address is not in {domain_list}",
                "member of " + listed["group"] + ", but not among the domain's users",
            ),
            "reason": "not synced: only users of the domain itself get Komeet accounts",
        }
    )
    return in_scope, groups_of, errors


def _listing(names: tuple[str, ...] | list[str]) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
