"""The events a person is told of (README, "Notifications"), as a sync's steps record them:
what happened in one line (the subject), then why and the command that acts on it (the
body). Recording is one INSERT (``store.events``); ``komeet_sync.notify`` sends them.

Each occurrence is told once: a held plan by its id (every sync that makes it again holds
the same plan), a failure by its domain, cause and day (a key file missing fails every
hourly run alike: its admin is told once a day), the worker's lag by its domain and hour.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Engine

from komeet_sync.model.holds import Guard, Hold
from komeet_sync.store.events import Event, EventKind, record_event, record_events
from komeet_sync.store.plans import StoredPlan

log = logging.getLogger(__name__)


def plan_held(engine: Engine, plan: StoredPlan) -> Event | None:
    """Tell that ``plan`` is held (a guard stopped it and no approval lifted it), once."""
    if not (plan.waiting_for_approval or plan.stopped):
        return None
    holds = plan.stopped or plan.holds
    measured = "; ".join(_measured(hold) for hold in holds)
    what = "stopped" if plan.stopped else "held"
    if plan.stopped:
        act = (
            "No approval can lift it: fix the domain's group selection or the directory, then "
            f"sync again (`komeet-sync sync {plan.domain}`)."
        )
    else:
        act = (
            f"Review it:   komeet-sync plans show {plan.plan_id}\n"
            f"Approve it:  komeet-sync plans approve {plan.plan_id} --by NAME\n"
            f"Apply it:    komeet-sync apply {plan.plan_id}   (or the next sync applies it)"
        )
    body = (
        f"A sync of {plan.domain} made plan {plan.plan_id} ({plan.size:,} actions) and a guard "
        f"{what} it: nothing of it was sent to Komeet.\n\n"
        + "\n".join(f"Why: {hold.detail}." for hold in holds)
        + f"\n\n{act}\n"
    )
    return recorded(
        engine,
        Event(
            kind=EventKind.PLAN_HELD,
            domain=plan.domain,
            key=f"plan held {plan.plan_id}",
            subject=f"{plan.domain}: plan {plan.plan_id} {what} ({measured})",
            body=body,
            details={
                "plan_id": plan.plan_id,
                "holds": [hold.as_dict() for hold in holds],
                "approve": f"komeet-sync plans approve {plan.plan_id} --by NAME",
            },
        ),
    )


def sync_failed(
    engine: Engine, domain: str, job: str, run_id: str, cause: str, at: datetime
) -> Event | None:
    """Tell that a sync of ``domain`` failed, with its cause in a line (the messages name
    the setting to fix), once a day for one cause."""
    digest = hashlib.sha256(cause.encode()).hexdigest()[:16]
    return recorded(
        engine,
        Event(
            kind=EventKind.SYNC_FAILED,
            domain=domain,
            key=f"sync failed {domain} {digest} {at:%Y-%m-%d}",
            subject=f"{domain}: sync failed: {_line(cause)}",
            body=(
                f"A sync of {domain} failed ({job}, run {run_id}): nothing more was sent to "
                f"Komeet.\n\nCause: {cause}\n\nFix what it names, then sync again "
                f"(`komeet-sync sync {domain}`). `komeet-sync domains show {domain}` lists "
                "the recent failures; the same cause is told once a day.\n"
            ),
            details={"job": job, "run_id": run_id, "cause": cause},
        ),
    )


def worker_behind(
    engine: Engine, domain: str, waiting: int, oldest: datetime, now: datetime, what: str
) -> Event | None:
    """Tell that ``waiting`` of ``domain``'s SCIM pushes have waited since ``oldest`` for the
    incremental worker, once an hour; ``what`` says what is done about it."""
    return next(iter(workers_behind(engine, [(domain, waiting, oldest)], now, what)), None)


def workers_behind(
    engine: Engine, behind: Iterable[tuple[str, int, datetime]], now: datetime, what: str
) -> list[Event]:
    """``worker_behind`` for each (domain, waiting, oldest) of ``behind``, recorded together:
    the same two statements for a thousand domains as for one. Never raises."""
    events = [
        Event(
            kind=EventKind.WORKER_BEHIND,
            domain=domain,
            key=f"worker behind {domain} {now:%Y-%m-%dT%H}",
            subject=(
                f"{domain}: the worker is behind: {waiting:,} push(es) waiting for "
                f"{_duration((now - oldest).total_seconds())}"
            ),
            body=(
                f"{waiting:,} change(s) its IdP pushed to {domain} have waited for the "
                f"incremental worker since {oldest:%Y-%m-%d %H:%M:%S} UTC. {what}\n\n"
                "Check that `komeet-sync worker` runs and what it logs; `komeet-sync status` "
                "shows each domain's pushes waiting.\n"
            ),
            details={"waiting": waiting, "oldest": oldest.isoformat()},
        )
        for domain, waiting, oldest in behind
    ]
    try:
        return record_events(engine, events)
    except Exception:
        log.exception("could not record that the worker is behind on %d domain(s)", len(events))
        return []


def recorded(engine: Engine, event: Event) -> Event | None:
    """Record ``event``; never raises: telling is not worth failing the work for."""
    try:
        return record_event(engine, event)
    except Exception:
        log.exception("could not record the event %r", event.subject)
        return None


def _measured(hold: Hold) -> str:
    if hold.guard is Guard.SHRINK:
        return f"the directory shrank {hold.measured:.1%}, limit {hold.limit:.0%}"
    if hold.guard is Guard.DEACTIVATION_BUDGET:
        return f"{hold.measured:,.0f} deactivations, budget {hold.limit:,.0f}"
    return "a selected group is missing"


def _line(text: str) -> str:
    lines = text.strip().splitlines()
    first = lines[0] if lines else "(no message)"
    return first if len(first) <= 160 else first[:159] + "…"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
