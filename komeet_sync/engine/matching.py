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
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum, StrEnum

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api.extensions import ExtensionArray
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from komeet_sync.model.frames import factorize, flags, labels, to_arrow


class KeyKind(IntEnum):
    STABLE_ID = 0  # person: Google id, IdP externalId or staged resource id
    EMAIL = 1  # person: normalised primary email
    ALIAS = 2  # person: Google alias, SCIM emails[]
    EXTERNAL_ID = 3  # account
    USER_NAME = 4  # account
    ACCOUNT_EMAIL = 5  # account
    PERSON_EMPLOYEE_ID = 6
    ACCOUNT_EMPLOYEE_ID = 7


class MatchRule(StrEnum):
    STABLE_ID = "stable_id"  # rule 1
    EMAIL = "email"  # rule 2
    ALIAS = "alias"  # rule 3


_NAMESPACES: dict[str, tuple[KeyKind, ...]] = {
    "id": (KeyKind.STABLE_ID, KeyKind.EXTERNAL_ID),
    "email": (KeyKind.EMAIL, KeyKind.ALIAS, KeyKind.USER_NAME, KeyKind.ACCOUNT_EMAIL),
    "employee id": (KeyKind.PERSON_EMPLOYEE_ID, KeyKind.ACCOUNT_EMPLOYEE_ID),
}
_NAMESPACE_OF = {kind: name for name, kinds in _NAMESPACES.items() for kind in kinds}
NAMESPACES = tuple(_NAMESPACES)  # "id", "email", "employee id": keys link within one only
# An employee id held by more nodes than this is a placeholder ("n/a", "0"), not an identity.
MAX_EMPLOYEE_ID_HOLDERS = 4


@dataclass(frozen=True)
class Keys:
    """One kind of key for a set of nodes: ``values[i]`` is a key of node ``nodes[i]``.
    Values are compared as given: normalise them first. A node must not hold one value
    twice within a namespace (a userName equal to the primary email): leave the copy out."""

    kind: KeyKind
    nodes: np.ndarray
    values: pd.Series


@dataclass(frozen=True)
class Links:
    """The outcome of matching ``person_count`` people (nodes 0..) and accounts (after)."""

    person_count: int
    component: np.ndarray  # node -> its component's number
    matched_account: np.ndarray  # person -> account position, or -1
    match_rule: ExtensionArray  # person -> MatchRule value, or "" when unmatched
    disputed: np.ndarray  # node -> in a dispute
    shared: pd.DataFrame  # node, kind, value: the keys that disputed nodes share


def link(keys: list[Keys], person_count: int, account_count: int) -> Links:
    node_count = person_count + account_count
    nodes, codes, kinds, values = [], [], [], []
    offset = 0
    for namespace, members in _NAMESPACES.items():
        parts = [_present(k) for k in keys if k.kind in members]
        parts = [(kind, holders, text) for kind, holders, text in parts if len(holders)]
        if not parts:
            continue
        node = np.concatenate([holders for _, holders, _ in parts])
        kind = np.concatenate([np.full(len(holders), k, dtype=np.int8) for k, holders, _ in parts])
        code, uniques = factorize([text for _, _, text in parts])
        if namespace == "employee id":
            holders = np.bincount(code, minlength=len(uniques))
            keep = holders[code] <= MAX_EMPLOYEE_ID_HOLDERS
            node, code, kind = node[keep], code[keep], kind[keep]
        nodes.append(node)
        codes.append(code + offset)
        kinds.append(kind)
        values.append((offset, uniques))
        offset += len(uniques)
    node = np.concatenate(nodes) if nodes else np.array([], dtype=np.int64)
    code = np.concatenate(codes) if codes else np.array([], dtype=np.int64)
    kind = np.concatenate(kinds) if kinds else np.array([], dtype=np.int8)

    holders = np.bincount(code, minlength=offset)
    is_shared = holders[code] > 1
    s_node, s_code, s_kind = node[is_shared], code[is_shared], kind[is_shared]

    # Each shared key links its holders to one of them; components follow in linear time.
    holder = np.zeros(offset, dtype=np.int64)
    holder[s_code] = s_node
    edges = coo_matrix(
        (np.ones(len(s_node), dtype=np.int8), (holder[s_code], s_node)),
        shape=(node_count, node_count),
    )
    component = connected_components(edges, directed=False)[1].astype(np.int64)

    persons = np.bincount(component[:person_count], minlength=node_count)
    accounts = np.bincount(component[person_count:], minlength=node_count)
    # Employee ids alone never match: they only flag a probable duplicate.
    has_match_key = np.zeros(node_count, dtype=bool)
    has_match_key[component[s_node[s_kind < KeyKind.PERSON_EMPLOYEE_ID]]] = True
    pair_component = (persons == 1) & (accounts == 1) & has_match_key
    size = persons + accounts
    disputed = (size[component] > 1) & ~pair_component[component]

    matched_account = np.full(person_count, -1, dtype=np.int64)
    paired = pair_component[component]
    person_of_pair = np.full(node_count, -1, dtype=np.int64)
    paired_people = np.flatnonzero(paired[:person_count])
    person_of_pair[component[paired_people]] = paired_people
    paired_accounts = np.flatnonzero(paired[person_count:]) + person_count
    matched_account[person_of_pair[component[paired_accounts]]] = paired_accounts - person_count

    rules = ["", *(rule.value for rule in MatchRule)]
    rule_code = np.zeros(person_count, dtype=np.int64)
    for rule, key in (
        (MatchRule.ALIAS, KeyKind.ALIAS),
        (MatchRule.EMAIL, KeyKind.EMAIL),
        (MatchRule.STABLE_ID, KeyKind.STABLE_ID),
    ):  # the first rule wins, so it is written last
        holders_of_key = s_node[s_kind == key]
        holders_of_key = holders_of_key[matched_account[holders_of_key] >= 0]
        rule_code[holders_of_key] = rules.index(rule.value)

    in_dispute = disputed[s_node]
    shared = pd.DataFrame(
        {
            "node": s_node[in_dispute],
            "kind": [_NAMESPACE_OF[KeyKind(k)] for k in s_kind[in_dispute]],
            "value": _values_of(s_code[in_dispute], values),
        }
    )
    return Links(
        person_count=person_count,
        component=component,
        matched_account=matched_account,
        match_rule=labels(rule_code, rules),
        disputed=disputed,
        shared=shared,
    )


def key_rows(keys: list[Keys], person_count: int) -> pd.DataFrame:
    """The keys as rows: ``node`` (people 0..person_count-1, then accounts), ``person``
    (whether the node is a person), ``namespace`` and ``value``; missing values left out."""
    frames = []
    for key in keys:
        kind, nodes, text = _present(key)
        frames.append(
            pd.DataFrame(
                {
                    "node": nodes,
                    "person": nodes < person_count,
                    "namespace": _NAMESPACE_OF[kind],
                    "value": pd.Series(text, dtype="str").array,
                }
            )
        )
    return pd.concat(frames, ignore_index=True).drop_duplicates(ignore_index=True)


def _present(keys: Keys) -> tuple[KeyKind, np.ndarray, pa.ChunkedArray]:
    """The keys' kind, and the nodes and values of those that are not missing."""
    text = to_arrow(keys.values)
    nodes = np.asarray(keys.nodes, dtype=np.int64)
    if text.null_count == 0:
        return keys.kind, nodes, text
    present = flags(pc.is_valid(text))
    return keys.kind, nodes[present], text.filter(present)


def _values_of(codes: np.ndarray, values: list[tuple[int, pa.Array]]) -> np.ndarray:
    """The key values behind ``codes`` (few: the disputed ones)."""
    found = np.empty(len(codes), dtype=object)
    for start, uniques in values:
        here = (codes >= start) & (codes < start + len(uniques))
        found[here] = uniques.take(codes[here] - start).to_numpy(zero_copy_only=False)
    return found


def dispute_clusters(links: Links, node_names: Callable[[np.ndarray], np.ndarray]) -> pd.DataFrame:
    """One row per disputed node: its cluster id and the reason, in words.

    ``node_names`` labels nodes ("google user 123", "komeet account 9"). The cluster id is a
    hash of the smallest name in the cluster, so it does not depend on input order.
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
            "name": node_names(disputed_nodes),
        }
    )
    smallest = members.groupby("component")["name"].min()
    cluster_id = pd.Series(
        ["dup_" + hashlib.sha256(name.encode()).hexdigest()[:12] for name in smallest],
        index=smallest.index,
    )
    shared = links.shared.assign(
        component=links.component[links.shared["node"].to_numpy()],
        name=node_names(links.shared["node"].to_numpy()),
        kind_name=links.shared["kind"],
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
