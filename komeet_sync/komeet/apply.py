"""Applying a stored plan to Komeet, each action exactly once in effect (ARCHITECTURE.md,
"Applying a plan").

- Nothing is sent for a disabled or a quarantined domain, or for a held plan until an admin
  approved it (ARCHITECTURE.md, "Guards"): every write to Komeet goes through
  ``apply_plan``, so no path forgets a guard.
- Every action has its ledger row before its first request; it is marked ``sending``
  before each request and gets its outcome after (a block of rows a transaction:
  ``_Writes``). Actions already applied or failed are never sent again, so a second apply
  or a resume after a crash repeats nothing.
- A create whose outcome may be unknown is preceded by a search of its userName
  (``filter=userName eq``): a create whose answer was lost, or that a killed process
  never recorded, is found and recorded instead of being sent twice. A create on its first
  attempt in a plan made from a fresh read is sent without one (``searched_first`` states
  the rule). A 409 on create searches, then links the account that holds the userName
  (sets its externalId), unless another person's externalId is on it.
- PATCH carries ``replace`` operations only, so resending one is harmless; 429, 5xx,
  timeouts and dropped connections are retried with capped backoff, a 4xx is recorded
  with the response body and the other actions go on.
- Concurrency is bounded (default 8 requests in flight); SCIM Bulk (RFC 7644 §3.7) is
  used where the target announces it, within its ``maxOperations`` and
  ``maxPayloadSize``, two requests in flight, each operation's own status read.

No code path sends DELETE: ``KomeetClient.send`` refuses it.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from komeet_sync.komeet.client import (
    Capabilities,
    KomeetClient,
    Reply,
    replace_operations,
    user_resource,
)
from komeet_sync.komeet.parallel import DEFAULT_CONCURRENCY, in_parallel
from komeet_sync.model.domain_config import Quarantine
from komeet_sync.model.situations import Action
from komeet_sync.progress import Advance
from komeet_sync.store.domains import DomainStore, UnknownDomain
from komeet_sync.store.ledger import Application, Entry, Ledger, Outcome, ResultsReport, Status
from komeet_sync.store.plans import PlanStore, StoredPlan

# Ledger rows marked ``sending`` in one transaction, and outcomes written in one (_Writes).
LEDGER_BLOCK = 32
LEDGER_DELAY = 0.5  # seconds an outcome waits at most for the others of its block
BULK_IN_FLIGHT = 2  # Bulk requests sent at once
# A Bulk request is kept this far under the target's maxPayloadSize, for the envelope.
PAYLOAD_MARGIN = 0.9


class Mode(StrEnum):
    SEQUENTIAL = "sequential"  # one request at a time
    CONCURRENT = "concurrent"  # up to ``concurrency`` requests at a time
    BULK = "bulk"  # SCIM Bulk requests, when the target announces them


class NotApplied(Exception):
    """Nothing was sent, and why. ``kind`` says which: a guard holds the plan ("held",
    "stopped") or its domain is disabled ("disabled") or quarantined ("quarantined", with
    its ``quarantine``), and the plan waits; or the plan is not one to apply (a later plan
    "superseded" it, only a "dry_run" made it, its domain is no longer configured:
    "unknown_domain"), and the operator must act."""

    WAITING = frozenset({"held", "stopped", "disabled", "quarantined"})
    HELD = frozenset({"held", "stopped"})  # a guard's hold, approvable or not

    def __init__(self, kind: str, message: str, quarantine: Quarantine | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.quarantine = quarantine

    @property
    def waiting(self) -> bool:
        """A guard or the domain's switch holds the plan, rather than a mistake to fix."""
        return self.kind in self.WAITING

    @property
    def held(self) -> bool:
        """A guard holds the plan: an approval may lift it ("held"), or its cause must be
        fixed ("stopped")."""
        return self.kind in self.HELD


@dataclass(frozen=True)
class ApplyResult:
    plan_id: str
    domain: str
    application_id: int | None  # None: the plan had been applied, nothing was sent
    resumed: bool
    mode: Mode
    sent: int  # actions that got their outcome this time
    counts: dict[str, int]  # ledger rows of the application, by status
    seconds: float
    requests: int
    failures: pd.DataFrame  # ledger rows that failed: action, user_name, http_status, outcome
    finished: bool  # no action is left to send
    entries: pd.DataFrame  # every ledger row of the application (model.reports.RESULTS)
    interrupted: bool = False  # the operator stopped it: ``remaining`` actions wait for a resume

    @property
    def failed(self) -> int:
        return self.counts.get(Status.FAILED.value, 0)

    @property
    def applied(self) -> int:
        return self.counts.get(Status.APPLIED.value, 0)

    @property
    def remaining(self) -> int:
        """Actions not sent yet, or whose answer never came (a resume settles them)."""
        return self.counts.get(Status.PENDING.value, 0) + self.counts.get(Status.SENDING.value, 0)

    def report(self) -> ResultsReport:
        """The sync's ``results``: the application's ledger rows."""
        return ResultsReport(self.plan_id, self.application_id, self.entries, self.counts)

    def summary(self) -> dict[str, Any]:
        return {
            "plan_id": self.plan_id,
            "domain": self.domain,
            "application_id": self.application_id,
            "resumed": self.resumed,
            "mode": self.mode.value,
            "sent": self.sent,
            "ledger": self.counts,
            "seconds": round(self.seconds, 3),
            "requests": self.requests,
            "finished": self.finished,
            "interrupted": self.interrupted,
            "failures": self.failures.to_dict("records"),
        }


def check_may_apply(engine: Engine, plan: StoredPlan) -> None:
    """Raise NotApplied when this plan may not be sent: its domain is gone, disabled or
    quarantined, a later plan superseded it, only a dry run made it (perhaps from an export
    of Komeet: a sync that makes it again applies it), or a guard holds it."""
    try:
        config = DomainStore(engine).get(plan.domain)
    except UnknownDomain:
        raise NotApplied(
            "unknown_domain",
            f"{plan.plan_id} is for {plan.domain}, which is no longer configured: nothing was sent",
        ) from None
    if plan.superseded_by is not None:
        plans = PlanStore(engine)
        newer = plans.status(plans.get(plan.superseded_by)).next_step()
        raise NotApplied(
            "superseded",
            f"{plan.plan_id} was superseded by {plan.superseded_by}, a later plan of "
            f"{plan.domain}: nothing was sent. {newer}",
        )
    if plan.dry_run:
        raise NotApplied(
            "dry_run",
            f"{plan.plan_id} was made by a dry run: nothing was sent. "
            + plan.how_a_sync_applies_it(),
        )
    if not config.enabled:
        raise NotApplied(
            "disabled",
            f"{plan.domain} is disabled: nothing was sent. Enable it with `komeet-sync "
            f"domains enable {plan.domain}`, then apply {plan.plan_id}",
        )
    if config.quarantine is not None:
        raise NotApplied(
            "quarantined", f"{plan.plan_id} not applied: {config.quarantine}", config.quarantine
        )
    if plan.stopped:
        raise NotApplied(
            "stopped",
            f"{plan.plan_id} is stopped: "
            + "; ".join(hold.detail for hold in plan.stopped)
            + ". Nothing was sent; fix the cause and sync again",
        )
    if plan.waiting_for_approval:
        raise NotApplied(
            "held",
            f"{plan.plan_id} is HELD and not approved: "
            + "; ".join(hold.detail for hold in plan.holds)
            + f". Nothing was sent. Review it with `komeet-sync plans show {plan.plan_id}`, "
            f"approve it with `komeet-sync plans approve {plan.plan_id} --by NAME`, then "
            f"`komeet-sync apply {plan.plan_id}`",
        )


def apply_plan(
    engine: Engine,
    plan_id: str,
    client: KomeetClient,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    mode: Mode | None = None,
    trigger: str = "apply",
    again: bool = False,
    fresh_read: bool = False,
    read_at: datetime | None = None,
    progress: Advance | None = None,
) -> ApplyResult:
    """Apply (or resume) a stored plan. ``again``: start a new application of a plan that
    was applied before (a sync found its actions still needed). ``fresh_read``: the plan
    was made just now from a read of Komeet, by the sync that applies it, so that a create
    on its first attempt is sent without a search (``searched_first``), unless another plan
    of the domain sent something since ``read_at``, the moment that read began (a whole
    sync and an incremental one may both write to a domain: the read may miss an account
    the other created).
    ``progress(done, total)`` is called as actions finish. Raises NotApplied when a guard
    forbids it, and KomeetRefused when Komeet refuses the token (the rest stays pending for
    a resume).

    Setting ``client.stopping`` (the operator's Ctrl-C) stops the application: the requests
    in flight are answered and recorded, nothing else is sent, and the result is
    ``interrupted`` with the actions that remain pending for ``komeet-sync apply``."""
    started = time.monotonic()
    requests_before = client.requests_sent
    plans = PlanStore(engine)
    plan = plans.get(plan_id)
    check_may_apply(engine, plan)
    if fresh_read and read_at is not None and plans.sent_since(plan.domain, read_at, plan_id):
        fresh_read = False
    ledger = Ledger(engine)
    application = ledger.open_application(plan.plan_id, trigger, again=again)
    if application is None:
        return _result(ledger, plan, None, Mode.SEQUENTIAL, 0, started, client, requests_before)
    entries = ledger.to_send(application)
    capabilities = client.capabilities() if entries else None
    if mode is None:
        mode = _default_mode(capabilities, concurrency)
    if mode is Mode.BULK and capabilities is not None and not capabilities.bulk:
        mode = Mode.CONCURRENT
    workers = 1 if mode is Mode.SEQUENTIAL else max(1, concurrency)
    settled = 0
    if entries:
        assert capabilities is not None
        applier = _Applier(
            client, ledger, capabilities, workers, len(entries), progress, fresh_read
        )
        if mode is Mode.BULK:
            applier.apply_bulk(entries)
        else:
            applier.apply_each(entries)
        settled = applier.settled
    ledger.finish(application)
    return _result(ledger, plan, application, mode, settled, started, client, requests_before)


def _default_mode(capabilities: Capabilities | None, concurrency: int) -> Mode:
    if capabilities is not None and capabilities.bulk:
        return Mode.BULK
    return Mode.CONCURRENT if concurrency > 1 else Mode.SEQUENTIAL


def _result(
    ledger: Ledger,
    plan: StoredPlan,
    application: Application | None,
    mode: Mode,
    sent: int,
    started: float,
    client: KomeetClient,
    requests_before: int,
) -> ApplyResult:
    entries = ledger.entries(plan.plan_id, application.id if application else None)
    counts = {str(k): int(v) for k, v in entries["status"].value_counts().sort_index().items()}
    failures = entries[entries["status"] == Status.FAILED.value][
        ["action", "user_name", "komeet_id", "http_status", "attempts", "outcome"]
    ].reset_index(drop=True)
    finished = not entries["status"].isin([Status.PENDING.value, Status.SENDING.value]).any()
    return ApplyResult(
        plan_id=plan.plan_id,
        domain=plan.domain,
        application_id=application.id if application else None,
        resumed=bool(application and application.resumed),
        mode=mode,
        sent=sent,
        counts=counts,
        seconds=time.monotonic() - started,
        requests=client.requests_sent - requests_before,
        failures=failures,
        finished=finished,
        entries=entries,
        interrupted=client.stopping.is_set() and not finished,
    )


class _Applier:
    """The requests of one application, and what they become in the ledger."""

    def __init__(
        self,
        client: KomeetClient,
        ledger: Ledger,
        capabilities: Capabilities,
        workers: int,
        total: int,
        progress: Advance | None,
        fresh_read: bool,
    ) -> None:
        self.client = client
        self.ledger = ledger
        self.capabilities = capabilities
        self.workers = workers
        self.total = total
        self.progress = progress
        self.fresh_read = fresh_read
        self._done = 0
        self._done_lock = threading.Lock()
        self._writes = _Writes(ledger)
        self._accounts: dict[str, dict[str, Any]] | None = None  # when filters are missing
        self._accounts_lock = threading.Lock()

    # One action at a time, on ``workers`` threads ------------------------------------

    def apply_each(self, entries: list[Entry]) -> None:
        self._each_once(entries)

    def apply_one(self, entry: Entry) -> None:
        """Send one action whose row is marked ``sending`` (``_Writes.marked``)."""
        outcome = self.outcome_of(entry)
        self._writes.record(entry.key, outcome)
        self._advance(1)

    def _each_once(self, entries: list[Entry]) -> None:
        """``apply_one`` on each entry, concurrently, each row marked ``sending`` before its
        requests and every outcome written before this returns (or raises)."""
        try:
            self._in_parallel(self.apply_one, entries, queue=self._writes.marked(entries))
        finally:
            self._writes.settle()

    def outcome_of(self, entry: Entry) -> Outcome:
        if entry.action == Action.CREATE:
            return self._create(entry)
        return self._patch(entry)

    def _create(self, entry: Entry) -> Outcome:
        sent = 0
        conflict: Reply | None = None
        last: Reply | None = None
        for attempt in range(1, self.client.backoff.attempts + 1):
            if conflict is not None or searched_first(entry, self.fresh_read):
                search, found = self._search(entry.user_name, fresh=conflict is not None)
                sent += search.attempts
                if not search.ok:
                    what = f"searching {entry.user_name} before the create"
                    return _failed(search, sent, what)
                if found is not None:
                    return self._existing(entry, found, sent)
                if conflict is not None:  # a 409, yet nobody holds the userName
                    return _failed(conflict, sent, "the create")
            reply = self.client.create_user(
                user_resource(
                    entry.user_name,
                    entry.external_id or "",
                    entry.given_name,
                    entry.family_name,
                )
            )
            sent += 1
            if reply.ok:
                return Outcome(
                    Status.APPLIED,
                    "created",
                    sent,
                    http_status=reply.status,
                    komeet_id=str(reply.document().get("id") or "") or None,
                )
            if reply.status == 409:
                conflict = reply
                continue
            if not reply.transient:
                return _failed(reply, sent, "the create")
            entry = _in_doubt(entry)  # it may have been applied: the next attempt searches
            last = reply
            wait_for = self.client.wait_before_retry(reply, attempt)
            if wait_for is None or not self.client.pause(wait_for):
                break
        assert last is not None
        return _failed(last, sent, f"the create, after {sent} requests")

    def _existing(self, entry: Entry, found: dict[str, Any], sent: int) -> Outcome:
        """A create whose userName Komeet already holds: ours from an earlier attempt (when
        one may have reached Komeet), linked if it carries no externalId, refused if it
        carries another person's."""
        komeet_id = str(found.get("id") or "")
        external_id = (found.get("externalId") or "").strip()
        if external_id and external_id != entry.external_id:
            return Outcome(
                Status.FAILED,
                f"not created: {entry.user_name} is held by Komeet account {komeet_id}, "
                f"linked to another person (externalId {external_id}); see the duplicates "
                "report",
                sent,
                komeet_id=komeet_id,
            )
        if external_id and found.get("active") is not False:
            earlier = entry.status is not Status.PENDING
            what = "an earlier attempt created it" if earlier else "it was already there"
            return Outcome(
                Status.APPLIED,
                f"found in Komeet ({what}); not created again",
                sent,
                komeet_id=komeet_id,
            )
        reply = self.client.patch_user(komeet_id, _link_operations(entry))
        sent += reply.attempts
        if not reply.ok:
            return _failed(reply, sent, f"linking the existing account {komeet_id}", komeet_id)
        done = (
            f"reactivated the existing account {komeet_id} (it carried this person's "
            "externalId but was inactive)"
            if external_id
            else f"linked the existing account {komeet_id} (it held {entry.user_name} "
            "without an externalId)"
        )
        return Outcome(Status.APPLIED, done, sent, http_status=reply.status, komeet_id=komeet_id)

    def _patch(self, entry: Entry) -> Outcome:
        if not entry.komeet_id:
            return Outcome(Status.FAILED, "the plan names no Komeet account to change", 0)
        if entry.action == Action.DEACTIVATE and not entry.external_id:
            # Unmanaged accounts are never touched (ARCHITECTURE.md, "Situations").
            return Outcome(
                Status.FAILED,
                "refused: the account carries no externalId, so the sync does not manage it",
                0,
                komeet_id=entry.komeet_id,
            )
        reply = self.client.patch_user(entry.komeet_id, patch_operations(entry))
        if reply.ok:
            return Outcome(
                Status.APPLIED,
                _DONE[entry.action],
                reply.attempts,
                http_status=reply.status,
                komeet_id=entry.komeet_id,
            )
        if reply.status == 404:
            return _failed(
                reply, reply.attempts, "the account is no longer in Komeet", entry.komeet_id
            )
        return _failed(reply, reply.attempts, f"the {entry.action}", entry.komeet_id)

    def _search(self, user_name: str, fresh: bool = False) -> tuple[Reply, dict[str, Any] | None]:
        """The account holding ``user_name``. Without filters, from one listing of every
        account, read after any crash, and read again when ``fresh`` (after a 409)."""
        if self.capabilities.filter:
            return self.client.find_user(user_name)
        with self._accounts_lock:
            if self._accounts is None or fresh:
                self._accounts = {
                    str(user.get("userName", "")).casefold(): user
                    for user in self.client.list_users([])
                }
        return Reply(200, "", 0), self._accounts.get(user_name.casefold())

    # Bulk -----------------------------------------------------------------------------

    def apply_bulk(self, entries: list[Entry]) -> None:
        """Creates and patches go in Bulk requests. A create that may have reached Komeet
        already is settled on its own, search first; a create never sent of a plan that
        may be stale is searched first (concurrently) and goes in Bulk if Komeet does not
        hold its userName (``searched_first``). An operation Bulk could not settle (a 409,
        a transient error, or a whole request lost) is then applied on its own, the
        careful way."""
        creates = [entry for entry in entries if entry.action == Action.CREATE]
        patches = [entry for entry in entries if entry.action != Action.CREATE]
        to_post = [entry for entry in creates if not searched_first(entry, self.fresh_read)]
        one_by_one = [entry for entry in creates if entry.status is not Status.PENDING]
        to_search = [
            entry
            for entry in creates
            if entry.status is Status.PENDING and searched_first(entry, self.fresh_read)
        ]
        searched: dict[str, tuple[Reply, dict[str, Any] | None]] = {}
        searched_lock = threading.Lock()

        def search(entry: Entry) -> None:
            result = self._search(entry.user_name)
            with searched_lock:
                searched[entry.key] = result

        self._in_parallel(search, to_search)
        if self.client.stopping.is_set():
            return
        for entry in to_search:
            reply, found = searched[entry.key]
            if reply.ok and found is None:
                to_post.append(entry)
            else:
                one_by_one.append(entry)  # found, or the search failed: settle it alone
        self._each_once(one_by_one)

        retry_alone: list[Entry] = []
        batches = list(self._batches([*to_post, *patches]))
        # Two Bulk requests in flight (on threads of their own, so that stopping waits for
        # them): the next one travels while Komeet works through the last.
        in_flight = min(BULK_IN_FLIGHT, self.workers)
        self._in_parallel(
            lambda batch: retry_alone.extend(self._send_batch(batch)), batches, in_flight
        )
        self._each_once(retry_alone)

    def _batches(self, entries: list[Entry]) -> Iterable[list[tuple[Entry, dict[str, Any]]]]:
        limit = int(self.capabilities.max_payload_size * PAYLOAD_MARGIN) or 1 << 20
        batch: list[tuple[Entry, dict[str, Any]]] = []
        size = 200  # the envelope
        for entry in entries:
            operation = self._operation(entry)
            length = len(json.dumps(operation)) + 2
            if batch and (len(batch) >= self.capabilities.max_operations or size + length > limit):
                yield batch
                batch, size = [], 200
            batch.append((entry, operation))
            size += length
        if batch:
            yield batch

    def _operation(self, entry: Entry) -> dict[str, Any]:
        if entry.action == Action.CREATE:
            return {
                "method": "POST",
                "path": "/Users",
                "bulkId": entry.key,
                "data": user_resource(
                    entry.user_name, entry.external_id or "", entry.given_name, entry.family_name
                ),
            }
        return {
            "method": "PATCH",
            "path": f"/Users/{entry.komeet_id}",
            "data": {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": patch_operations(entry),
            },
        }

    def _send_batch(self, batch: list[tuple[Entry, dict[str, Any]]]) -> list[Entry]:
        """Send one Bulk request; record what it settled; return what must go alone."""
        sendable = [(entry, op) for entry, op in batch if _bulk_safe(entry)]
        alone = [entry for entry, op in batch if not _bulk_safe(entry)]
        if not sendable:
            return alone
        self.ledger.mark_sending(entry.key for entry, _ in sendable)
        reply = self.client.bulk([op for _, op in sendable])
        if not reply.ok:  # the whole request, one by one: it may have been applied
            return alone + [_in_doubt(entry) for entry, _ in sendable]
        answers = _Answers(reply.document().get("Operations") or [])
        outcomes: list[tuple[str, Outcome]] = []
        for index, (entry, op) in enumerate(sendable):
            answer = answers.of(index, op)
            status = _status(answer)
            if status is not None and 200 <= status < 300:
                location = str(answer.get("location") or "") if answer else ""
                komeet_id = location.rstrip("/").rsplit("/", 1)[-1] or entry.komeet_id
                outcomes.append(
                    (
                        entry.key,
                        Outcome(
                            Status.APPLIED,
                            "created (bulk)"
                            if entry.action == Action.CREATE
                            else f"{_DONE[entry.action]} (bulk)",
                            1,
                            http_status=status,
                            komeet_id=komeet_id or None,
                        ),
                    )
                )
            elif status is None or status in (409, 429) or status >= 500:
                alone.append(_in_doubt(entry))  # not settled: a search, a link or a retry will
            else:
                body = json.dumps(answer.get("response")) if answer else ""
                what = (
                    "the account is no longer in Komeet"
                    if status == 404 and entry.action != Action.CREATE
                    else f"the {entry.action} (bulk)"
                )
                failure = _failed(Reply(status, body, 1), 1, what, entry.komeet_id)
                outcomes.append((entry.key, failure))
        self.ledger.record(outcomes)
        self._advance(len(outcomes))
        return alone

    # Plumbing -------------------------------------------------------------------------

    def _in_parallel(
        self,
        work: Callable[[Any], None],
        items: Sequence[Any],
        workers: int | None = None,
        queue: Iterator[Any] | None = None,
    ) -> None:
        """``work`` on each item (taken from ``queue`` when given, an iterator over
        ``items``), on ``workers`` threads (default the application's), stopped as
        ``parallel.in_parallel`` says: once the operator stops the apply
        (``client.stopping``), the requests in flight get their answer and their ledger row,
        and nothing new is sent."""
        in_parallel(
            work,
            items,
            workers or self.workers,
            self.client.stopping,
            name="komeet-apply",
            queue=queue,
        )

    @property
    def settled(self) -> int:
        """Actions that got their outcome in this application."""
        with self._done_lock:
            return self._done

    def _advance(self, count: int) -> None:
        with self._done_lock:
            self._done += count
            done = self._done
        if self.progress is not None:
            self.progress(done, self.total)


class _Writes:
    """The ledger writes of the actions sent one by one, a block at a time.

    Each row is ``sending`` before its first request and gets its outcome after
    (ARCHITECTURE.md, "Applying a plan"), but not in a transaction of its own: two commits
    an action cost more CPU than its request. The pending rows are marked ``sending``
    ``LEDGER_BLOCK`` at a time, before the first of them is sent; outcomes are written
    ``LEDGER_BLOCK`` at a time or ``LEDGER_DELAY`` after the first one held, whichever
    comes first, and all of them before a phase of the apply returns. A
    process killed meanwhile leaves up to a block of rows ``sending`` whose request had not
    left, or whose outcome was not written yet: the resume searches each before it sends
    it again (``searched_first``), so nothing is sent twice. A stop or a failure writes the
    outcomes held and puts the rows marked but not sent back to ``pending`` (``settle``).
    """

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._lock = threading.Lock()
        self._ahead: list[Entry] = []  # marked ``sending``, not handed out yet
        self._outcomes: list[tuple[str, Outcome]] = []
        self._held_since = 0.0  # when the first outcome held was recorded
        self._settled = False

    def marked(self, entries: Sequence[Entry]) -> Iterator[Entry]:
        """The entries in order, each row ``sending`` by the time it is handed out. One
        consumer at a time (``_in_parallel`` holds its queue's lock)."""
        with self._lock:
            self._settled = False
        for start in range(0, len(entries), LEDGER_BLOCK):
            block = list(entries[start : start + LEDGER_BLOCK])
            pending = [entry for entry in block if entry.status is Status.PENDING]
            with self._lock:
                if self._settled:
                    return
                self.ledger.mark_sending(entry.key for entry in pending)
                self._ahead = pending
            for entry in block:
                with self._lock:
                    if self._settled:
                        return
                    if entry.status is Status.PENDING:
                        self._ahead.remove(entry)
                    else:  # a row in doubt or failed before: marked when it is sent
                        self.ledger.mark_sending([entry.key])
                yield entry

    def record(self, key: str, outcome: Outcome) -> None:
        with self._lock:
            now = time.monotonic()
            if not self._outcomes:
                self._held_since = now
            self._outcomes.append((key, outcome))
            if (
                len(self._outcomes) >= LEDGER_BLOCK
                or now - self._held_since >= LEDGER_DELAY
                or self._settled
            ):
                self._flush()

    def settle(self) -> None:
        """Write the outcomes held; the rows marked and not sent are ``pending`` again, and
        nothing more is handed out. An outcome recorded later (a request that was still in
        flight) is written at once."""
        with self._lock:
            self._settled = True
            self._flush()
            ahead, self._ahead = self._ahead, []
            self.ledger.unmark(entry.key for entry in ahead)

    def _flush(self) -> None:
        outcomes, self._outcomes = self._outcomes, []
        self.ledger.record(outcomes)


_DONE = {
    Action.CREATE.value: "created",
    Action.UPDATE.value: "updated",
    Action.REACTIVATE.value: "reactivated",
    Action.DEACTIVATE.value: "deactivated",
}


def patch_operations(entry: Entry) -> list[dict[str, Any]]:
    """The PATCH of an update, a reactivation or a deactivation: ``replace`` operations
    only (RFC 7644 §3.5.2.3), so that sending one twice changes nothing more."""
    if entry.action == Action.DEACTIVATE:
        return replace_operations([("active", False)])
    values: list[tuple[str, Any]] = [
        ("userName", entry.user_name),
        ("externalId", entry.external_id),
        ("name.givenName", entry.given_name),
        ("name.familyName", entry.family_name),
    ]
    if entry.action == Action.REACTIVATE:
        values.append(("active", True))
    return replace_operations(values)


def _link_operations(entry: Entry) -> list[dict[str, Any]]:
    """Make an existing account this person's: their externalId and names, active."""
    return replace_operations(
        [
            ("externalId", entry.external_id),
            ("name.givenName", entry.given_name),
            ("name.familyName", entry.family_name),
            ("active", True),
        ]
    )


def searched_first(entry: Entry, fresh_read: bool) -> bool:
    """Whether a create searches Komeet for its userName (``filter=userName eq``) before
    it is sent: only where an earlier attempt's outcome is unknown, or the plan's read may
    be stale (ARCHITECTURE.md, "Applying a plan").

    Not on the action's first attempt in a plan made from a fresh read: its ledger row is
    ``pending`` (no request for it was ever sent: a row is marked ``sending`` before each),
    and ``fresh_read`` says that the sync applying the plan made it just now from its own
    read of Komeet, which found no account holding the userName. One made since (by hand,
    or by another apply of the same plan) makes Komeet answer the POST with 409 (RFC 7644
    §3.3: a duplicate userName), and a 409 searches and links.

    Every other create searches first: its row is ``sending`` (a resumed application whose
    process died before the outcome was written; or, in this apply, an answer lost to a
    dropped connection or a timeout, a 5xx, a Bulk answer missing the operation or a Bulk
    request without an answer: ``_in_doubt``), or a retryable failure of an earlier apply,
    or the plan was made earlier from a read that may be stale (``komeet-sync apply
    PLAN_ID``; a Dagster run that did not read Komeet itself)."""
    return entry.status is not Status.PENDING or not fresh_read


def _in_doubt(entry: Entry) -> Entry:
    """The entry as its ledger row now stands after a request without a settled answer:
    ``sending``, its outcome unknown."""
    return dataclasses.replace(entry, status=Status.SENDING)


def _bulk_safe(entry: Entry) -> bool:
    """A create that may already have reached Komeet is settled alone, search first."""
    return entry.action != Action.CREATE or entry.status is Status.PENDING


class _Answers:
    """The operations of a Bulk response, found for each operation of the request: by
    bulkId for a POST, by location for a PATCH, else by position (RFC 7644 §3.7.3).
    Indexed once, so that a thousand operations are not a million comparisons."""

    def __init__(self, answers: list[Any]) -> None:
        self.answers = answers
        self.by_bulk_id: dict[str, dict[str, Any]] = {}
        self.by_path: dict[str, dict[str, Any]] = {}  # "/Users/ID", the end of a location
        for answer in answers:
            if not isinstance(answer, dict):
                continue
            bulk_id = answer.get("bulkId")
            if isinstance(bulk_id, str):
                self.by_bulk_id.setdefault(bulk_id, answer)
            if str(answer.get("method", "")).upper() == "PATCH":
                location = str(answer.get("location", ""))
                self.by_path.setdefault("/" + "/".join(location.split("/")[-2:]), answer)

    def of(self, index: int, operation: dict[str, Any]) -> dict[str, Any] | None:
        if operation["method"] == "POST":
            return self.by_bulk_id.get(operation["bulkId"])
        found = self.by_path.get(operation["path"])
        if found is not None:
            return found
        answer = self.answers[index] if index < len(self.answers) else None
        return answer if isinstance(answer, dict) else None


def _status(answer: dict[str, Any] | None) -> int | None:
    if answer is None:
        return None
    try:
        return int(str(answer.get("status", "")).split()[0])
    except (ValueError, IndexError):
        return None


def _failed(reply: Reply, sent: int, what: str, komeet_id: str | None = None) -> Outcome:
    return Outcome(
        Status.FAILED,
        f"{what}: {reply.describe()}",
        sent,
        http_status=reply.status,
        komeet_id=komeet_id,
        response_body=reply.kept_body(),
        retryable=reply.transient,
    )
