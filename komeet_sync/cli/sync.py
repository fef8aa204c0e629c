"""``komeet-sync sync DOMAIN`` and ``komeet-sync apply PLAN_ID``: a domain's sync, and a
stored plan applied or resumed. The steps are ``runs.sync``'s; this module parses and
prints."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from komeet_sync.cli.output import (
    DATABASE,
    EXIT_ERROR,
    EXIT_HELD,
    EXIT_OK,
    GOOGLE,
    KOMEET,
    NOTIFY,
    PLAN_EXIT_CODES,
    RESULTS,
    ConsoleProgress,
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
        environment=DATABASE + RESULTS + KOMEET + GOOGLE + NOTIFY,
        exit_codes=PLAN_EXIT_CODES,
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
    sync.add_argument(
        "--person",
        metavar="EMAIL",
        help="sync only this person (and whoever shares an address or id with them): read "
        "them from the source and the Komeet accounts that could match, decide and apply "
        "within seconds",
    )
    _apply_options(sync)

    apply = command(
        commands,
        "apply",
        "apply a stored plan, or resume one that was interrupted",
        _apply,
        environment=DATABASE + RESULTS + KOMEET + NOTIFY,
        exit_codes=PLAN_EXIT_CODES,
    )
    apply.add_argument("plan_id", metavar="PLAN_ID")
    _apply_options(apply)


def _apply_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--concurrency",
        type=int,
        default=8,
        metavar="N",
        help="requests to Komeet in flight at once, reading its accounts or applying (default 8)",
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
    from komeet_sync.runs import failures, sync
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
    if args.last_good_count is not None and args.last_good_count < 0:
        raise UserError(
            f"--last-good-count {args.last_good_count}: give the number of desired people in "
            "the last good snapshot, 0 or more (or leave it out: the last plan applied in full)"
        )
    _check_apply_options(args)
    if args.person is not None:
        for option in ("komeet", "last_good_count", "out"):
            if getattr(args, option) is not None:
                flag = "--" + option.replace("_", "-")
                raise UserError(f"{flag} goes with a whole sync, not with --person")
        return _sync_person(args, store, config)
    interrupts = args.interrupts
    shown: list[bool] = []

    def show_plan(run: sync.SyncRun) -> None:
        """The reconciliation, before anything is sent, and the command that resumes."""
        shown.append(True)
        stored = run.planned.report.stored
        if not args.json:
            print(
                f"{run.snapshot.describe(config.domain)}, {run.snapshot.seconds:.1f} s "
                f"(snapshot of {run.snapshot.started_at:%Y-%m-%d %H:%M:%S} UTC)."
            )
            print_summary(
                run.planned.report.summary,
                run.folder.location,
                stored.approved_by if stored is not None else None,
            )
            sys.stdout.flush()
        sends = run.applied is None and client and config.quarantine is None
        if sends and stored and stored.may_apply and stored.counts:
            interrupts.writing(client, stored.plan_id)
            print(
                f"Applying {stored.plan_id} to Komeet; if it is stopped, "
                f"`komeet-sync apply {stored.plan_id}` resumes it.",
                file=sys.stderr,
                flush=True,
            )

    trigger = "komeet-sync sync" + (" --dry-run" if args.dry_run else "")
    try:
        # A key file that cannot be read fails before anything is read or sent, and is
        # recorded as the sync's failure: a scheduled sync fails on it every time.
        google = config.source is SourceKind.GOOGLE
        reader = reader_for(config, engine=store.engine) if google else None
        komeet = read_komeet_export(args.komeet) if args.komeet is not None else None
        client = komeet_client() if komeet is None else None
    except (GoogleError, ExportFormatError, UserError) as exc:
        failures.record(store.engine, config.domain, trigger, exc)
        raise UserError(str(exc)) from None
    try:
        run = sync.sync(
            config,
            store.engine,
            ResultStore.from_settings(),
            read_directory=lambda advance: sync.read_source(config, store.engine, reader, advance),
            client=client,
            komeet=komeet,
            dry_run=args.dry_run,
            trigger=trigger,
            last_good_desired=args.last_good_count,
            also_to=SyncFolder(UPath(args.out)) if args.out is not None else None,
            concurrency=args.concurrency,
            mode=_mode(args),
            progress=ConsoleProgress(args),
            before_apply=show_plan,
        )
    except (GoogleError, ExportFormatError, KomeetError, ResultError) as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        where = exc.filename or args.out or "the result store"
        raise UserError(f"{where}: {exc.strerror or exc}") from None
    if not shown:
        show_plan(run)
    if args.json:
        print(json.dumps(run.summary(), indent=2, default=str))
    if run.applied is None:
        if not args.json:
            from komeet_sync.store.plans import PlanStore

            stored = run.planned.report.stored
            step = PlanStore(store.engine).status(stored).next_step() if stored else ""
            print(f"Dry run: nothing was sent to Komeet. {step}".rstrip())
        return EXIT_HELD if run.planned.reconciliation.plan.held else EXIT_OK
    if run.applied.stopped is not None:
        if not args.json:
            print(f"komeet-sync: {run.applied.stopped}", file=sys.stderr)
        return _stopped_code(run.applied.stopped)
    assert run.applied.result is not None
    return _report_application(run.applied, args)


def _sync_person(args: argparse.Namespace, store, config) -> int:
    """``sync DOMAIN --person EMAIL``: an incremental sync of one person's component."""
    from komeet_sync.komeet.accounts import KomeetSide
    from komeet_sync.komeet.client import KomeetError
    from komeet_sync.model.domain_config import SourceKind
    from komeet_sync.model.emails import InvalidEmail, normalise_email
    from komeet_sync.runs import failures
    from komeet_sync.runs.incremental import sync_people
    from komeet_sync.sources.google.credentials import GoogleError
    from komeet_sync.sources.google.people import GooglePeople
    from komeet_sync.sources.google.reader import reader_for
    from komeet_sync.sources.scim.people import StagedPeople
    from komeet_sync.store.leases import Busy

    try:
        email = normalise_email(args.person)
    except InvalidEmail as exc:
        raise UserError(
            f"--person {args.person!r}: {exc}. Give the person's email address, as the "
            "source or Komeet knows it"
        ) from None
    trigger = "komeet-sync sync --person" + (" --dry-run" if args.dry_run else "")
    try:
        people = (
            GooglePeople(reader_for(config, engine=store.engine), config)
            if config.source is SourceKind.GOOGLE
            else StagedPeople(store.engine, config)
        )
        client = komeet_client()
    except (GoogleError, UserError) as exc:
        failures.record(store.engine, config.domain, trigger, exc)
        raise UserError(str(exc)) from None

    def writing(plan) -> None:
        args.interrupts.writing(client, plan.plan_id)

    try:
        done = sync_people(
            config,
            store.engine,
            client,
            people,
            KomeetSide(client, config),
            keys=[("email", email)],
            trigger=trigger,
            dry_run=args.dry_run,
            before_apply=writing,
        )
    except (GoogleError, KomeetError, Busy) as exc:
        raise UserError(str(exc)) from None
    if args.json:
        print(json.dumps(done.summary(), indent=2, default=str))
    else:
        _print_people(done, email, config.domain)
    if done.held is not None and not args.json:
        print(
            f"Held: {done.held.plan_id}: "
            + "; ".join(hold.detail for hold in done.held.holds)
            + f". `komeet-sync plans approve {done.held.plan_id} --by NAME`, then "
            f"`komeet-sync apply {done.held.plan_id}`",
            file=sys.stderr,
        )
    if done.applied is None:
        if not args.json and done.sent is not None:
            print(f"Dry run: nothing was sent to Komeet ({done.sent.plan_id}).")
        return EXIT_HELD if done.held is not None else EXIT_OK
    if done.applied.stopped is not None:
        if not args.json:
            print(f"komeet-sync: {done.applied.stopped}", file=sys.stderr)
        return _stopped_code(done.applied.stopped)
    assert done.applied.result is not None
    code = _report_application(done.applied, args)
    return EXIT_HELD if code == EXIT_OK and done.held is not None else code


def _print_people(done, email: str, domain: str) -> None:
    """Each person and account decided, the one asked for first: situation, action, why."""
    rows = done.reconciliation.rows
    if rows.empty:
        print(
            f"Nobody of {domain} is known by {email}: no user in the source and no Komeet "
            "account holds that address. Nothing to do."
        )
        return
    who = rows["email"].fillna(rows["komeet_user_name"])
    asked = (who == email).fillna(False)
    ordered = pd.concat([rows[asked], rows[~asked]]).assign(who=who)
    for row in ordered.itertuples(index=False):
        action = f" -> {row.action}" if row.action else ", nothing to do"
        print(f"{row.who}: {row.situation}{action} ({row.reason})")
    print(
        f"Read {len(done.gathered.snapshot.users):,} user(s) and "
        f"{len(done.gathered.komeet.accounts):,} Komeet account(s) in "
        f"{done.gathered.rounds} round(s)."
    )


def _apply(args: argparse.Namespace) -> int:
    from komeet_sync.komeet.client import KomeetError
    from komeet_sync.runs import sync
    from komeet_sync.store.plans import PlanError
    from komeet_sync.store.results import ResultStore
    from komeet_sync.store.sync_folder import ResultError

    _check_apply_options(args)
    store = domain_store()
    client = komeet_client()
    args.interrupts.writing(client, args.plan_id)
    try:
        progress = ConsoleProgress(args)
        with progress.stage(f"Applying {args.plan_id}", "actions") as advance:
            applied = sync.resume(
                store.engine,
                ResultStore.from_settings(),
                args.plan_id,
                client,
                concurrency=args.concurrency,
                mode=_mode(args),
                progress=advance,
            )
    except (PlanError, KomeetError, ResultError) as exc:
        raise UserError(str(exc)) from None
    stopped = applied.stopped
    if stopped is not None:
        if args.json:
            print(json.dumps({"stopped": {"kind": stopped.kind, "detail": str(stopped)}}))
        print(f"komeet-sync: {stopped}", file=sys.stderr)
        return _stopped_code(stopped)
    assert applied.result is not None
    if applied.unrecorded:
        print(f"komeet-sync: the results were not written: {applied.unrecorded}", file=sys.stderr)
    if args.json:
        summary = applied.result.summary() | {"quarantine": applied.quarantine_dict()}
        print(json.dumps(summary, indent=2, default=str))
    return _report_application(applied, args)


def _stopped_code(stopped) -> int:
    """3 when a guard, the domain's switch or its quarantine held the plan; 1 when it
    cannot be applied (superseded, a dry run's, its domain gone)."""
    return EXIT_HELD if stopped.waiting else EXIT_ERROR


def _report_application(applied, args: argparse.Namespace) -> int:
    """The summary table of an application, its failures with their reasons, and the
    quarantine they brought; exit 1 when any action failed, 130 when the operator stopped
    it."""
    interrupts = args.interrupts
    result = applied.result
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
            for row in result.failures.head(20).itertuples(index=False):
                print(f"  - {row.action} {row.user_name}: {row.outcome}", file=sys.stderr)
            if result.failed > 20:
                print(
                    f"  ... and {result.failed - 20:,} more "
                    f"(`komeet-sync plans show {result.plan_id} --failed`)",
                    file=sys.stderr,
                )
            print(
                f"Every outcome is in the plan's results.csv. Resume the transient "
                f"failures with `komeet-sync apply {result.plan_id}`; the next sync plans "
                "again whatever is still needed.",
                file=sys.stderr,
            )
        if applied.quarantine is not None:
            print(
                f"{applied.quarantine.domain} is now QUARANTINED ({applied.quarantine.reason}): "
                f"nothing more is written to Komeet for it until `{applied.quarantine.release}`.",
                file=sys.stderr,
            )
    if result.interrupted:
        print(
            f"Stopped: {result.applied:,} applied, {result.failed:,} failed, "
            f"{result.remaining:,} not sent. Nothing more is sent; resume with "
            f"`komeet-sync apply {result.plan_id}`.",
            file=sys.stderr,
        )
        return interrupts.exit_code
    if interrupts.stopped:
        print("Stopped as the last actions finished: nothing is left to send.", file=sys.stderr)
        return interrupts.exit_code
    return EXIT_ERROR if result.failed or not result.finished else EXIT_OK
