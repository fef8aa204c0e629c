"""Linking people to Komeet accounts (ARCHITECTURE.md, "Identity and matching").

Every person and every account is a node; each carries keys: ids, addresses and employee
ids. Two nodes that share a key are linked. A person is matched to an account when the two
form a component of their own and share an id or an address. The rules, in order:

1. stable id: Komeet ``externalId`` = the source's immutable id;
2. normalised primary email = Komeet ``userName`` (or its primary email);
3. a source alias = Komeet ``userName`` (the person was renamed).

Any other component (several accounts for a person, several people for an account, two
people or two accounts sharing an address, an id or an employee id) is a dispute: no action
for any of its nodes, and the cluster is listed in duplicates with what its nodes share.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd


class KeyKind(StrEnum):
    STABLE_ID = "stable id"  # person: Google id, IdP externalId or staged resource id
    EMAIL = "email"  # person: normalised primary email
    ALIAS = "alias"  # person: Google alias, SCIM emails[]
    EXTERNAL_ID = "externalId"  # account
    USER_NAME = "userName"  # account
    ACCOUNT_EMAIL = "primary email"  # account
    EMPLOYEE_ID = "employee id"  # both


class MatchRule(StrEnum):
    STABLE_ID = "stable_id"  # rule 1
    EMAIL = "email"  # rule 2
    ALIAS = "alias"  # rule 3


_NAMESPACE: dict[str, str] = {
    KeyKind.STABLE_ID: "id",
    KeyKind.EXTERNAL_ID: "id",
    KeyKind.EMAIL: "address",
    KeyKind.ALIAS: "address",
    KeyKind.USER_NAME: "address",
    KeyKind.ACCOUNT_EMAIL: "address",
    KeyKind.EMPLOYEE_ID: "employee id",
}


@dataclass(frozen=True)
class Links:
    """The outcome of matching ``person_count`` people (nodes 0..) and accounts (after)."""

    person_count: int
    component: np.ndarray  # node -> smallest node of its component
    matched_account: np.ndarray  # person -> account position, or -1
    match_rule: np.ndarray  # person -> MatchRule value, or "" when unmatched
    disputed: np.ndarray  # node -> in a dispute
    shared: pd.DataFrame  # node, kind, value: every key held by more than one node


def key_rows(node: np.ndarray, kind: KeyKind, values: pd.Series) -> pd.DataFrame:
    """Key rows for ``link``: one per node and non-empty value."""
    text = pd.Series(values.to_numpy(), dtype="str").str.strip()
    keep = (text.notna() & (text != "")).to_numpy()
    return pd.DataFrame(
        {"node": np.asarray(node, dtype=np.int64)[keep], "kind": kind.value, "value": text[keep]}
    )


def link(keys: pd.DataFrame, person_count: int, account_count: int) -> Links:
    node_count = person_count + account_count
    node = keys["node"].to_numpy(dtype=np.int64)
    code = np.empty(len(keys), dtype=np.int64)
    namespace = keys["kind"].map(_NAMESPACE).to_numpy()
    offset = 0
    for name in ("id", "address", "employee id"):
        mask = namespace == name
        codes, uniques = pd.factorize(keys["value"].to_numpy()[mask])
        code[mask] = codes + offset
        offset += len(uniques)

    # A node holding the same key twice (userName equal to its primary email) links nothing.
    distinct = ~pd.DataFrame({"node": node, "code": code}).duplicated().to_numpy()
    node, code, kind = node[distinct], code[distinct], keys["kind"].to_numpy()[distinct]
    holders = np.bincount(code, minlength=offset)
    is_shared = holders[code] > 1
    s_node, s_code, s_kind = node[is_shared], code[is_shared], kind[is_shared]

    order = np.argsort(s_code, kind="stable")
    s_node, s_code, s_kind = s_node[order], s_code[order], s_kind[order]
    starts = np.r_[0, np.flatnonzero(np.diff(s_code)) + 1] if len(s_code) else np.array([], int)
    first = np.repeat(s_node[starts], np.diff(np.r_[starts, len(s_code)]))
    component = _components(node_count, first, s_node)

    is_person = np.arange(node_count) < person_count
    persons = np.bincount(component, weights=is_person, minlength=node_count)
    accounts = np.bincount(component, weights=~is_person, minlength=node_count)
    # Employee ids alone never match: they only flag a probable duplicate.
    matching_key = np.isin(s_kind, [k.value for k in KeyKind if _NAMESPACE[k] != "employee id"])
    has_match_key = np.zeros(node_count, dtype=bool)
    has_match_key[component[s_node[matching_key]]] = True
    pair = (persons == 1) & (accounts == 1) & has_match_key
    size = persons + accounts
    disputed = (size[component] > 1) & ~pair[component]

    matched_account = np.full(person_count, -1, dtype=np.int64)
    paired_accounts = np.flatnonzero(pair[component] & ~is_person)
    person_of_pair = np.full(node_count, -1, dtype=np.int64)
    paired_people = np.flatnonzero(pair[component] & is_person)
    person_of_pair[component[paired_people]] = paired_people
    matched_account[person_of_pair[component[paired_accounts]]] = paired_accounts - person_count

    match_rule = np.full(person_count, "", dtype=object)
    for rule, key in (
        (MatchRule.ALIAS, KeyKind.ALIAS),
        (MatchRule.EMAIL, KeyKind.EMAIL),
        (MatchRule.STABLE_ID, KeyKind.STABLE_ID),
    ):  # the first rule wins, so it is written last
        holders_of_key = s_node[(s_kind == key.value) & (s_node < person_count)]
        holders_of_key = holders_of_key[matched_account[holders_of_key] >= 0]
        match_rule[holders_of_key] = rule.value

    shared = pd.DataFrame(
        {
            "node": s_node,
            "kind": s_kind,
            "value": keys["value"].to_numpy()[distinct][is_shared][order],
        }
    )
    return Links(
        person_count=person_count,
        component=component,
        matched_account=matched_account,
        match_rule=match_rule,
        disputed=disputed,
        shared=shared,
    )


def _components(node_count: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Connected components by minimum-label propagation with pointer jumping."""
    label = np.arange(node_count, dtype=np.int64)
    if len(left) == 0:
        return label
    while True:
        low = np.minimum(label[left], label[right])
        new = label.copy()
        np.minimum.at(new, left, low)
        np.minimum.at(new, right, low)
        new = new[new]
        if np.array_equal(new, label):
            return label
        label = new


def dispute_clusters(links: Links, node_names: np.ndarray) -> pd.DataFrame:
    """One row per disputed node: its cluster id and the reason, in words.

    ``node_names`` labels each node ("google user 123", "komeet account 9"). The cluster id
    is a hash of the sorted names of its nodes, so it does not depend on input order.
    """
    disputed_nodes = np.flatnonzero(links.disputed)
    if len(disputed_nodes) == 0:
        return pd.DataFrame({"node": [], "cluster_id": [], "reason": []}).astype(
            {"node": np.int64, "cluster_id": "str", "reason": "str"}
        )
    members = pd.DataFrame(
        {
            "node": disputed_nodes,
            "component": links.component[disputed_nodes],
            "name": node_names[disputed_nodes],
        }
    )
    cluster_id = (
        members.sort_values("name")
        .groupby("component")["name"]
        .agg(lambda names: "dup_" + hashlib.sha256("\n".join(names).encode()).hexdigest()[:12])
    )
    shared = links.shared[links.disputed[links.shared["node"].to_numpy()]]
    shared = shared.assign(
        component=links.component[shared["node"].to_numpy()],
        name=node_names[shared["node"].to_numpy()],
        kind_name=shared["kind"].map(_NAMESPACE).replace("address", "email"),
    )
    per_key = (
        shared.sort_values("name")
        .groupby(["component", "kind_name", "value"])["name"]
        .agg(", ".join)
        .reset_index()
    )
    per_key["text"] = (
        "share " + per_key["kind_name"] + " " + per_key["value"] + " (" + per_key["name"] + ")"
    )
    reason = (
        per_key.sort_values("text").groupby("component")["text"].agg("; ".join)
        + ": no action for any of them until one account remains per person"
    )
    return pd.DataFrame(
        {
            "node": members["node"].to_numpy(),
            "cluster_id": members["component"].map(cluster_id).to_numpy(),
            "reason": members["component"].map(reason).to_numpy(),
        }
    )
