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
        commands, "sync", "read a domain's directory, reconcile and write the reports", _sync
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
        help="Komeet's SCIM User resources, exported (GET /Users)",
    )
    sync.add_argument(
        "--last-good-count",
        type=int,
        metavar="N",
        help="desired people in the last good snapshot (for the shrink guard)",
    )
    sync.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="folder for the reports (default: $KOMEET_SYNC_HOME/reports/DOMAIN/TIME)",
    )
    return parser


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
    from komeet_sync.database import DatabaseUnavailable, open_database
    from komeet_sync.domain_store import DomainStore

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
    from komeet_sync.domain_config import DomainConfig, InvalidConfiguration, SourceKind
    from komeet_sync.domain_store import DomainConflict

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
        from komeet_sync.scim_secret import hash_secret, new_secret

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
    from komeet_sync.domain_store import UnknownDomain

    try:
        return action(_store(), args.domain)
    except UnknownDomain as exc:
        raise UserError(str(exc)) from None


def _domains_show(args: argparse.Namespace) -> int:
    _print_config(_lookup(args, lambda store, domain: store.get(domain)), args)
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
    from komeet_sync.audit import AuditFiles, run_audit
    from komeet_sync.domain_config import DomainConfig, InvalidConfiguration
    from komeet_sync.export_files import ExportFormatError
    from komeet_sync.frames import FrameError

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
        f"Audit of {summary['domain']}: {summary['directory_users']:,} directory users, "
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
    from komeet_sync.domain_config import SourceKind

    config = _lookup(args, lambda store, domain: store.get(domain))
    if config.source is not SourceKind.GOOGLE:
        raise UserError(
            f"{config.domain} syncs by SCIM: Entra ID or Okta pushes its users, so there is "
            "no Google Workspace to read"
        )
    return config


def _google_check(args: argparse.Namespace) -> int:
    from komeet_sync.google_directory import GoogleError
    from komeet_sync.sync import google_reader

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
    from komeet_sync.google_directory import SCOPES

    return SCOPES


def _short_scope(scope: str) -> str:
    return scope.rsplit("/", 1)[-1]


def _sync(args: argparse.Namespace) -> int:
    from komeet_sync.domain_config import SourceKind
    from komeet_sync.export_files import ExportFormatError
    from komeet_sync.google_directory import GoogleError
    from komeet_sync.sync import dry_run, google_reader, read_google, read_scim

    store = _store()
    config = _lookup(args, lambda _, domain: store.get(domain))
    if not args.dry_run:
        raise UserError(
            "sending the plan to Komeet is not available yet: add --dry-run to compute the "
            "plan and the reports"
        )
    if args.komeet is None:
        raise UserError(
            "--komeet FILE is needed: Komeet's User resources exported from its SCIM API "
            "(GET /Users)"
        )
    try:
        if config.source is SourceKind.GOOGLE:
            reader = google_reader(config)
            run = dry_run(
                config,
                lambda: read_google(config, reader),
                args.komeet,
                args.out,
                last_good_desired=args.last_good_count,
            )
        else:
            run = dry_run(
                config,
                lambda: read_scim(config, store.engine),
                args.komeet,
                args.out,
                last_good_desired=args.last_good_count,
            )
    except (GoogleError, ExportFormatError) as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError(f"{exc.filename or args.out}: {exc.strerror}") from None
    summary = run.summary()
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"{run.read.headline}, {run.read.seconds:.1f} s "
            f"(snapshot of {run.read.started_at:%Y-%m-%d %H:%M:%S} UTC)."
        )
        _print_summary(run.result.summary(), run.out)
        print("Dry run: nothing was sent to Komeet.")
    return EXIT_HELD if run.result.plan.held else EXIT_OK


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
    from komeet_sync.domain_store import UnknownDomain
    from komeet_sync.scim_secret import hash_secret, new_secret

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

    from komeet_sync.database import DatabaseUnavailable, open_database
    from komeet_sync.scim_endpoint import ScimEndpoint
    from komeet_sync.settings import public_url

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
