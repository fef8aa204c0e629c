"""``komeet-sync status``: every configured domain, its last sync and what came of it (its
plan's state in the words of ``plans list``), a held plan with the command that approves it,
its last failure, its quarantine with the command that releases it, and its IdP's last push.
The overview is ``runs.status``'s; this module prints it."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pandas as pd

from komeet_sync.cli.notify import event_lines
from komeet_sync.cli.output import (
    DATABASE,
    EXIT_ERROR,
    EXIT_HELD,
    EXIT_INTERRUPTED,
    EXIT_OK,
    RESULTS,
    Columns,
    UserError,
    command,
    domain_store,
    fitted_table,
    quarantine_lines,
    sync_state,
)

if TYPE_CHECKING:
    from komeet_sync.runs.status import DomainStatus, Failure

# Most important first, with their narrowest widths (``fitted_table``): times wrap between
# date and hour.
COLUMNS: Columns = [
    ("domain", 12),
    ("source", None),
    ("sync", None),
    ("last sync", 10),
    ("result", 14),
    ("actions", 10),
    ("last push", 10),
]
TIME = "%Y-%m-%d %H:%M"
EVENTS_SINCE = timedelta(days=1)
MOST_EVENTS = 10


def register(commands) -> None:
    status = command(
        commands,
        "status",
        "every domain: its last sync (when, by the CLI or Dagster) and its result, a held "
        "plan and its approval command, the last failure, a quarantine and its release "
        "command, and a SCIM domain's last push",
        _status,
        environment=DATABASE + RESULTS,
        exit_codes=(EXIT_OK, EXIT_ERROR, EXIT_HELD, EXIT_INTERRUPTED),
        exit_meanings={
            EXIT_OK: "no domain needs anyone: applied, in step, never synced, a dry run, disabled",
            EXIT_ERROR: "a last sync failed, or Komeet refused actions of it; or an error",
            EXIT_HELD: "a plan waits for an operator (held, approved, never applied, "
            "unfinished), or a domain is quarantined; none failed",
        },
    )
    status.epilog = "Times are UTC.\n\n" + (status.epilog or "")


def _status(args: argparse.Namespace) -> int:
    from komeet_sync.runs.status import domain_statuses
    from komeet_sync.store.results import ResultStore
    from komeet_sync.store.sync_folder import ResultError

    engine = domain_store().engine
    try:
        store = ResultStore.from_settings()
        statuses = domain_statuses(engine, store)
    except ResultError as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError(
            f"cannot read the result store {store.root}: {exc.strerror or exc}; "
            "KOMEET_SYNC_RESULTS (else KOMEET_SYNC_HOME) must name a folder or a bucket "
            "this process may read"
        ) from None
    events = _recent_events(engine)
    if args.json:
        print(
            json.dumps(
                [
                    status.as_dict()
                    | {"events": [e.as_dict() for e in events if e.domain == status.domain]}
                    for status in statuses
                ],
                indent=2,
            )
        )
    elif not statuses:
        print("No domain is configured. Add one with 'komeet-sync domains add DOMAIN ...'.")
    else:
        _print(statuses)
        if events:
            print(f"\nEvents of the last {EVENTS_SINCE.days * 24} hours (newest first):")
            for line in event_lines(events):
                print(line)
    if any(status.result.failed for status in statuses):
        return EXIT_ERROR
    if any(status.result.waits_for_someone or status.quarantine for status in statuses):
        return EXIT_HELD
    return EXIT_OK


def _recent_events(engine) -> list:
    """The events of the last EVENTS_SINCE (MOST_EVENTS at most), with what became of
    telling them."""
    from komeet_sync.store.events import recent_events

    since = datetime.now(UTC) - EVENTS_SINCE
    return [e for e in recent_events(engine, limit=MOST_EVENTS) if e.at and e.at >= since]


def _print(statuses: list[DomainStatus]) -> None:
    rows = []
    for status in statuses:
        sync = status.last_sync
        started = sync.started_at.strftime(TIME) if sync and sync.started_at else "?"
        counts = (
            (status.applied, "applied"),
            (status.failed, "failed"),
            (status.pending, "pending"),
        )
        rows.append(
            (
                status.domain,
                status.source.value,
                sync_state(status),
                f"{started} {sync.by}" if sync else "never",
                status.result_text,
                ", ".join(f"{count:,} {label}" for count, label in counts if count),
                status.last_push.strftime(TIME) if status.last_push else "",
            )
        )
    print(fitted_table(pd.DataFrame(rows, columns=[name for name, _ in COLUMNS]), COLUMNS))
    notes = [line for status in statuses for line in _notes(status)]
    if notes:
        print()
    for note in notes:  # not wrapped, so that a command in it can be copied whole
        print(note)


def _notes(status: DomainStatus) -> list[str]:
    """What the table cannot say: why the result, and the command to run next; the last
    failure."""
    from komeet_sync.runs.status import SyncResult

    result, domain, plan_id = status.result, status.domain, status.plan_id
    failure = status.last_failure
    said = ""
    if result is SyncResult.HELD:
        holds = "; ".join(f"{hold.guard.value}: {hold.detail}" for hold in status.holds)
        said = f"{domain}: plan {plan_id} is HELD by {holds}"
    elif result is SyncResult.FAILED and failure is not None:
        said = f"{domain}: the last sync failed at {_failed(failure)}"
        failure = None  # said
    elif result is SyncResult.DISABLED:
        said = f"{domain} is disabled: plan {plan_id} was not sent"
    elif (result.waits_for_someone and result is not SyncResult.QUARANTINED) or result in (
        SyncResult.APPLIED_WITH_FAILURES,
        SyncResult.SUPERSEDED,
    ):
        assert status.plan is not None
        said = f"{domain}: {status.plan.next_step()}"  # what ``plans show`` advises
    notes = [said] if said else []
    if result is SyncResult.HELD and status.approve:
        notes.append(f"  approve it: {status.approve}")
    elif result is SyncResult.HELD:
        notes.append(f"  no approval lifts it: fix the cause, then sync again ({status.next_step})")
    elif said and status.next_step:
        notes.append(f"  next: {status.next_step}")
    if status.quarantine is not None:  # why, and the release, whatever the last sync did
        notes += quarantine_lines(status.quarantine)
    if failure is not None:
        notes.append(f"{domain}: last failure {_failed(failure)}")
    if status.former_secret_until is not None:
        notes.append(
            f"{domain}: the former SCIM secret still works until "
            f"{status.former_secret_until:{TIME}} UTC (rotated): enter the new one in the IdP"
        )
    return notes


def _failed(failure: Failure) -> str:
    return f"{failure.at:{TIME}} UTC ({failure.job}, run {failure.run_id[:8]}): {failure.message}"
