"""``komeet-sync sync DOMAIN`` and ``komeet-sync apply PLAN_ID``: a domain's sync, and a
stored plan applied or resumed. The steps are ``runs.sync``'s; this module parses and
prints."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tabulate import tabulate

from komeet_sync.cli.output import (
    EXIT_ERROR,
    EXIT_HELD,
    EXIT_OK,
    Progress,
    UserError,
    command,
    configured,
    domain_store,
    komeet_client,
    print_summary,
)


def register(commands) -> None:
    sync = command(
        commands,
        "sync",
        "read a domain's directory and Komeet's accounts, reconcile, write the reports, "
        "and apply the plan unless a guard holds it",
        _sync,
    )
    sync.add_argument("domain")
    sync.add_argument(
        "--dry-run",
        action="store_true",
        help="compute the plan and the reports; send nothing to Komeet",
    )
    sync.add_argument(
        "--komeet",
        type=Path,
        metavar="FILE",
        help="with --dry-run: Komeet's SCIM User resources exported (GET /Users), instead "
        "of reading them from KOMEET_SCIM_URL",
    )
    sync.add_argument(
        "--last-good-count",
        type=int,
        metavar="N",
        help="desired people in the last good snapshot, for the shrink guard (default: the "
        "last plan applied in full)",
    )
    sync.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="also write the reports to DIR (every sync is stored in $KOMEET_SYNC_HOME/syncs "
        "in any case)",
    )
    _apply_options(sync)

    apply = command(
        commands, "apply", "apply a stored plan, or resume one that was interrupted", _apply
    )
    apply.add_argument("plan_id", metavar="PLAN_ID")
    _apply_options(apply)


def _apply_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--concurrency",
        type=int,
        default=8,
        metavar="N",
        help="requests in flight at once (default 8)",
    )
    parser.add_argument(
        "--mode",
        choices=["sequential", "concurrent", "bulk"],
        help="default: bulk when Komeet announces SCIM Bulk, else concurrent",
    )


def _check_apply_options(args: argparse.Namespace) -> None:
    if not 1 <= args.concurrency <= 64:
        raise UserError(
            f"--concurrency {args.concurrency}: give 1 to 64 requests in flight (default 8)"
        )


def _mode(args: argparse.Namespace):
    from komeet_sync.komeet.apply import Mode

    return Mode(args.mode) if args.mode else None


def _sync(args: argparse.Namespace) -> int:
    from upath import UPath

    from komeet_sync.komeet.client import KomeetError
    from komeet_sync.model.domain_config import SourceKind
    from komeet_sync.runs import sync
    from komeet_sync.runs.audit import read_komeet_export
    from komeet_sync.sources.exports import ExportFormatError
    from komeet_sync.sources.google.credentials import GoogleError
    from komeet_sync.sources.google.reader import reader_for
    from komeet_sync.store.results import ResultStore
    from komeet_sync.store.sync_folder import ResultError, SyncFolder

    store, config = configured(args.domain)
    if args.komeet is not None and not args.dry_run:
        raise UserError(
            "--komeet FILE goes with --dry-run only: a sync that applies its plan reads "
            "Komeet's accounts from KOMEET_SCIM_URL, as late as possible"
        )
    _check_apply_options(args)
    try:
        # A key file that cannot be read fails before anything is read or sent.
        reader = reader_for(config) if config.source is SourceKind.GOOGLE else None
        komeet = read_komeet_export(args.komeet) if args.komeet is not None else None
        client = komeet_client() if komeet is None else None
        with Progress(f"Applying to Komeet ({config.domain})", args) as progress:
            run = sync.sync(
                config,
                store.engine,
                ResultStore.from_settings(),
                read_directory=lambda: sync.read_source(config, store.engine, reader),
                client=client,
                komeet=komeet,
                dry_run=args.dry_run,
                trigger="komeet-sync sync" + (" --dry-run" if args.dry_run else ""),
                last_good_desired=args.last_good_count,
                also_to=SyncFolder(UPath(args.out)) if args.out is not None else None,
                concurrency=args.concurrency,
                mode=_mode(args),
                progress=progress.update,
            )
    except (GoogleError, ExportFormatError, KomeetError, ResultError) as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError(f"{exc.filename or args.out}: {exc.strerror}") from None
    if args.json:
        print(json.dumps(run.summary(), indent=2, default=str))
    else:
        print(
            f"{run.snapshot.describe(config.domain)}, {run.snapshot.seconds:.1f} s "
            f"(snapshot of {run.snapshot.started_at:%Y-%m-%d %H:%M:%S} UTC)."
        )
        print_summary(run.planned.report.summary, run.folder.location)
    if run.applied is None:
        if not args.json:
            print("Dry run: nothing was sent to Komeet.")
        return EXIT_HELD if run.planned.reconciliation.plan.held else EXIT_OK
    if run.applied.stopped is not None:
        if not args.json:
            print(f"komeet-sync: {run.applied.stopped}", file=sys.stderr)
        return EXIT_HELD if run.applied.stopped.waiting else EXIT_ERROR
    assert run.applied.result is not None
    return _report_application(run.applied.result, args)


def _apply(args: argparse.Namespace) -> int:
    from komeet_sync.komeet.client import KomeetError
    from komeet_sync.runs import sync
    from komeet_sync.store.plans import PlanError
    from komeet_sync.store.results import ResultStore

    _check_apply_options(args)
    store = domain_store()
    client = komeet_client()
    try:
        with Progress(f"Applying {args.plan_id}", args) as progress:
            applied = sync.resume(
                store.engine,
                ResultStore.from_settings(),
                args.plan_id,
                client,
                concurrency=args.concurrency,
                mode=_mode(args),
                progress=progress.update,
            )
    except (PlanError, KomeetError) as exc:
        raise UserError(str(exc)) from None
    stopped = applied.stopped
    if stopped is not None:
        if args.json:
            print(json.dumps({"stopped": {"kind": stopped.kind, "detail": str(stopped)}}))
        print(f"komeet-sync: {stopped}", file=sys.stderr)
        return EXIT_HELD if stopped.waiting else EXIT_ERROR
    assert applied.result is not None
    if applied.unrecorded:
        print(f"komeet-sync: the results were not written: {applied.unrecorded}", file=sys.stderr)
    if args.json:
        print(json.dumps(applied.result.summary(), indent=2, default=str))
    return _report_application(applied.result, args)


def _report_application(result, args: argparse.Namespace) -> int:
    """The summary table of an application, its failures with their reasons; exit 1 when
    any action failed."""
    if not args.json:
        if result.application_id is None:
            print(f"{result.plan_id} was applied before: nothing was sent again.")
        elif result.sent == 0:
            print(f"{result.plan_id}: no action was left to send.")
        else:
            verb = "Resumed" if result.resumed else "Applied"
            print(
                f"{verb} {result.plan_id} ({result.mode.value}): {result.sent:,} actions in "
                f"{result.seconds:.1f} s, {result.requests:,} requests."
            )
        if result.counts:
            print(tabulate(sorted(result.counts.items()), headers=["ledger", "actions"]))
        if result.failed:
            print(f"{result.failed:,} action(s) failed:", file=sys.stderr)
            for row in result.failures.itertuples(index=False):  # a few, to read
                print(f"  - {row.action} {row.user_name}: {row.outcome}", file=sys.stderr)
            print(
                f"Every outcome is in the plan's results.csv. Resume the transient "
                f"failures with `komeet-sync apply {result.plan_id}`; the next sync plans "
                "again whatever is still needed.",
                file=sys.stderr,
            )
    return EXIT_ERROR if result.failed or not result.finished else EXIT_OK
