"""``komeet-sync status``: every configured domain, its last sync and what came of it, a held
plan with the command that approves it, its last failure and its IdP's last push. The
overview is ``runs.status``'s; this module prints it."""

from __future__ import annotations

import argparse
import json
import shutil
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING

from komeet_sync.cli.output import EXIT_ERROR, EXIT_HELD, EXIT_OK, UserError, command, domain_store

if TYPE_CHECKING:
    from komeet_sync.runs.status import DomainStatus, Failure

EPILOG = """\
exit codes:
  0  no domain needs anyone: each is applied, in step, never synced, a dry run or disabled
  3  no last sync failed, but a plan waits for an operator: held (approve it, or fix what
     holds it), approved or unfinished (apply it)
  1  a domain's last sync failed (or Komeet refused actions of it), or the database or the
     result store cannot be read

environment:
  KOMEET_SYNC_DATABASE_URL  the database (default: SQLite in KOMEET_SYNC_HOME)
  KOMEET_SYNC_RESULTS       the result store (default: KOMEET_SYNC_HOME/syncs)
  KOMEET_SYNC_HOME          where both are by default (default ./.komeet_sync)
"""
HEADERS = ("domain", "source", "sync", "last sync (UTC)", "result", "actions", "last push (UTC)")
# The columns that wrap when the table is wider than the terminal, the first first: times
# wrap between date and hour, the domain last.
WRAPPED = (6, 3, 5, 4, 0)
NARROWEST = 10
TIME = "%Y-%m-%d %H:%M"


def register(commands) -> None:
    status = command(
        commands,
        "status",
        "every domain: its last sync (when, by the CLI or Dagster) and its result, a held "
        "plan and its approval command, the last failure, and a SCIM domain's last push",
        _status,
    )
    status.epilog = EPILOG
    status.formatter_class = argparse.RawDescriptionHelpFormatter


def _status(args: argparse.Namespace) -> int:
    from komeet_sync.runs.status import SyncResult, domain_statuses
    from komeet_sync.store.results import ResultStore
    from komeet_sync.store.sync_folder import ResultError

    engine = domain_store().engine
    store = ResultStore.from_settings()
    try:
        statuses = domain_statuses(engine, store)
    except ResultError as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError(
            f"cannot read the result store {store.root}: {exc.strerror or exc}; "
            "KOMEET_SYNC_RESULTS (else KOMEET_SYNC_HOME) must name a folder or a bucket "
            "this process may read"
        ) from None
    if args.json:
        print(json.dumps([status.as_dict() for status in statuses], indent=2))
    elif not statuses:
        print("No domain is configured. Add one with 'komeet-sync domains add DOMAIN ...'.")
    else:
        _print(statuses)
    if any(status.result is SyncResult.FAILED for status in statuses):
        return EXIT_ERROR
    if any(status.result.waits_for_someone for status in statuses):
        return EXIT_HELD
    return EXIT_OK


def _print(statuses: list[DomainStatus]) -> None:
    width = shutil.get_terminal_size((1000, 24)).columns  # piped: no wrapping
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
                "enabled" if status.enabled else "DISABLED",
                f"{started} {sync.by}" if sync else "never",
                status.result.text,
                ", ".join(f"{count:,} {label}" for count, label in counts if count),
                status.last_push.strftime(TIME) if status.last_push else "",
            )
        )
    print(_fitting(rows, width))
    notes = [line for status in statuses for line in _notes(status)]
    if notes:
        print()
    for note in notes:
        print(textwrap.fill(note, width=max(width, 40), subsequent_indent="    "))


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
    elif result is SyncResult.FAILED and status.failed:
        said = f"{domain}: Komeet refused {status.failed:,} action(s) of plan {plan_id}"
    elif result is SyncResult.FAILED and failure is not None:
        said = f"{domain}: the last sync failed at {_failed(failure)}"
        failure = None  # said
    elif result is SyncResult.APPROVED:
        said = f"{domain}: plan {plan_id} is approved and not applied yet"
    elif result is SyncResult.UNFINISHED:
        said = f"{domain}: plan {plan_id} is not applied in full: {status.pending:,} pending"
    elif result is SyncResult.DISABLED:
        said = f"{domain} is disabled: plan {plan_id} was not sent"
    notes = [said] if said else []
    if result is SyncResult.HELD and status.approve:
        notes.append(f"  approve it: {status.approve}")
    elif result is SyncResult.HELD:
        notes.append(f"  no approval lifts it: fix the cause, then sync again ({status.next_step})")
    elif said and status.next_step:
        notes.append(f"  next: {status.next_step}")
    if failure is not None:
        notes.append(f"{domain}: last failure {_failed(failure)}")
    return notes


def _failed(failure: Failure) -> str:
    return f"{failure.at:{TIME}} UTC ({failure.job}, run {failure.run_id[:8]}): {failure.message}"


def _fitting(rows: Sequence[tuple[str, ...]], width: int) -> str:
    """The table, its text columns wrapped (WRAPPED, none narrower than NARROWEST) until it
    fits ``width``."""
    table = [HEADERS, *rows]
    widths = [max(len(row[column]) for row in table) for column in range(len(HEADERS))]
    excess = sum(widths) + 2 * (len(widths) - 1) - width
    for column in WRAPPED:
        cut = max(0, min(excess, widths[column] - NARROWEST))
        widths[column] -= cut
        excess -= cut
    lines = []
    for number, row in enumerate(table):
        cells = [textwrap.wrap(cell, size) or [""] for cell, size in zip(row, widths, strict=True)]
        for line in range(max(len(cell) for cell in cells)):
            parts = [
                (cell[line] if line < len(cell) else "").ljust(size)
                for cell, size in zip(cells, widths, strict=True)
            ]
            lines.append("  ".join(parts).rstrip())
        if number == 0:
            lines.append("  ".join("-" * size for size in widths))
    return "\n".join(lines)
