"""Why one person or account gets the decision it gets (``komeet-sync explain``; the
investigation notebook's ``why``): every rule that decided, in sentences an admin reads.

The decision is the engine's own, not a second implementation of it: the components of the
people and accounts holding the address are gathered through the sides an incremental sync
reads (``runs.incremental``), and ``engine.reconcile`` decides for them what a full sync
would (ARCHITECTURE.md, "Full and incremental syncs"). This module only reads the rows it
returns back in words: the source records, validity, activity, the selected groups and the
nested groups between, the accounts considered and the matching rule of each
(ARCHITECTURE.md, "Identity and matching"), the dispute, the situation and action, the
guards holding it, and what the ledger says was sent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pandas as pd
from sqlalchemy import Engine

from komeet_sync.engine.reconcile import DomainFacts, node_keys, reconcile
from komeet_sync.komeet.accounts import KomeetSide
from komeet_sync.komeet.client import KomeetClient
from komeet_sync.model.domain_config import DomainConfig, SourceKind
from komeet_sync.model.emails import InvalidEmail, normalise_email
from komeet_sync.model.frames import DIRECTORY_USERS, Source, empty_frame
from komeet_sync.model.holds import Hold
from komeet_sync.model.reports import ACCOUNTS, SNAPSHOT
from komeet_sync.model.snapshots import DirectorySnapshot, KomeetAccounts
from komeet_sync.runs.incremental import (
    AccountSide,
    Key,
    PeopleSide,
    SnapshotAccounts,
    SnapshotPeople,
    gather,
)
from komeet_sync.sources.google.people import GooglePeople
from komeet_sync.sources.google.reader import DirectoryReader, reader_for
from komeet_sync.sources.scim.people import StagedPeople
from komeet_sync.store.ledger import Ledger
from komeet_sync.store.plans import PlanState, PlanStore
from komeet_sync.store.results import ResultStore

EMAIL = "email"
_SOURCE_WORDS = {SourceKind.GOOGLE: "Google Workspace", SourceKind.SCIM: "the SCIM staging tables"}
# What a key shared with an account says, by namespace (ARCHITECTURE.md, "Identity and
# matching"): the rule each key stands for.
_RULE_WORDS = {
    "stable_id": "externalId (rule 1)",
    "email": "email (rule 2)",
    "alias": "alias (rule 3: renamed)",
}
# Plans whose actions still wait for someone (``PlanStatus``).
_WAITING = (PlanState.HELD, PlanState.APPROVED, PlanState.UNFINISHED)


class ExplainedPeople(PeopleSide, Protocol):
    """A directory side that can also say what ``explain`` asks: the selected groups'
    sizes (the empty-group guard) and the nested groups a person is in a group through."""

    def groups_listed(self) -> dict[str, int]:
        """Each selected group that exists, and the member rows the whole directory lists."""
        ...

    def membership_paths(self, account_id: str) -> Mapping[str, Sequence[str] | None]:
        """For each selected group the person is in, the nested groups from it down to the
        one listing the person (``[]``: listed directly; None: the read does not say)."""
        ...


@dataclass(frozen=True)
class Sides:
    """Where a decision is read from, and that place in words."""

    people: ExplainedPeople
    accounts: AccountSide
    origin: str


class NoStoredSync(LookupError):
    """``--last`` for a domain with no stored sync; the message says what to run."""


def sides_for(
    config: DomainConfig,
    engine: Engine,
    *,
    last: bool = False,
    store: ResultStore | None = None,
    reader: DirectoryReader | None = None,
    client: KomeetClient | None = None,
) -> Sides:
    """The sides ``explain`` decides from: the last stored sync of the domain (``last``,
    from ``store``), or live reads, by key, of the people and accounts that can change the
    decision (``runs.incremental.gather``): the source's (the Directory API through
    ``reader``, else one from the environment; the SCIM staging tables) and Komeet's
    (``client``)."""
    if last:
        stored = (store or ResultStore.from_settings()).latest(config.domain, ACCOUNTS)
        if stored is None or not stored.has(SNAPSHOT):
            raise NoStoredSync(
                f"no stored sync of {config.domain} holds what it read: run "
                f"`komeet-sync sync {config.domain}` (or --dry-run), or leave out --last to "
                "read the source and Komeet now"
            )
        started = (
            f" (started {stored.started_at:%Y-%m-%d %H:%M:%S} UTC)" if stored.started_at else ""
        )
        return Sides(
            SnapshotPeople(stored.read(SNAPSHOT), config),
            SnapshotAccounts(stored.read(ACCOUNTS), config),
            f"the last stored sync, {stored.sync_id}{started}",
        )
    if client is None:
        raise ValueError("give the Komeet client to explain from live reads")
    people: ExplainedPeople = (
        GooglePeople(reader or reader_for(config, engine=engine), config)
        if config.source is SourceKind.GOOGLE
        else StagedPeople(engine, config)
    )
    return Sides(
        people,
        KomeetSide(client, config),
        f"live reads of {_SOURCE_WORDS[config.source]} and Komeet",
    )


@dataclass(frozen=True)
class Explanation:
    """Every rule that decided for one address of a domain, and the sentences saying so."""

    domain: str
    email: str  # as asked
    origin: str  # what the decision was read from, in words
    subject: str  # "google user 123", "komeet account k9"; "" when nobody holds the address
    situation: str | None
    action: str | None  # None: no action
    reason: str | None  # the engine's reason, as in the reports
    reasons: list[str]  # every sentence, in order
    # The directory users holding the address (the one explained first), with aliases.
    records: list[dict[str, Any]] = field(default_factory=list)
    account: dict[str, Any] | None = None  # the Komeet account explained, when no person is
    valid: bool | None = None  # None: not checked (not active, or in no selected group)
    active: bool | None = None
    # Each selected group the person is in -> the nested groups between (None: not known).
    groups: dict[str, list[str] | None] = field(default_factory=dict)
    matches: list[dict[str, Any]] = field(default_factory=list)  # accounts (people) considered
    dispute: dict[str, Any] | None = None  # cluster_id, reason, claimants
    holds: list[str] = field(default_factory=list)  # the guards holding its action, in words
    ledger: list[dict[str, Any]] = field(default_factory=list)  # latest actions sent, newest first

    @property
    def found(self) -> bool:
        return bool(self.subject)

    def as_dict(self) -> dict[str, Any]:
        """The explanation as JSON values (``explain --json``)."""
        return {"found": self.found, **dataclasses.asdict(self)}

    def text(self) -> str:
        """The sentences for a console, under a line naming the decision."""
        if not self.found:
            headline = f"{self.email} in {self.domain}: not found"
        else:
            action = self.action or "no action"
            headline = f"{self.email} in {self.domain}: {self.subject}, {self.situation}, {action}"
        return "\n".join([headline, *(f"  - {sentence}" for sentence in self.reasons)])


def explain(
    config: DomainConfig,
    email: str,
    people: ExplainedPeople,
    accounts: AccountSide,
    engine: Engine,
    *,
    origin: str = "",
) -> Explanation:
    """Explain the decision for the person holding ``email`` in ``config``'s domain (as
    primary email or alias), or for the Komeet account holding it when no person does:
    their components are gathered from ``people`` and ``accounts`` and reconciled as a full
    sync would; guards, held plans and the ledger are read from ``engine``."""
    reasons = [f"Decided from {origin}."] if origin else []
    try:
        address = normalise_email(email)
    except InvalidEmail as exc:
        reasons.append(
            f"{email!r} is not a valid email address ({exc.reason.rstrip('.')}): people and "
            "accounts are found by a valid address."
        )
        return _not_found(config, email, origin, reasons)
    key: Key = (EMAIL, address)
    nobody = DirectorySnapshot.of(Source(config.source.value), empty_frame(DIRECTORY_USERS))
    gathered = gather(config, people, accounts, nobody, [key])
    facts = DomainFacts(people.groups_listed(), gathered.common_employee_ids)
    result = reconcile(gathered.snapshot, gathered.komeet, config, facts=facts)
    component = _Component(gathered.snapshot, gathered.komeet, result.rows, config, facts)
    holders = component.holders(key)
    if holders.empty:
        reasons.append(
            f"No user of {_SOURCE_WORDS[config.source]} has {address} as primary email or "
            f"alias, and no Komeet account of {config.domain} (userName in "
            f"{' or '.join(config.domains)}) has it as userName or email."
        )
        return _not_found(config, email, origin, reasons)
    people_holding = list(holders.loc[holders["person"], "id"])
    if people_holding:  # the one whose primary email it is, else one with it as an alias
        people_holding.sort(key=lambda person: component.person(person)["email"] != address)
        row = component.person(people_holding[0])
    else:
        row = component.account(holders["id"].iloc[0])
        reasons.append(component.account_words(row, address))
        if row["has_person"]:  # matched to a person by another key: theirs is the decision
            reasons.append(
                f"It is matched to {component.name(row)} by {_RULE_WORDS[row['match_rule']]}: "
                "the decision is that person's."
            )
            people_holding = [row["account_id"]]
    decision = _Decision(config, engine, email, origin, component, result.plan.holds, reasons)
    if row["has_person"]:
        return decision.person(row, people_holding, people)
    return decision.account(row)


class _Component:
    """The gathered people and accounts, the engine's rows for them, and the keys that link
    them (``engine.reconcile.node_keys``), looked up by person or account."""

    def __init__(
        self,
        snapshot: DirectorySnapshot,
        komeet: KomeetAccounts,
        rows: pd.DataFrame,
        config: DomainConfig,
        facts: DomainFacts,
    ) -> None:
        self.snapshot = snapshot
        self.rows = rows
        keys = node_keys(snapshot, komeet, config)
        placeholder = (keys["namespace"] == "employee id") & keys["value"].isin(
            list(facts.common_employee_ids)
        )
        self.keys = keys[~placeholder]

    def holders(self, key: Key) -> pd.DataFrame:
        namespace, value = key
        return self.keys[(self.keys["namespace"] == namespace) & (self.keys["value"] == value)]

    def person(self, account_id: str) -> pd.Series:
        rows = self.rows
        return rows[rows["has_person"] & (rows["account_id"] == account_id)].iloc[0]

    def account(self, komeet_id: str) -> pd.Series:
        rows = self.rows
        return rows[rows["has_account"] & (rows["komeet_id"] == komeet_id)].iloc[0]

    @staticmethod
    def name(row: pd.Series, account: bool = False) -> str:
        """A row's person (its account, when ``account`` or it has no person) as the
        duplicates report names it, with its address."""
        if row["has_person"] and not account:
            return f"{row['source']} user {row['account_id']} ({row['email_given']})"
        return f"komeet account {row['komeet_id']} ({row['komeet_user_name']})"

    @staticmethod
    def account_words(row: pd.Series, address: str) -> str:
        state = "active" if row["komeet_active"] else "deactivated"
        external = (
            f"externalId {row['external_id']}"
            if row["managed"]
            else "no externalId (the sync did not create or link it)"
        )
        return (
            f"No directory user has {address}; Komeet account {row['komeet_id']} "
            f"({row['komeet_user_name']}) does: {state}, {external}."
        )

    def shared(self, node: str, person: bool) -> dict[str, list[Key]]:
        """The other side's nodes sharing keys with ``node`` (an account_id when ``person``,
        else a komeet_id), each with the keys shared."""
        keys = self.keys
        own = keys.loc[(keys["person"] == person) & (keys["id"] == node), ["namespace", "value"]]
        both = keys[keys["person"] != person].merge(own, on=["namespace", "value"])
        shared: dict[str, list[Key]] = {}
        for other, namespace, value in zip(
            both["id"], both["namespace"], both["value"], strict=True
        ):
            shared.setdefault(str(other), []).append((str(namespace), str(value)))
        return dict(sorted(shared.items()))

    @staticmethod
    def key_words(person: pd.Series, key: Key) -> str:
        """A key a person shares with an account, from the person's side."""
        namespace, value = key
        if namespace == "id":
            return f"externalId {value} is the person's id"
        if namespace == "employee id":
            return f"both have employee id {value}"
        if value == person["email"]:
            return f"{value} is the person's email"
        return f"{value} is an alias of the person"


@dataclass
class _Decision:
    """The sentences of one decision, and what it reads from the database to say them."""

    config: DomainConfig
    engine: Engine
    email: str  # as asked
    origin: str
    component: _Component
    plan_holds: Sequence[Hold]  # the holds of the plan made for the component
    reasons: list[str]  # the sentences so far

    def say(self, sentence: str) -> None:
        self.reasons.append(sentence)

    def person(self, row: pd.Series, holding: list[str], people: ExplainedPeople) -> Explanation:
        config, component = self.config, self.component
        snapshot = component.snapshot
        account_id = str(row["account_id"])
        records = [_record(snapshot, person) for person in holding]
        aliases = records[0]["aliases"]
        name = " ".join(_text(records[0][part]) for part in ("given_name", "family_name")).strip()
        also = f", aliases {', '.join(aliases)}" if aliases else ""
        self.say(f"{component.name(row)}: {name or 'no name'}, id {row['stable_id']}{also}.")
        for other in holding[1:]:
            self.say(f"{component.name(component.person(other))} has this address too.")

        valid: bool | None
        if pd.notna(row["error"]):
            valid = False
            self.say(f"Not valid: {row['error']} ({row['error_detail']}).")
        elif row["person_active"] and row["in_scope"]:
            valid = True
            self.say("Valid: an address of the domain, given and family names present.")
        else:
            valid = None
            self.say("Validity not checked: only active people in a selected group are checked.")
        read_errors = snapshot.read_errors[snapshot.read_errors["account_id"] == account_id]
        for error in read_errors.itertuples():
            self.say(f"Read error: {error.error} ({error.detail}).")

        active = bool(row["person_active"])
        source = _SOURCE_WORDS[config.source]
        why_not = _text(row["inactive_reason"]) or "inactive"
        self.say(f"Active in {source}." if active else f"Not active in {source}: {why_not}.")

        groups = {
            group: None if path is None else list(path)
            for group, path in people.membership_paths(account_id).items()
        }
        self.say(_groups_words(config, groups))

        matches = []
        for komeet_id, keys in component.shared(account_id, person=True).items():
            account = component.account(komeet_id)
            matched = bool(row["has_account"]) and row["komeet_id"] == komeet_id
            rule = str(row["match_rule"]) if matched else ""
            shared = [component.key_words(row, key) for key in keys]
            matches.append(_match(account, shared, rule))
            verdict = f"matched by {_RULE_WORDS[rule]}" if matched else "considered"
            self.say(f"{component.name(account, True)}: {verdict}; {'; '.join(shared)}.")
        if not matches:
            self.say("No Komeet account has this person's id, email, aliases or employee id.")

        return self.explanation(
            row,
            f"{row['source']} user {account_id}",
            [_text(row["email"]), *aliases],
            row["stable_id"],
            "this person",
            records=records,
            valid=valid,
            active=active,
            groups=groups,
            matches=matches,
        )

    def account(self, row: pd.Series) -> Explanation:
        component = self.component
        komeet_id = str(row["komeet_id"])
        matches = []
        for person_id, keys in component.shared(komeet_id, person=False).items():
            person = component.person(person_id)
            shared = [component.key_words(person, key) for key in keys]
            matches.append(
                {"account_id": person_id, "email": person["email_given"], "shared": shared}
            )
            self.say(f"{component.name(person)}: considered; {'; '.join(shared)}.")
        if not matches:
            self.say("No directory user has its externalId, userName or email.")
        return self.explanation(
            row,
            f"komeet account {komeet_id}",
            [_text(row["komeet_user_name"])],
            row["external_id"],
            "this account",
            account=_match(row, [], "")
            | {"managed": bool(row["managed"]), "protected": bool(row["protected"])},
            matches=matches,
        )

    def explanation(
        self,
        row: pd.Series,
        subject: str,
        user_names: list[str],
        external_id: Any,
        whom: str,
        **found: Any,
    ) -> Explanation:
        """The decision's end, a person's or an account's: the dispute, the situation and
        action, the guards holding it, and the ledger; sentences in that order."""
        return Explanation(
            domain=self.config.domain,
            email=self.email,
            origin=self.origin,
            subject=subject,
            dispute=self.dispute(row),
            situation=str(row["situation"]),
            action=self.action(row),
            reason=_text(row["reason"]),
            holds=self.holds(row, user_names),
            ledger=self.ledger(user_names, row["komeet_id"], external_id, whom),
            reasons=self.reasons,
            **found,
        )

    def dispute(self, row: pd.Series) -> dict[str, Any] | None:
        """The dispute a row is in: its cluster, why, and the other claimants."""
        if not row["disputed"]:
            return None
        rows = self.component.rows
        cluster = rows[(rows["cluster_id"] == row["cluster_id"]) & (rows["node"] != row["node"])]
        claimants = [self.component.name(other) for _, other in cluster.iterrows()]
        self.say(
            f"Disputed, cluster {row['cluster_id']} of the duplicates report; the other "
            f"claimants: {', '.join(claimants)}."
        )
        return {
            "cluster_id": row["cluster_id"],
            "reason": row["dispute_reason"],
            "claimants": claimants,
        }

    def action(self, row: pd.Series) -> str | None:
        """The situation and action in words; the action, None when there is none."""
        action = _text(row["action"]) or None
        self.say(f"Situation: {row['situation']}: {row['reason']}.")
        self.say(f"Action: {action}." if action else "Action: none.")
        return action

    def holds(self, row: pd.Series, names: Sequence[str]) -> list[str]:
        """The guards that hold the action: the plan's holds (a missing or empty selected
        group), the domain's switch, and the stored plans still waiting with an action for
        these ``names`` (userNames) or this account."""
        config = self.config
        holds = [f"{hold.guard.value}: {hold.detail}" for hold in self.plan_holds]
        if not config.enabled:
            holds.append("the domain is disabled: nothing is written to Komeet for it")
        plans = PlanStore(self.engine)
        wanted = {name.lower() for name in names if name}
        komeet_id = _text(row["komeet_id"])
        listed = plans.list(config.domain)
        for plan_id in listed.loc[listed["state"].isin(list(_WAITING)), "plan_id"]:
            actions = plans.actions(plan_id)
            mine = (
                actions["user_name"].str.lower().isin(wanted)
                | actions["email"].str.lower().isin(wanted)
                | (actions["komeet_id"] == komeet_id if komeet_id else False)
            )
            status = plans.status(plans.get(plan_id))
            for action in actions.loc[mine.fillna(False), "action"]:
                holds.append(f"{plan_id} ({status}) has its {action} waiting: {status.next_step()}")
        for hold in holds:
            self.say(f"Held: {hold}.")
        return holds

    def ledger(
        self, user_names: Sequence[str], komeet_id: Any, external_id: Any, whom: str
    ) -> list[dict[str, Any]]:
        """The latest actions the ledger holds for these userNames, account or externalId."""
        sent = Ledger(self.engine).of_account(
            self.config.domain,
            user_names=user_names,
            komeet_ids=[_text(komeet_id)],
            external_ids=[_text(external_id)],
        )
        for entry in sent:
            http = f" (HTTP {entry.http_status})" if entry.http_status is not None else ""
            at = f", {entry.at:%Y-%m-%d %H:%M:%S} UTC" if entry.at is not None else ""
            self.say(
                f"Ledger{at}: {entry.action} {entry.user_name} {entry.status}{http}: "
                f"{entry.outcome or 'no outcome yet'} ({entry.plan_id})."
            )
        entries = [entry.as_dict() for entry in sent]
        if not entries:
            self.say(f"The ledger holds no action sent for {whom}.")
        return entries


def _not_found(config: DomainConfig, email: str, origin: str, reasons: list[str]) -> Explanation:
    return Explanation(config.domain, email, origin, "", None, None, None, reasons)


def _record(snapshot: DirectorySnapshot, account_id: str) -> dict[str, Any]:
    """A directory user as the source gave it, with its aliases."""
    user = snapshot.users[snapshot.users["account_id"] == account_id].iloc[0]
    aliases = snapshot.aliases.loc[snapshot.aliases["account_id"] == account_id, "alias"]
    record = {column: _value(user[column]) for column in DIRECTORY_USERS}
    return record | {"aliases": sorted(str(alias) for alias in aliases)}


def _match(account: pd.Series, shared: list[str], rule: str) -> dict[str, Any]:
    """A Komeet account considered, as ``Explanation.matches`` lists it."""
    return {
        "komeet_id": account["komeet_id"],
        "user_name": _text(account["komeet_user_name"]),
        "external_id": _text(account["external_id"]) or None,
        "active": bool(account["komeet_active"]),
        "shared": shared,
        "rule": rule or None,
    }


def _groups_words(config: DomainConfig, groups: Mapping[str, list[str] | None]) -> str:
    """The selected groups a person is in, and through which nested groups."""
    if not config.groups:
        return f"No group is selected for {config.domain}: every active user is in scope."
    if not groups:
        return f"In none of the selected groups ({', '.join(config.groups)})."
    said = []
    for group, path in groups.items():
        if path is None:
            said.append(
                f"member of {group} (directly or through a nested group: the read lists its "
                "members flattened and does not say)"
            )
        elif path:
            said.append(f"member of {group} through {' > '.join(path)}")
        else:
            said.append(f"member of {group}, listed directly")
    text = "; ".join(said)
    return text[0].upper() + text[1:] + "."


def _text(value: Any) -> str:
    """A cell as text; missing as the empty string."""
    return (
        ""
        if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value))
        else str(value)
    )


def _value(value: Any) -> Any:
    """A cell as a JSON value."""
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return None
    return value.item() if hasattr(value, "item") else value
