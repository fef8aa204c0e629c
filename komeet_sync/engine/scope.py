"""Who is desired: valid, active, and in a selected group (ARCHITECTURE.md, "Situations").

*Desired* = valid, active (Google: not suspended, not archived; SCIM: ``active``), and a
member (direct or nested) of at least one selected group. With no selected group on a SCIM
domain every active staged user is in scope: the IdP's assignment already scoped them.
A person who would be desired but is invalid is reported in errors and gets no action.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from komeet_sync.model.domain_config import DomainConfig
from komeet_sync.model.domain_names import display_domain
from komeet_sync.model.emails import normalise_emails
from komeet_sync.model.frames import (
    READ_ERRORS,
    blank,
    conform,
    contains,
    empty_frame,
    factorize,
    text_array,
    to_arrow,
    where,
)
from komeet_sync.model.snapshots import DirectorySnapshot

ERRORS: dict[str, str] = {**READ_ERRORS, "reason": "str"}

NO_ACTION = "no Komeet account is created or changed for this person until it is fixed"


@dataclass(frozen=True)
class Scope:
    """The directory's people with their normalised email, validity and scope."""

    people: pd.DataFrame
    aliases: pd.DataFrame  # account_id, alias (normalised, valid only)
    errors: pd.DataFrame  # ERRORS
    missing_groups: pd.DataFrame  # group, error (group_not_found | group_empty), detail
    memberships: pd.DataFrame  # account_id, group: the selected groups each person is in

    def groups_of(self, account_ids: pd.Series) -> pd.Series:
        """The selected groups each of ``account_ids`` is in, as text; NA when none."""
        wanted = self.memberships[contains(self.memberships["account_id"], account_ids)]
        wanted = wanted.drop_duplicates().sort_values(["account_id", "group"])
        several = wanted["account_id"].duplicated(keep=False).to_numpy()
        joined = pd.concat(
            [
                wanted[~several].set_index("account_id")["group"],
                wanted[several].groupby("account_id")["group"].agg(", ".join),
            ]
        )
        return account_ids.map(joined).astype("str")


def assess(
    snapshot: DirectorySnapshot,
    config: DomainConfig,
    *,
    groups_listed: Mapping[str, int] | None = None,
) -> Scope:
    """Normalise each person's email, decide who is in scope and who is desired, and list
    what is wrong: invalid people, unknown members, missing or empty selected groups.
    ``groups_listed``: each selected group that exists and its member rows in the whole
    directory, when the snapshot holds only some of its people (``reconcile.DomainFacts``)."""
    users = snapshot.users
    normal = normalise_emails(users["email"])
    people = users.assign(email_given=users["email"], email=normal["email"])
    domains = set(config.domains)
    in_domain = contains(normal["domain"], pd.Series(sorted(domains), dtype="str"))

    members, listed = _selected_members(snapshot.members, config.groups)
    found = set(snapshot.groups.loc[snapshot.groups["found"], "group"])
    if groups_listed is not None:
        found, listed = set(groups_listed), dict(groups_listed)
    group_status = _group_status(found, config, listed)
    if config.groups:
        in_scope, memberships, member_errors = _membership(
            members, people, domains, snapshot.source.value
        )
    else:
        in_scope = np.ones(len(people), dtype=bool)
        memberships = pd.DataFrame({"account_id": [], "group": []}, dtype="str")
        member_errors = empty_frame(ERRORS)

    candidate = people["active"].to_numpy() & in_scope
    no_name = blank(people["given_name"]) | blank(people["family_name"])
    bad_email = normal["email"].isna().to_numpy()
    # The first problem found is the one reported.
    error = np.full(len(people), None, dtype=object)
    detail = np.full(len(people), None, dtype=object)
    missing_name = candidate & no_name
    error[missing_name] = "missing_name"
    detail[missing_name] = "givenName and familyName are both required"
    outside = candidate & ~in_domain
    error[outside] = "outside_domain"
    detail[outside] = f"its domain is not {_listing(config.domains)}"
    invalid = candidate & bad_email
    error[invalid] = "invalid_email"
    detail[invalid] = normal["error"][invalid].to_numpy(dtype=object)
    flagged = missing_name | outside | invalid
    people["in_scope"] = in_scope
    people["error"] = text_array(error)
    people["error_detail"] = text_array(detail)
    people["desired"] = candidate & ~flagged

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
        memberships=memberships,
    )


def _selected_members(
    members: pd.DataFrame, groups: tuple[str, ...]
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The members of the selected groups, and how many each group lists (one pass)."""
    selected = pa.array(groups, pa.large_string())
    at = pc.index_in(to_arrow(members["group"]), value_set=selected).fill_null(-1)
    group_at = np.asarray(at, dtype=np.int64)
    count = np.bincount(group_at[group_at >= 0], minlength=len(groups))
    listed = {group: int(count[groups.index(group)]) for group in groups}
    return where(members, group_at >= 0), listed


def _group_status(found: set[str], config: DomainConfig, counts: dict[str, int]) -> pd.DataFrame:
    """The selected groups that do not exist (not ``found``) or came back empty: each stops
    the domain. ``counts`` are the members listed for each selected group."""
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
) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
    """Which people are in a selected group, and which members are nobody we know."""
    if (members["member_type"] == "CUSTOMER").any():
        # A CUSTOMER member makes every user of the Workspace account a member.
        customer = members.loc[members["member_type"] == "CUSTOMER", "group"].iloc[0]
        everyone = pd.DataFrame({"account_id": people["account_id"], "group": customer})
        return np.ones(len(people), dtype=bool), everyone, empty_frame(ERRORS)
    users = where(members, (members["member_type"] != "GROUP").to_numpy())
    codes, uniques = factorize([to_arrow(people["account_id"]), to_arrow(users["member_id"])])
    person_code, member_code = codes[: len(people)], codes[len(people) :]
    is_person = np.zeros(len(uniques) + 1, dtype=bool)  # the extra slot is NA's -1
    is_person[person_code] = True
    is_person[-1] = False
    by_id = is_person[member_code]
    matched_id = users["member_id"].where(by_id)
    # Members known by email only: map them to the user with it.
    by_email = normalise_emails(users["member_email"][~by_id])
    if not by_id.all():
        known = people.dropna(subset=["email"]).drop_duplicates("email")
        email_to_id = pd.Series(known["account_id"].to_numpy(), index=known["email"])
        matched_id[~by_id] = by_email["email"].map(email_to_id).astype("str")
    found = matched_id.notna().to_numpy()
    memberships = where(pd.DataFrame({"account_id": matched_id, "group": users["group"]}), found)
    is_member = np.zeros(len(uniques) + 1, dtype=bool)
    is_member[member_code[found]] = True
    is_member[-1] = False
    in_scope = is_member[person_code]
    if not by_id.all():  # some were matched by email: look their ids up
        in_scope |= contains(people["account_id"], memberships["account_id"])

    strangers = users[~found]
    if strangers.empty:
        return in_scope, memberships, empty_frame(ERRORS)
    # Strangers are among the members known by email only: their addresses are normalised.
    outside = ~by_email["domain"][(~found)[~by_id]].isin(domains).to_numpy()
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
    return in_scope, memberships, errors


def _listing(domains: tuple[str, ...] | list[str]) -> str:
    """Domain names as a report says them: each with its Unicode form when it differs."""
    names = [display_domain(name) for name in domains]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def group_counts(snapshot: DirectorySnapshot, config: DomainConfig) -> pd.DataFrame:
    """For each of ``config.groups``: ``members``, its users as the snapshot lists them
    (nested groups flattened, so each user once), and ``desired``, how many of them a sync
    selecting that group would select (``assess``: valid, active, in the domain). One row per
    group, in ``config.groups``' order; a group the snapshot did not find counts 0. A
    CUSTOMER member makes everyone a member of its group alone, so a snapshot holding one
    is counted group by group."""
    customer = snapshot.members["member_type"] == "CUSTOMER"
    if len(config.groups) > 1 and customer.any():
        return pd.concat(
            [
                group_counts(snapshot, dataclasses.replace(config, groups=(group,)))
                for group in config.groups
            ],
            ignore_index=True,
        )
    assessed = assess(snapshot, config)
    users = snapshot.members[snapshot.members["member_type"] != "GROUP"]
    members = users.drop_duplicates(["group", "member_id"]).groupby("group").size()
    people = assessed.people
    desired_ids = people.loc[people["desired"], "account_id"]
    kept = assessed.memberships.drop_duplicates()
    kept = kept[contains(kept["account_id"], desired_ids)]
    desired = kept.groupby("group").size()
    groups = pd.Series(config.groups, dtype="str")
    return pd.DataFrame(
        {
            "group": groups,
            "members": groups.map(members).fillna(0).astype("int64"),
            "desired": groups.map(desired).fillna(0).astype("int64"),
        }
    )
