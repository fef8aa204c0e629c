"""Reconciliation: from a directory snapshot and Komeet's accounts to reports and a plan.

Pure pandas, no I/O (ARCHITECTURE.md, "Layers"). One row per person or account, each with
its situation (ARCHITECTURE.md, "Situations"), the action it needs and the reason in words;
the reports are views of those rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api.extensions import ExtensionArray

from komeet_sync.engine import guards, scope
from komeet_sync.engine.matching import (
    KeyKind,
    Keys,
    Links,
    MatchRule,
    dispute_clusters,
    key_rows,
    link,
)
from komeet_sync.engine.planning import build_plan
from komeet_sync.model.domain_config import DomainConfig
from komeet_sync.model.emails import email_domain, normalise_emails
from komeet_sync.model.frames import (
    KOMEET_ACCOUNTS,
    Source,
    blank,
    conform,
    contains,
    flags,
    from_arrow,
    labels,
    to_arrow,
    where,
)
from komeet_sync.model.plan import Plan
from komeet_sync.model.reports import RECONCILED
from komeet_sync.model.situations import ACTION_OF, Action, Situation
from komeet_sync.model.snapshots import DirectorySnapshot, KomeetAccounts

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


@dataclass(frozen=True)
class DomainFacts:
    """What a reconciliation of some of a domain's components (an incremental sync:
    docs/incremental.md) takes from the whole domain, because its own people and accounts
    cannot tell it.

    The guards that compare whole directories (the shrink of the directory, the budget of
    one plan's deactivations) are not evaluated on such a part: the incremental sync counts
    its deactivations over a rolling window instead."""

    # Each selected group that exists: how many member rows the whole directory lists for
    # it, or 1 for any number (the empty-group guard compares it with 0, and the sources of
    # an incremental sync do not count a large group). A selected group left out is missing.
    groups_listed: Mapping[str, int]
    # Employee ids that more than MAX_EMPLOYEE_ID_HOLDERS people and accounts of the whole
    # domain hold: placeholders, not keys, though the part holds fewer of them.
    common_employee_ids: frozenset[str] = field(default_factory=frozenset)


def reconcile(
    snapshot: DirectorySnapshot,
    komeet: KomeetAccounts,
    config: DomainConfig,
    *,
    last_good_desired: int | None = None,
    facts: DomainFacts | None = None,
) -> Reconciliation:
    """Decide every person's and account's situation, the reports and the plan.

    ``last_good_desired`` is the number of desired people in the last snapshot that was
    applied; the shrink guard compares against it. Komeet's unreadable accounts are listed
    in the errors report. ``facts``: the snapshot and the accounts are whole components of
    the domain's matching graph, not the whole domain, and ``facts`` says what the whole
    domain would (``DomainFacts``); each of their people and accounts then gets the decision
    a reconciliation of the whole domain gives it.
    """
    assessed = scope.assess(
        snapshot, config, groups_listed=facts.groups_listed if facts is not None else None
    )
    people = assessed.people.reset_index(drop=True)
    accounts, outside = _domain_accounts(
        conform(komeet.accounts, KOMEET_ACCOUNTS, "komeet accounts"), config
    )

    n, m = len(people), len(accounts)
    common = facts.common_employee_ids if facts is not None else frozenset()
    links = link(_keys(people, assessed.aliases, accounts, common), n, m)
    clusters = dispute_clusters(links, _namer(people, accounts))

    rows = _rows(people, accounts, links, clusters)
    rows = _situate(rows, assessed, config)

    errors = assessed.errors
    if len(komeet.unreadable):
        errors = pd.concat(
            [errors, komeet.unreadable.assign(reason="this Komeet account is left as it is")],
            ignore_index=True,
        )
    desired = int(people["desired"].sum())
    active_managed = int((accounts["active"] & accounts["managed"]).sum())
    planned = rows[rows["action"] != ""]
    holds = guards.evaluate(
        config,
        missing_groups=assessed.missing_groups,
        desired=desired,
        last_good_desired=last_good_desired if facts is None else None,
        deactivations=int((planned["action"] == Action.DEACTIVATE).sum()),
        active_managed=active_managed if facts is None else None,
    )
    plan = build_plan(config.domain, _plan_rows(planned), holds, part=facts is not None)
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
        report.name: reports[report.name][list(report.columns)]
        .sort_values(list(report.columns[:2]), kind="stable")
        .reset_index(drop=True)
        for report in RECONCILED
    }
    stats = {
        "directory_users": n,
        "desired": desired,
        "komeet_accounts": m,
        "komeet_accounts_outside_domain": outside,
        "active_managed_accounts": active_managed,
    }
    return Reconciliation(config.domain, rows, reports, plan, stats)


def node_keys(
    snapshot: DirectorySnapshot, komeet: KomeetAccounts, config: DomainConfig
) -> pd.DataFrame:
    """Every key that matching links people and the domain's accounts by, as it compares
    them (normalised): one row per ``person`` (True: a person, by ``account_id``; False: a
    Komeet account of the domain, by ``komeet_id``), ``id``, ``namespace`` ("id", "email"
    or "employee id") and ``value``. An incremental sync follows these keys to gather whole
    components (docs/incremental.md); the staging index of person keys is tested against
    them."""
    assessed = scope.assess(snapshot, config)
    return _node_keys(assessed.people.reset_index(drop=True), assessed.aliases, komeet, config)


# What ``_keys`` reads of each person.
_PERSON_COLUMNS = ("account_id", "email", "stable_id", "employee_id")


def account_keys(komeet: KomeetAccounts, config: DomainConfig) -> pd.DataFrame:
    """The keys of the domain's accounts, as ``node_keys`` gives them for a directory of
    nobody, without assessing one: a read of Komeet by key picks the holders of some keys
    out of what it found by them (``komeet.accounts.KomeetSide``)."""
    nobody = pd.DataFrame({column: pd.Series(dtype="str") for column in _PERSON_COLUMNS})
    no_aliases = pd.DataFrame({"account_id": nobody["account_id"], "alias": nobody["email"]})
    return _node_keys(nobody, no_aliases, komeet, config)


def _node_keys(
    people: pd.DataFrame, aliases: pd.DataFrame, komeet: KomeetAccounts, config: DomainConfig
) -> pd.DataFrame:
    accounts, _ = _domain_accounts(
        conform(komeet.accounts, KOMEET_ACCOUNTS, "komeet accounts"), config
    )
    rows = key_rows(_keys(people, aliases, accounts), len(people))
    node = rows["node"].to_numpy()
    person = rows["person"].to_numpy()
    ids = np.empty(len(rows), dtype=object)
    ids[person] = people["account_id"].to_numpy(object)[node[person]]
    ids[~person] = accounts["komeet_id"].to_numpy(object)[node[~person] - len(people)]
    return pd.DataFrame(
        {
            "person": person,
            "id": pd.array(ids, dtype="str"),
            "namespace": rows["namespace"].astype("str"),
            "value": rows["value"],
        }
    )


def _keys(
    people: pd.DataFrame,
    aliases: pd.DataFrame,
    accounts: pd.DataFrame,
    common_employee_ids: frozenset[str] = frozenset(),
) -> list[Keys]:
    """What each person and account is known by (ARCHITECTURE.md, "Identity and
    matching"). People are nodes 0..n-1, accounts n..n+m-1. ``common_employee_ids`` are no
    keys (``DomainFacts``)."""
    n, m = len(people), len(accounts)
    # Few people have aliases: the merge runs on those alone.
    owners = np.flatnonzero(contains(people["account_id"], aliases["account_id"]))
    alias_owner = aliases.merge(
        pd.DataFrame({"account_id": people["account_id"].array.take(owners), "position": owners}),
        on="account_id",
    )
    # Each address once per node: an alias that is the person's own email adds nothing.
    own = alias_owner["alias"].to_numpy(object) == people["email"].array.take(
        alias_owner["position"].to_numpy()
    ).to_numpy(object)
    alias_owner = alias_owner[~own].drop_duplicates(["position", "alias"])
    account_email = accounts["email_norm"].where(
        accounts["email_norm"] != accounts["user_name_norm"]
    )
    people_nodes, account_nodes = np.arange(n), np.arange(n, n + m)

    def employee_id(frame: pd.DataFrame) -> pd.Series:
        text = _key_text(frame["employee_id"])
        if not common_employee_ids:
            return text
        return text.where(~text.isin(list(common_employee_ids)))

    return [
        Keys(KeyKind.STABLE_ID, people_nodes, _key_text(people["stable_id"])),
        Keys(KeyKind.EMAIL, people_nodes, people["email"]),
        Keys(KeyKind.ALIAS, alias_owner["position"].to_numpy(), alias_owner["alias"]),
        Keys(KeyKind.PERSON_EMPLOYEE_ID, people_nodes, employee_id(people)),
        Keys(KeyKind.EXTERNAL_ID, account_nodes, _key_text(accounts["external_id"])),
        Keys(KeyKind.USER_NAME, account_nodes, accounts["user_name_norm"]),
        Keys(KeyKind.ACCOUNT_EMAIL, account_nodes, account_email),
        Keys(KeyKind.ACCOUNT_EMPLOYEE_ID, account_nodes, employee_id(accounts)),
    ]


def _namer(people: pd.DataFrame, accounts: pd.DataFrame) -> Callable[[np.ndarray], np.ndarray]:
    """How the duplicates report names nodes: "google user 123", "komeet account 9"."""
    n = len(people)

    def text_at(frame: pd.DataFrame, column: str, at: np.ndarray) -> np.ndarray:
        return frame[column].array.take(at).to_numpy(object)  # a few nodes of many

    def names(nodes: np.ndarray) -> np.ndarray:
        person = nodes < n
        label = np.empty(len(nodes), dtype=object)
        at = nodes[person]
        label[person] = text_at(people, "source", at) + " user " + text_at(people, "account_id", at)
        label[~person] = "komeet account " + text_at(accounts, "komeet_id", nodes[~person] - n)
        return label

    return names


def _key_text(values: pd.Series) -> pd.Series:
    """An identifier as a matching key: trimmed, and missing when empty."""
    text = values.astype("str").str.strip()
    return text.where(text != "")


def _domain_accounts(komeet: pd.DataFrame, config: DomainConfig) -> tuple[pd.DataFrame, int]:
    """The domain's accounts: userName in the domain or an alias domain. The sync never
    reads or writes any other account."""
    normal = normalise_emails(komeet["user_name"])
    user_name, domain = normal["email"], normal["domain"]
    invalid = user_name.isna()
    if invalid.any():
        # A userName that is not a valid email still identifies its account, lower-cased.
        user_name = user_name.fillna(komeet["user_name"][invalid].str.strip().str.lower())
        domain = domain.fillna(email_domain(user_name[invalid]))
    mine = contains(domain, pd.Series(config.domains, dtype="str"))
    accounts = where(komeet, mine).reset_index(drop=True)
    accounts["user_name_norm"] = where(user_name, mine).array
    accounts["email_norm"] = _account_emails(
        accounts["email"], where(komeet["user_name"], mine), where(normal, mine)
    )
    accounts["managed"] = ~blank(accounts["external_id"])
    protected = set(config.protected)
    accounts["protected"] = (
        accounts["user_name_norm"].isin(protected) | accounts["email_norm"].isin(protected)
    ).to_numpy()
    return accounts, int((~mine).sum())


def _account_emails(
    email: pd.Series, user_name: pd.Series, user_name_normal: pd.DataFrame
) -> ExtensionArray:
    """The accounts' emails, normalised. Most accounts' email is their userName, already
    normalised: only the others are normalised again."""
    same = flags(pc.equal(to_arrow(email), to_arrow(user_name)))
    other = email.notna().to_numpy() & ~same
    normal = user_name_normal["email"].where(same).reset_index(drop=True)
    normal[other] = normalise_emails(email[other])["email"].array
    return normal.array


_ACCOUNT_SIDE = {
    "komeet_id": "komeet_id",
    "user_name_norm": "komeet_user_name",
    "active": "komeet_active",
    "external_id": "external_id",
    "given_name": "komeet_given_name",
    "family_name": "komeet_family_name",
    "managed": "managed",
    "protected": "protected",
}


def _rows(
    people: pd.DataFrame, accounts: pd.DataFrame, links: Links, clusters: pd.DataFrame
) -> pd.DataFrame:
    """One row per person (with the account matched to them, if any) and one per account
    that no person was matched to. Columns are taken by position; -1 is "none"."""
    n = len(people)
    matched = links.matched_account
    alone = np.ones(len(accounts), dtype=bool)
    alone[matched[matched >= 0]] = False
    lone_accounts = np.flatnonzero(alone)
    account_at = np.concatenate([matched, lone_accounts])
    node = np.concatenate([np.arange(n), lone_accounts + n])

    def person_side(values: pd.Series | ExtensionArray, fill: str | None = None):
        """People come first, in their order: their columns with the lone accounts' rows
        appended (one copy; a gather would look every row up)."""
        if values.dtype == bool:
            return np.concatenate(
                [np.asarray(values, dtype=bool), np.zeros(len(lone_accounts), bool)]
            )
        tail = labels(np.zeros(len(lone_accounts), dtype=np.int64), [fill])
        chunks = to_arrow(values).chunks + to_arrow(tail).chunks
        return from_arrow(pa.concat_arrays(chunks))  # one chunk: later gathers stay fast

    def account_side(values: pd.Series):
        if values.dtype == bool:
            if values.empty:
                return np.zeros(len(account_at), dtype=bool)
            return np.where(account_at >= 0, values.to_numpy()[np.maximum(account_at, 0)], False)
        return values.astype("str").array.take(account_at, allow_fill=True)

    columns = {
        ("person_active" if column == "active" else column): person_side(people[column])
        for column in people.columns
    }
    columns |= {name: account_side(accounts[column]) for column, name in _ACCOUNT_SIDE.items()}
    columns["has_person"] = node < n
    columns["has_account"] = account_at >= 0
    columns["match_rule"] = person_side(links.match_rule, "")
    columns["node"] = node
    columns["disputed"] = links.disputed[node]
    in_cluster = np.full(n + len(accounts), -1, dtype=np.int64)
    in_cluster[clusters["node"].to_numpy()] = np.arange(len(clusters))
    for column in ("cluster_id", "reason"):
        name = "dispute_reason" if column == "reason" else column
        columns[name] = clusters[column].astype("str").array.take(in_cluster[node], allow_fill=True)
    return pd.DataFrame(columns)


# In order: the first that holds is a row's situation (ARCHITECTURE.md, "Situations").
_SITUATION_ORDER = [
    Situation.DISPUTED,
    Situation.INVALID,
    Situation.JOINER,
    Situation.RETURNER,
    Situation.CHANGED,
    Situation.UNCHANGED,
    Situation.LEAVER,
    Situation.UNMANAGED,
    Situation.OUT_OF_SCOPE,
    Situation.INACTIVE,
]


def _situate(rows: pd.DataFrame, assessed: scope.Scope, config: DomainConfig) -> pd.DataFrame:
    """Each row's situation, action and reason (ARCHITECTURE.md, "Situations")."""
    has_person = rows["has_person"].to_numpy()
    has_account = rows["has_account"].to_numpy()
    desired = has_person & rows["desired"].to_numpy()
    active = rows["komeet_active"].to_numpy()
    managed = rows["managed"].to_numpy()
    invalid = has_person & rows["error"].notna().to_numpy()

    changes, differs = _changes(rows, desired & has_account)
    code = np.select(
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
        list(range(len(_SITUATION_ORDER) - 1)),
        default=len(_SITUATION_ORDER) - 1,
    )
    situations = [s.value for s in _SITUATION_ORDER]
    actions = ["", *(action.value for action in Action)]
    action_of = np.array(
        [actions.index(ACTION_OF[s].value) if s in ACTION_OF else 0 for s in _SITUATION_ORDER]
    )
    action = action_of[code]
    action[(code == _SITUATION_ORDER.index(Situation.LEAVER)) & rows["protected"].to_numpy()] = 0
    rows = rows.assign(
        situation=labels(code, situations), changes=changes, action=labels(action, actions)
    )
    rows["reason"] = _reasons(rows, code, assessed, config)
    rows["email"] = from_arrow(
        pc.coalesce(
            *(to_arrow(rows[column]) for column in ("email", "email_given", "komeet_user_name"))
        )
    )
    return rows


def _changes(rows: pd.DataFrame, compared: np.ndarray) -> tuple[pd.Series, np.ndarray]:
    """What differs between a desired person and their account, in words."""

    def differ(ours: str, theirs: str) -> np.ndarray:
        a, b = to_arrow(rows[ours]), to_arrow(rows[theirs])
        # Equal as given is equal once trimmed: only the others are trimmed and compared.
        at = np.flatnonzero(compared & ~flags(pc.equal(a, b)))

        def trimmed(values: pa.ChunkedArray) -> pa.ChunkedArray:
            return pc.utf8_trim_whitespace(pc.fill_null(values.take(at), ""))

        differs = np.zeros(len(rows), dtype=bool)
        differs[at] = flags(pc.not_equal(trimmed(a), trimmed(b)))
        return differs

    user_name = differ("email", "komeet_user_name")
    given = differ("given_name", "komeet_given_name")
    family = differ("family_name", "komeet_family_name")
    external = differ("stable_id", "external_id")
    differs = user_name | given | family | external
    if not differs.any():
        return pd.Series(
            labels(np.zeros(len(rows), dtype=np.int64), [""]), index=rows.index
        ), differs
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
    # Empty parts leave separators behind: fold runs of them, drop them at the ends.
    joined = joined.str.replace(r"(?:; ){2,}", "; ", regex=True)
    joined = joined.str.replace(r"^(?:; )+|(?:; )+$", "", regex=True)
    # Row i's change is piece place[i]: "" (piece 0) for every row that does not differ.
    place = np.zeros(len(rows), dtype=np.int64)
    place[differs] = np.arange(1, len(joined) + 1)
    pieces = pa.chunked_array([pa.array([""], pa.large_string()), *to_arrow(joined).chunks])
    return pd.Series(from_arrow(pieces.take(place)), index=rows.index), differs


def _reasons(
    rows: pd.DataFrame, code: np.ndarray, assessed: scope.Scope, config: DomainConfig
) -> ExtensionArray:
    """Each row's reason in words. Built per situation, on that situation's rows only;
    ``code`` is each row's situation, as its place in _SITUATION_ORDER."""

    def rule_words(sub: pd.DataFrame, then: str = "") -> pd.Categorical[str]:
        """How each row was matched, in words: a few texts, so no string per row."""
        known = pa.array(list(_RULE_WORDS), pa.large_string())
        which = pc.index_in(to_arrow(sub["match_rule"]), value_set=known).fill_null(-1)
        words = [words + then for words in _RULE_WORDS.values()]
        return pd.Categorical.from_codes(np.asarray(which, dtype=np.int64), pd.Index(words))

    def rule(sub: pd.DataFrame) -> pd.Series:
        return pd.Series(rule_words(sub), index=sub.index).astype("str")

    def in_groups(sub: pd.DataFrame) -> pd.Series:
        member_of = assessed.groups_of(sub["account_id"])
        return ("member of " + member_of).fillna("active in the directory")

    def komeet_id(sub: pd.DataFrame) -> pd.Series:
        return sub["komeet_id"].fillna("")

    def leaver(sub: pd.DataFrame) -> pd.Series:
        gone = _why_not_desired(sub, config)
        return (gone + "; deactivate (never delete) account " + komeet_id(sub)).where(
            ~sub["protected"], gone + "; account is protected: kept active"
        )

    def unmanaged(sub: pd.DataFrame) -> pd.Series:
        return pd.Series(
            np.where(
                sub["has_person"],
                "account has no externalId, so the sync never touches it ("
                + _why_not_desired(sub, config)
                + ")",
                "account has no externalId and matches nobody in the directory: the sync "
                "did not create it and never touches it",
            ),
            index=sub.index,
        )

    def inactive(sub: pd.DataFrame) -> pd.Series:
        return pd.Series(
            np.where(
                sub["has_person"],
                sub["inactive_reason"].fillna("not desired") + "; no active Komeet account",
                "deactivated account; nobody in the directory matches it",
            ),
            index=sub.index,
        )

    builders: dict[Situation, Callable[[pd.DataFrame], pd.Series | pd.Categorical[str] | str]] = {
        Situation.JOINER: lambda sub: (
            in_groups(sub) + "; no Komeet account has this person's externalId, email or aliases"
        ),
        Situation.RETURNER: lambda sub: (
            in_groups(sub) + "; " + rule(sub) + " to deactivated account " + komeet_id(sub)
        ),
        Situation.CHANGED: lambda sub: rule(sub) + ": " + sub["changes"],
        Situation.UNCHANGED: lambda sub: rule_words(sub, "; up to date"),
        Situation.INVALID: lambda sub: (
            sub["error"].fillna("")
            + " ("
            + sub["error_detail"].fillna("")
            + "): "
            + scope.NO_ACTION
        ),
        Situation.DISPUTED: lambda sub: sub["dispute_reason"].fillna(""),
        Situation.LEAVER: leaver,
        Situation.UNMANAGED: unmanaged,
        Situation.OUT_OF_SCOPE: lambda sub: _out_of_scope_reason(config),
        Situation.INACTIVE: inactive,
    }
    needs = {
        Situation.UNCHANGED: ["match_rule"],
        Situation.OUT_OF_SCOPE: [],
    }
    # Each situation's reasons are texts and, for each of its rows, the place of its text
    # among them: a row's reason is found by its place in all the texts.
    texts: list[pa.Array] = []
    unbuilt, missing = -2, -1
    place = np.full(len(rows), unbuilt, dtype=np.int64)
    placed = 0
    for which, build in builders.items():
        mask = code == _SITUATION_ORDER.index(which)
        if mask.any():
            # Take only the columns a reason needs: most rows are unchanged ones.
            built = build(rows.loc[mask, needs.get(which, list(rows.columns))])
            if isinstance(built, str):  # one reason for all of them
                text, at = pa.array([built], pa.large_string()), np.zeros(int(mask.sum()), int)
            elif isinstance(built, pd.Categorical):  # a few reasons
                text, at = pa.array(built.categories, pa.large_string()), built.codes
            else:
                text, at = to_arrow(built).combine_chunks(), np.arange(len(built))
            texts.append(text)
            place[mask] = np.where(at >= 0, at.astype(np.int64) + placed, missing)
            placed += len(text)
    texts.append(pa.array(["", None], pa.large_string()))
    place[place == unbuilt] = placed
    place[place == missing] = placed + 1
    return from_arrow(pa.concat_arrays(texts).take(place))


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
