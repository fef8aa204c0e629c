"""``komeet-sync prune [--dry-run]``: delete what retention keeps no longer
(``runs.retention``), saying first what and how much, then what it deleted, by domain; also
when Ctrl-C stops it, and a second prune goes on from there."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from typing import TYPE_CHECKING

from tabulate import tabulate

from komeet_sync.cli.output import (
    DATABASE,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    RESULTS,
    RETENTION,
    ConsoleProgress,
    UserError,
    command,
    counted,
    domain_store,
)

if TYPE_CHECKING:
    from komeet_sync.runs.retention import Prune, Tally

KEPT = (
    "Kept whatever their age: plans with their actions and approvals, the ledger and the "
    "recorded sync failures (the audit trail); each domain's latest sync and its latest of "
    "each result; the syncs of plans that may still be applied; each SCIM domain's last "
    "push; the changes the worker has yet to process."
)
TIME = "%Y-%m-%d %H:%M"


def register(commands) -> None:
    prune = command(
        commands,
        "prune",
        "delete the SCIM request log and the results of past syncs older than "
        "KOMEET_SYNC_RETENTION_DAYS (default 90); plans, the ledger and sync failures stay",
        _prune,
        environment=DATABASE + RESULTS + RETENTION,
        exit_codes=(EXIT_OK, EXIT_ERROR, EXIT_INTERRUPTED),
        exit_meanings={
            EXIT_OK: "deleted what was due, or nothing was (--dry-run: counted it)",
            EXIT_ERROR: "an error (the one line on stderr says which)",
            EXIT_INTERRUPTED: "stopped by Ctrl-C (SIGINT; 143: SIGTERM): what it deleted is "
            "said; run it again for the rest",
        },
    )
    prune.add_argument(
        "--dry-run", action="store_true", help="count what would be deleted; delete nothing"
    )
    prune.epilog = f"{textwrap.fill(KEPT, 88)}\n\n{prune.epilog}"


def _prune(args: argparse.Namespace) -> int:
    from komeet_sync import settings
    from komeet_sync.runs.retention import Prune
    from komeet_sync.store.results import ResultStore
    from komeet_sync.store.sync_folder import ResultError

    engine = domain_store().engine
    try:
        prune = Prune(engine, ResultStore.from_settings())
    except (settings.SettingError, ResultError) as exc:
        raise UserError(str(exc)) from None
    progress = ConsoleProgress(args)
    if not args.json:
        print(
            f"Retention: {counted(prune.days, 'day')} ({settings.retention_setting()}): what "
            f"is older than {prune.cutoff:{TIME}} UTC goes."
        )
    try:
        planned = prune.survey(progress)
    except KeyboardInterrupt:
        print("\nkomeet-sync: interrupted; nothing was deleted.", file=sys.stderr)
        return args.interrupts.exit_code
    except OSError as exc:
        raise UserError(_unreadable(exc)) from None
    if args.dry_run or planned.empty:
        _report(args, prune, planned, None)
        return EXIT_OK
    if not args.json:
        print(f"Deleting {_phrase(planned)} ...", flush=True)
    try:
        prune.run(progress, planned)
    except KeyboardInterrupt:
        _report(args, prune, planned, prune.deleted, interrupted=True)
        print(
            "\nkomeet-sync: interrupted; what was deleted is said above. `komeet-sync prune` "
            "deletes the rest.",
            file=sys.stderr,
        )
        return args.interrupts.exit_code
    except OSError as exc:
        _report(args, prune, planned, prune.deleted, interrupted=True)
        raise UserError(_unreadable(exc)) from None
    _report(args, prune, planned, prune.deleted)
    return EXIT_OK


def _report(
    args: argparse.Namespace,
    prune: Prune,
    planned: Tally,
    deleted: Tally | None,
    *,
    interrupted: bool = False,
) -> None:
    """What was deleted (``deleted``), or would be (``planned``, when nothing was)."""
    from komeet_sync import settings

    if args.json:
        print(
            json.dumps(
                {
                    "retention_days": prune.days,
                    "setting": settings.retention_setting(),
                    "cutoff": prune.cutoff.isoformat(),
                    "dry_run": args.dry_run,
                    "planned": planned.as_dict(),
                    "deleted": deleted.as_dict() if deleted is not None else None,
                    "interrupted": interrupted,
                },
                indent=2,
            )
        )
        return
    shown = deleted or planned
    if not shown.empty:
        print(_table(shown))
    if deleted is None and planned.empty:
        print("Nothing is older than that: nothing to delete.")
    elif deleted is None:
        print(f"Would delete {_phrase(planned)}; nothing was deleted (--dry-run).")
    elif interrupted:
        print(f"Stopped: deleted {_phrase(deleted)}, of {_phrase(planned)}.")
    else:
        print(f"Deleted {_phrase(deleted)}.")
    print(KEPT)


def _table(tally: Tally) -> str:
    from komeet_sync.runs.retention import Kind

    rows = [
        (
            kind.what,
            domain,
            counted(amount.count, kind.unit[:-1]),
            f"{amount.files:,}" if kind is Kind.RESULTS else "",
            _size(amount.size) if kind is Kind.RESULTS else "",
        )
        for kind, counts in tally.kinds.items()
        for domain, amount in counts.items()
        if amount.count
    ]
    return tabulate(rows, headers=["what", "domain", "deleted", "files", "size"])


def _phrase(tally: Tally) -> str:
    """What a tally counts, in one phrase."""
    from komeet_sync.runs.retention import ROWS, Kind

    parts = [f"{counted(tally.total(kind).count, 'row')} of the {kind.what}" for kind in ROWS]
    results = tally.total(Kind.RESULTS)
    parts.append(
        f"the results of {counted(results.count, 'past sync')} "
        f"({counted(results.files, 'file')}, {_size(results.size)})"
    )
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _size(size: int) -> str:
    """Bytes, as people read them: 512 B, 1.2 MiB."""
    if size < 1024:
        return f"{size:,} B"
    amount = size / 1024
    for unit in ("KiB", "MiB"):
        if amount < 1024:
            return f"{amount:,.1f} {unit}"
        amount /= 1024
    return f"{amount:,.1f} GiB"


def _unreadable(exc: OSError) -> str:
    where = f" {exc.filename}" if exc.filename else ""
    return (
        f"cannot read or delete{where}: {exc.strerror or exc}; KOMEET_SYNC_RESULTS (else "
        "KOMEET_SYNC_HOME) must name a folder or a bucket this process may write"
    )
