"""The ``komeet-sync`` command line.

Every command takes ``--json`` for machine-readable output. A mistake of the user's (a bad
value, a missing file, a domain configured twice) ends with one line saying what was wrong
and what to do, and a non-zero exit; never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, NoReturn

from tabulate import tabulate

from komeet_sync import __version__

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_HELD = 3


class UserError(Exception):
    """A mistake of the user's; its message is all they see."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # bad input exits 1, as every command does
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    if not hasattr(args, "run"):
        parser.print_help()
        return EXIT_ERROR
    try:
        return int(args.run(args))
    except UserError as exc:
        return _fail(args, str(exc))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the output was piped to a reader that stopped (| head)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def _fail(args: argparse.Namespace, message: str) -> int:
    if getattr(args, "json", False):
        print(json.dumps({"error": message}))
    print(f"komeet-sync: {message}", file=sys.stderr)
    return EXIT_ERROR


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="komeet-sync",
        description="Keep Komeet accounts in step with each customer's directory.",
    )
    parser.add_argument("--version", action="version", version=f"komeet-sync {__version__}")
    commands = parser.add_subparsers(title="commands", parser_class=_Parser)

    domains = commands.add_parser("domains", help="manage domain configurations")
    domain_commands = domains.add_subparsers(title="domain commands", parser_class=_Parser)
    add = _command(domain_commands, "add", "configure a domain", _domains_add)
    add.add_argument("domain", help="the customer's email domain, e.g. acme.com")
    add.add_argument("--source", required=True, choices=["google", "scim"])
    add.add_argument("--admin-email", help="Google: the super admin the delegation acts as")
    add.add_argument(
        "--group",
        action="append",
        default=[],
        dest="groups",
        metavar="GROUP",
        help="a selected group: its email (Google) or displayName (SCIM); repeat",
    )
    _policy_options(add)
    add.add_argument("--disabled", action="store_true", help="add it disabled (no writes)")
    _command(domain_commands, "list", "list configured domains", _domains_list)
    for name, help_text, run in (
        ("show", "show one domain's configuration", _domains_show),
        ("enable", "enable a domain's sync", _domains_enable),
        ("disable", "disable a domain's sync: stops every write for it at once", _domains_disable),
    ):
        _command(domain_commands, name, help_text, run).add_argument("domain")
    remove = _command(domain_commands, "remove", "remove a domain's configuration", _domains_remove)
    remove.add_argument("domain")
    remove.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    audit = _command(commands, "audit", "reconcile exported files and write the reports", _audit)
    audit.add_argument("--domain", required=True)
    audit.add_argument(
        "--group",
        action="append",
        default=[],
        dest="groups",
        metavar="GROUP",
        help="a selected group (Google: email; SCIM: displayName); repeat",
    )
    _policy_options(audit)
    audit.add_argument(
        "--google-users", type=Path, metavar="FILE", help="users.list export (User resources)"
    )
    audit.add_argument(
        "--google-members",
        type=Path,
        metavar="FILE",
        help="members of each group: {group email: [Member, ...]}",
    )
    audit.add_argument(
        "--scim-users", type=Path, metavar="FILE", help="SCIM User resources the IdP pushed"
    )
    audit.add_argument(
        "--scim-groups", type=Path, metavar="FILE", help="SCIM Group resources the IdP pushed"
    )
    audit.add_argument(
        "--komeet", type=Path, metavar="FILE", required=True, help="Komeet's SCIM User resources"
    )
    audit.add_argument(
        "--last-good-count",
        type=int,
        metavar="N",
        help="desired people in the last good snapshot (for the shrink guard)",
    )
    audit.add_argument(
        "--out", type=Path, metavar="DIR", required=True, help="folder for the reports"
    )

    google = commands.add_parser("google", help="Google Workspace domains")
    google_commands = google.add_subparsers(title="google commands", parser_class=_Parser)
    check = _command(
        google_commands,
        "check",
        "authenticate as the domain's admin, count its users and resolve its selected groups",
        _google_check,
    )
    check.add_argument("domain")

    scim = commands.add_parser("scim", help="the SCIM endpoint Entra ID and Okta push to")
    scim_commands = scim.add_subparsers(title="scim commands", parser_class=_Parser)
    serve = _command(scim_commands, "serve", "serve every SCIM domain's endpoint", _scim_serve)
    serve.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1")
    serve.add_argument("--port", type=int, default=8000, help="default 8000; 0: any free port")
    rotate = _command(
        scim_commands,
        "rotate-secret",
        "make a new secret for a SCIM domain; the former one stops working",
        _scim_rotate_secret,
    )
    rotate.add_argument("domain")

    sync = _command(
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
        help="folder for the reports (default: $KOMEET_SYNC_HOME/reports/DOMAIN/TIME)",
    )
    _apply_options(sync)

    apply = _command(
        commands, "apply", "apply a stored plan, or resume one that was interrupted", _apply
    )
    apply.add_argument("plan_id", metavar="PLAN_ID")
    _apply_options(apply)

    plans = commands.add_parser("plans", help="stored provisioning plans and their approvals")
    plan_commands = plans.add_subparsers(title="plan commands", parser_class=_Parser)
    plans_list = _command(plan_commands, "list", "the latest plans, newest first", _plans_list)
    plans_list.add_argument("--domain", help="only this domain's plans")
    plans_list.add_argument("--limit", type=int, default=20, help="default 20")
    show = _command(
        plan_commands, "show", "a plan: its holds, approval, actions and ledger", _plans_show
    )
    show.add_argument("plan_id", metavar="PLAN_ID")
    show.add_argument("--limit", type=int, default=50, help="actions listed (default 50; 0: all)")
    approve = _command(
        plan_commands,
        "approve",
        "approve a held plan, by its id, so that it may be applied",
        _plans_approve,
    )
    approve.add_argument("plan_id", metavar="PLAN_ID")
    approve.add_argument("--by", required=True, metavar="NAME", help="who approves it")
    return parser


def _apply_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--concurrency",
        type=int,
        default=8,
        metavar="N",
        help="requests in flight at once (default 8)",
    )
    command.add_argument(
        "--mode",
        choices=["sequential", "concurrent", "bulk"],
        help="default: bulk when Komeet announces SCIM Bulk, else concurrent",
    )


def _command(
    group: Any, name: str, help_text: str, run: Callable[[argparse.Namespace], int]
) -> argparse.ArgumentParser:
    command = group.add_parser(name, help=help_text, description=help_text)
    command.add_argument("--json", action="store_true", help="machine-readable output")
    command.set_defaults(run=run)
    return command


def _policy_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--alias-domain",
        action="append",
        default=[],
        dest="alias_domains",
        metavar="DOMAIN",
        help="another domain of the same users; repeat",
    )
    command.add_argument(
        "--protect",
        action="append",
        default=[],
        dest="protected",
        metavar="EMAIL",
        help="an account never deactivated; repeat",
    )
    command.add_argument(
        "--max-deactivations",
        type=int,
        metavar="N",
        default=500,
        help="deactivations a plan may carry without approval (default 500)",
    )
    command.add_argument(
        "--max-deactivation-share",
        type=float,
        metavar="SHARE",
        default=0.2,
        help="share of active managed accounts, and of directory shrink, a "
        "plan may reach without approval (default 0.2)",
    )


# --- domains -------------------------------------------------------------------------------


def _store():
    from komeet_sync.store.database import DatabaseUnavailable, open_database
    from komeet_sync.store.domains import DomainStore

    try:
        return DomainStore(open_database())
    except DatabaseUnavailable as exc:
        raise UserError(str(exc)) from None


def _config_dict(config) -> dict[str, Any]:
    data = asdict(config)
    data["source"] = config.source.value
    for key in ("groups", "alias_domains", "protected"):
        data[key] = list(data[key])
    return data


def _print_config(config, args: argparse.Namespace, headline: str | None = None) -> None:
    if args.json:
        print(json.dumps(_config_dict(config), indent=2))
        return
    if headline:
        print(headline)
    data = _config_dict(config)
    rows = [
        (key, ", ".join(value) if isinstance(value, list) else value) for key, value in data.items()
    ]
    print(tabulate(rows, tablefmt="plain"))


def _domains_add(args: argparse.Namespace) -> int:
    from komeet_sync.model.domain_config import DomainConfig, InvalidConfiguration, SourceKind
    from komeet_sync.store.domains import DomainConflict

    try:
        config = DomainConfig.create(
            args.domain,
            args.source,
            groups=args.groups,
            alias_domains=args.alias_domains,
            protected=args.protected,
            admin_email=args.admin_email,
            enabled=not args.disabled,
            max_deactivations=args.max_deactivations,
            max_deactivation_share=args.max_deactivation_share,
        )
        store = _store()
        store.add(config)
    except (InvalidConfiguration, DomainConflict) as exc:
        raise UserError(str(exc)) from None
    if config.source is SourceKind.SCIM:
        from komeet_sync.sources.scim.secret import hash_secret, new_secret

        secret = new_secret()
        store.set_scim_secret_hash(config.domain, hash_secret(secret))
        _scim_credentials(config, secret, args, f"Configured {config.domain} (scim).")
        return EXIT_OK
    _print_config(config, args, f"Configured {config.domain} ({config.source.value}).")
    return EXIT_OK


def _domains_list(args: argparse.Namespace) -> int:
    configs = _store().list()
    if args.json:
        print(json.dumps([_config_dict(config) for config in configs], indent=2))
        return EXIT_OK
    if not configs:
        print("No domain is configured. Add one with 'komeet-sync domains add DOMAIN ...'.")
        return EXIT_OK
    rows = [
        (
            c.domain,
            c.source.value,
            "enabled" if c.enabled else "DISABLED",
            ", ".join(c.groups) or "(all users)",
            ", ".join(c.alias_domains),
        )
        for c in configs
    ]
    print(tabulate(rows, headers=["domain", "source", "sync", "groups", "alias domains"]))
    return EXIT_OK


def _lookup(args: argparse.Namespace, action: Callable[[Any, str], Any]):
    from komeet_sync.store.domains import UnknownDomain

    try:
        return action(_store(), args.domain)
    except UnknownDomain as exc:
        raise UserError(str(exc)) from None


def _domains_show(args: argparse.Namespace) -> int:
    from komeet_sync.store.failures import recent_failures

    store = _store()
    config = _lookup(args, lambda _, domain: store.get(domain))
    failures = recent_failures(store.engine, config.domain)
    if args.json:
        print(
            json.dumps(
                _config_dict(config)
                | {
                    "recent_failures": json.loads(
                        failures.to_json(orient="records", date_format="iso")
                    )
                },
                indent=2,
            )
        )
        return EXIT_OK
    _print_config(config, args)
    if len(failures):
        print("\nRecent failed syncs (newest first):")
        for row in failures.itertuples(index=False):  # five at most
            first_line = str(row.message).strip().splitlines()[0]
            print(f"  {row.at:%Y-%m-%d %H:%M} UTC  run {str(row.run_id)[:8]}: {first_line}")
    return EXIT_OK


def _domains_enable(args: argparse.Namespace) -> int:
    config = _lookup(args, lambda store, domain: store.set_enabled(domain, True))
    _print_config(config, args, f"Sync enabled for {config.domain}.")
    return EXIT_OK


def _domains_disable(args: argparse.Namespace) -> int:
    config = _lookup(args, lambda store, domain: store.set_enabled(domain, False))
    _print_config(config, args, f"Sync disabled for {config.domain}: nothing is written for it.")
    return EXIT_OK


def _domains_remove(args: argparse.Namespace) -> int:
    config = _lookup(args, lambda store, domain: store.get(domain))
    if not args.yes:
        if not sys.stdin.isatty():
            raise UserError(f"removing {config.domain} needs --yes when not run on a terminal")
        answer = input(f"Remove the configuration of {config.domain}? Type the domain: ")
        if answer.strip().lower() != config.domain:
            raise UserError(f"not removed: {answer.strip()!r} is not {config.domain}")
    _lookup(args, lambda store, domain: store.remove(domain))
    _print_config(config, args, f"Removed the configuration of {config.domain}.")
    return EXIT_OK


# --- audit ---------------------------------------------------------------------------------


def _audit(args: argparse.Namespace) -> int:
    from komeet_sync.model.domain_config import DomainConfig, InvalidConfiguration
    from komeet_sync.model.frames import FrameError
    from komeet_sync.runs.audit import AuditFiles, run_audit
    from komeet_sync.sources.exports import ExportFormatError

    files = AuditFiles(
        komeet=args.komeet,
        google_users=args.google_users,
        google_members=args.google_members,
        scim_users=args.scim_users,
        scim_groups=args.scim_groups,
    )
    try:
        source = files.source
        if source == "google" and not args.groups:
            raise UserError("a Google audit needs --group: the emails of the selected groups")
        config = DomainConfig.create(
            args.domain,
            source,
            groups=args.groups,
            alias_domains=args.alias_domains,
            protected=args.protected,
            max_deactivations=args.max_deactivations,
            max_deactivation_share=args.max_deactivation_share,
            require_admin=False,
        )
        result = run_audit(config, files, args.out, last_good_desired=args.last_good_count)
    except (InvalidConfiguration, ExportFormatError, FrameError) as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:  # an --out that is a file, a folder we may not write, ...
        raise UserError(f"{exc.filename or args.out}: {exc.strerror}") from None
    summary = result.summary()
    if args.json:
        print(json.dumps(summary | {"out": str(args.out)}, indent=2))
    else:
        _print_summary(summary, args.out)
    return EXIT_HELD if result.plan.held else EXIT_OK


def _print_summary(summary: dict[str, Any], out: Path) -> None:
    counts = summary["counts"]
    print(
        f"Reconciliation of {summary['domain']}: {summary['directory_users']:,} directory users, "
        f"{summary['desired']:,} desired, {summary['komeet_accounts']:,} Komeet accounts"
    )
    print(tabulate(sorted(counts.items()), headers=["report", "rows"]))
    actions = summary["actions"]
    print()
    print(
        tabulate(sorted(actions.items()), headers=["action", "count"])
        if actions
        else "The plan has no action."
    )
    print()
    if summary["held"]:
        print(f"Plan {summary['plan_id']} is HELD:")
        for hold in summary["hold_reasons"]:
            print(f"  - {hold['guard']}: {hold['detail']}")
    else:
        print(f"Plan {summary['plan_id']} may be applied.")
    print(f"Reports written to {out}/ (CSV and Parquet, summary.json).")


# --- google and sync -----------------------------------------------------------------------


def _google_config(args: argparse.Namespace):
    from komeet_sync.model.domain_config import SourceKind

    config = _lookup(args, lambda store, domain: store.get(domain))
    if config.source is not SourceKind.GOOGLE:
        raise UserError(
            f"{config.domain} syncs by SCIM: Entra ID or Okta pushes its users, so there is "
            "no Google Workspace to read"
        )
    return config


def _google_check(args: argparse.Namespace) -> int:
    from komeet_sync.runs.sync import google_reader
    from komeet_sync.sources.google.reader import GoogleError

    config = _google_config(args)
    try:
        reader = google_reader(config)
    except GoogleError as exc:
        raise UserError(str(exc)) from None
    check = reader.check(config.domains, config.groups)
    if args.json:
        print(json.dumps(asdict(check), indent=2))
        return EXIT_ERROR if check.problems else EXIT_OK
    print(
        f"Google Workspace of {check.domains[0]}, read as {check.subject} "
        f"by service account client id {check.client_id}:"
    )
    if check.users is not None:
        print(f"  authorised for {', '.join(_short_scope(s) for s in _scopes())}")
        print(f"  {check.users:,} users in {', '.join(check.domains)}")
        for group in check.groups:
            state = f"{group.members:,} users" if group.found else "NOT FOUND"
            print(f"  group {group.group}: {state}")
    print(f"  ({check.requests} requests)")
    if check.problems:
        print("Problems:", file=sys.stderr)
        for problem in check.problems:
            print(f"  - {problem}", file=sys.stderr)
        return EXIT_ERROR
    print("Everything needed to sync this domain is in place.")
    return EXIT_OK


def _scopes() -> tuple[str, ...]:
    from komeet_sync.sources.google.reader import SCOPES

    return SCOPES


def _short_scope(scope: str) -> str:
    return scope.rsplit("/", 1)[-1]


def _sync(args: argparse.Namespace) -> int:
    from komeet_sync.komeet.client import KomeetError
    from komeet_sync.model.domain_config import SourceKind
    from komeet_sync.runs.sync import (
        dry_run,
        google_reader,
        komeet_api_reader,
        komeet_file_reader,
        read_google,
        read_scim,
        sync,
    )
    from komeet_sync.sources.exports import ExportFormatError
    from komeet_sync.sources.google.reader import GoogleError

    store = _store()
    config = _lookup(args, lambda _, domain: store.get(domain))
    if args.komeet is not None and not args.dry_run:
        raise UserError(
            "--komeet FILE goes with --dry-run only: a sync that applies its plan reads "
            "Komeet's accounts from KOMEET_SCIM_URL, as late as possible"
        )
    _check_apply_options(args)
    try:
        if config.source is SourceKind.GOOGLE:
            reader = google_reader(config)

            def read_source():
                return read_google(config, reader)
        else:

            def read_source():
                return read_scim(config, store.engine)

        if args.dry_run:
            read_komeet = (
                komeet_file_reader(args.komeet)
                if args.komeet is not None
                else komeet_api_reader(_komeet_client(), config)
            )
            run = dry_run(
                config, read_source, read_komeet, args.out, last_good_desired=args.last_good_count
            )
        else:
            with _Progress(f"Applying to Komeet ({config.domain})", args) as progress:
                synced = sync(
                    config,
                    read_source,
                    _komeet_client(),
                    store.engine,
                    args.out,
                    last_good_desired=args.last_good_count,
                    concurrency=args.concurrency,
                    mode=_mode(args),
                    progress=progress.update,
                )
    except (GoogleError, ExportFormatError, KomeetError) as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError(f"{exc.filename or args.out}: {exc.strerror}") from None
    if args.dry_run:
        if args.json:
            print(json.dumps(run.summary(), indent=2))
        else:
            _print_read(run)
            _print_summary(run.result.summary(), run.out)
            print("Dry run: nothing was sent to Komeet.")
        return EXIT_HELD if run.result.plan.held else EXIT_OK

    if args.json:
        print(json.dumps(synced.summary(), indent=2, default=str))
    else:
        _print_read(synced.run)
        _print_summary(synced.run.result.summary(), synced.run.out)
    if synced.stopped is not None:
        if not args.json:
            print(f"komeet-sync: {synced.stopped}", file=sys.stderr)
        return EXIT_HELD
    assert synced.applied is not None
    return _report_application(synced.applied, args)


def _print_read(run) -> None:
    print(
        f"{run.read.headline}, {run.read.seconds:.1f} s "
        f"(snapshot of {run.read.started_at:%Y-%m-%d %H:%M:%S} UTC)."
    )


def _check_apply_options(args: argparse.Namespace) -> None:
    if not 1 <= args.concurrency <= 64:
        raise UserError(
            f"--concurrency {args.concurrency}: give 1 to 64 requests in flight (default 8)"
        )


def _mode(args: argparse.Namespace):
    from komeet_sync.komeet.apply import Mode

    return Mode(args.mode) if args.mode else None


def _komeet_client():
    from komeet_sync.komeet.client import KomeetClient, KomeetError

    try:
        return KomeetClient.from_environment()
    except KomeetError as exc:
        raise UserError(str(exc)) from None


def _apply(args: argparse.Namespace) -> int:
    from komeet_sync.komeet.apply import NotApplied, apply_plan
    from komeet_sync.komeet.client import KomeetError
    from komeet_sync.runs.sync import write_results
    from komeet_sync.store.plans import PlanError, PlanStore

    _check_apply_options(args)
    store = _store()
    client = _komeet_client()
    try:
        with _Progress(f"Applying {args.plan_id}", args) as progress:
            result = apply_plan(
                store.engine,
                args.plan_id,
                client,
                concurrency=args.concurrency,
                mode=_mode(args),
                trigger="komeet-sync apply",
                progress=progress.update,
            )
    except NotApplied as exc:
        if args.json:
            print(json.dumps({"stopped": {"kind": exc.kind, "detail": str(exc)}}))
        print(f"komeet-sync: {exc}", file=sys.stderr)
        return EXIT_HELD
    except (PlanError, KomeetError) as exc:
        raise UserError(str(exc)) from None
    plan = PlanStore(store.engine).get(result.plan_id)
    if plan.reports and result.application_id is not None:
        try:
            write_results(store.engine, result, Path(plan.reports))
        except OSError as exc:
            print(f"komeet-sync: the results were not written: {exc}", file=sys.stderr)
    if args.json:
        print(json.dumps(result.summary(), indent=2, default=str))
    return _report_application(result, args)


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


class _Progress:
    """A progress bar on stderr when it is a terminal; nothing otherwise."""

    def __init__(self, label: str, args: argparse.Namespace) -> None:
        self.label = label
        self.shown = sys.stderr.isatty() and not args.json
        self.last = 0.0

    def __enter__(self) -> _Progress:
        return self

    def update(self, done: int, total: int) -> None:
        import time

        if not self.shown:
            return
        now = time.monotonic()
        if done < total and now - self.last < 0.1:
            return
        self.last = now
        width = 30
        filled = width * done // max(total, 1)
        print(
            f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,}",
            end="",
            file=sys.stderr,
            flush=True,
        )

    def __exit__(self, *exc: object) -> None:
        if self.shown and self.last:
            print(file=sys.stderr)


# --- plans ---------------------------------------------------------------------------------


def _plans_list(args: argparse.Namespace) -> int:
    from komeet_sync.store.plans import PlanStore

    frame = PlanStore(_store().engine).list(args.domain, max(1, args.limit))
    if args.json:
        print(frame.to_json(orient="records", date_format="iso", indent=2))
    elif frame.empty:
        print("No plan is stored yet: `komeet-sync sync DOMAIN` makes one.")
    else:
        frame["created_at"] = frame["created_at"].dt.strftime("%Y-%m-%d %H:%M")
        print(tabulate(frame.fillna(""), headers="keys", showindex=False))
    return EXIT_OK


def _plans_show(args: argparse.Namespace) -> int:
    from komeet_sync.store.ledger import Ledger
    from komeet_sync.store.plans import PlanError, PlanStore

    engine = _store().engine
    plans = PlanStore(engine)
    try:
        plan = plans.get(args.plan_id)
    except PlanError as exc:
        raise UserError(str(exc)) from None
    actions = plans.actions(plan.plan_id)
    ledger = Ledger(engine).entries(plan.plan_id)
    if not ledger.empty:
        actions = actions.merge(
            ledger[["position", "status", "outcome"]], on="position", how="left"
        )
    if args.json:
        print(
            json.dumps(
                {
                    "plan_id": plan.plan_id,
                    "domain": plan.domain,
                    "created_at": plan.created_at.isoformat(),
                    "source": plan.source,
                    "desired": plan.desired,
                    "counts": plan.counts,
                    "holds": [hold.as_dict() for hold in plan.holds],
                    "approved_by": plan.approved_by,
                    "approved_at": plan.approved_at.isoformat() if plan.approved_at else None,
                    "reports": plan.reports,
                    "actions": json.loads(actions.to_json(orient="records")),
                },
                indent=2,
            )
        )
        return EXIT_OK
    print(f"Plan {plan.plan_id} for {plan.domain}, made {plan.created_at:%Y-%m-%d %H:%M} UTC")
    print(f"  source {plan.source}, {plan.desired:,} desired people; reports in {plan.reports}")
    counts = ", ".join(f"{count:,} {action}" for action, count in plan.counts.items())
    print(f"  actions: {counts or 'none'}")
    for hold in plan.holds:
        print(f"  HELD by {hold.guard.value}: {hold.detail}")
    if plan.approved_by:
        print(f"  approved by {plan.approved_by} at {plan.approved_at:%Y-%m-%d %H:%M} UTC")
    elif plan.waiting_for_approval:
        print(f"  waiting for approval: komeet-sync plans approve {plan.plan_id} --by NAME")
    if ledger.empty:
        print("  never applied")
    else:
        state = ", ".join(f"{n:,} {s}" for s, n in ledger["status"].value_counts().items())
        print(f"  last application: {state}")
    shown = actions if args.limit <= 0 else actions.head(args.limit)
    columns = [
        c
        for c in ["action", "user_name", "komeet_id", "changes", "status", "outcome", "reason"]
        if c in shown
    ]
    if not shown.empty:
        print()
        print(tabulate(shown[columns].fillna(""), headers="keys", showindex=False, maxcolwidths=48))
    if len(shown) < len(actions):
        print(f"... and {len(actions) - len(shown):,} more (--limit 0 lists them all)")
    return EXIT_OK


def _plans_approve(args: argparse.Namespace) -> int:
    from komeet_sync.store.plans import PlanError, PlanStore

    plans = PlanStore(_store().engine)
    try:
        before = plans.get(args.plan_id)
        plan = plans.approve(args.plan_id, args.by)
    except PlanError as exc:
        raise UserError(str(exc)) from None
    if args.json:
        print(
            json.dumps(
                {
                    "plan_id": plan.plan_id,
                    "approved_by": plan.approved_by,
                    "approved_at": plan.approved_at.isoformat() if plan.approved_at else None,
                }
            )
        )
        return EXIT_OK
    if before.approved_by is not None:
        print(
            f"{plan.plan_id} was already approved by {plan.approved_by} at "
            f"{plan.approved_at:%Y-%m-%d %H:%M} UTC."
        )
    else:
        print(f"Approved {plan.plan_id} as {plan.approved_by}.")
    print(f"Apply it with `komeet-sync apply {plan.plan_id}`.")
    return EXIT_OK


# --- scim ----------------------------------------------------------------------------------


def _scim_credentials(config, secret: str, args: argparse.Namespace, headline: str) -> None:
    """Print a SCIM domain's URL and secret: the only time the secret is shown."""
    from komeet_sync.settings import public_url

    url = f"{public_url()}/scim/{config.domain}/v2"
    if args.json:
        print(json.dumps(_config_dict(config) | {"scim_url": url, "secret": secret}, indent=2))
        return
    print(headline)
    print(f"  SCIM URL:   {url}")
    print(f"  Secret key: {secret}")
    print(
        "Enter both in Entra ID or Okta (Tenant URL / Base URL, and Secret Token / API token). "
        "The secret is shown only now; 'komeet-sync scim rotate-secret "
        f"{config.domain}' makes a new one."
    )


def _scim_rotate_secret(args: argparse.Namespace) -> int:
    from komeet_sync.sources.scim.secret import hash_secret, new_secret
    from komeet_sync.store.domains import UnknownDomain

    secret = new_secret()
    try:
        config = _store().set_scim_secret_hash(args.domain, hash_secret(secret))
    except UnknownDomain as exc:
        raise UserError(str(exc)) from None
    _scim_credentials(
        config,
        secret,
        args,
        f"New secret for {config.domain}: the former one no longer works. Update the IdP.",
    )
    return EXIT_OK


def _scim_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from komeet_sync.settings import public_url
    from komeet_sync.sources.scim.endpoint import ScimEndpoint
    from komeet_sync.store.database import DatabaseUnavailable, open_database

    try:
        engine = open_database()
    except DatabaseUnavailable as exc:
        raise UserError(str(exc)) from None
    listening = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((args.host, args.port))
    except OSError as exc:  # the port is taken, or not ours to bind
        listening.close()
        raise UserError(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror}; choose another --port"
        ) from None
    endpoint = ScimEndpoint(engine, public_url())
    port = listening.getsockname()[1]  # the one the system chose for --port 0
    print(
        f"Serving SCIM on http://{args.host}:{port}/scim/DOMAIN/v2 "
        f"(public URL {public_url()}); Ctrl-C stops.",
        flush=True,
    )
    # uvicorn stops gracefully on SIGINT or SIGTERM, then raises the signal again: either
    # is a normal stop.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(EXIT_OK))
    try:
        server = uvicorn.Server(uvicorn.Config(endpoint, log_level="warning"))
        server.run(sockets=[listening])
    except KeyboardInterrupt:
        pass
    finally:
        endpoint.close()
        listening.close()
    print("Stopped.", flush=True)
    return EXIT_OK
