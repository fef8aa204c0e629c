"""What every command shares: exit codes, the one-line error, the database and Komeet as a
command opens them, the progress bar, the summary tables and tables fitted to the terminal."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

from tabulate import tabulate

from komeet_sync.progress import Advance

if TYPE_CHECKING:
    import pandas as pd

# The exit codes of every command (README, "Exit codes"), whatever stdout is.
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_HELD = 3
EXIT_NOT_FOUND = 4  # explain: nobody holds the address
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM

EXIT_CODES = {
    EXIT_OK: "done, or nothing to do",
    EXIT_ERROR: "an error (the one line on stderr says which), or an action Komeet refused",
    EXIT_HELD: "a plan held by a guard, or the domain disabled or quarantined: nothing was sent",
    EXIT_NOT_FOUND: "no directory user and no Komeet account of the domain has that address",
    EXIT_INTERRUPTED: "stopped by Ctrl-C (SIGINT); 143 for SIGTERM",
}

# Every environment variable komeet-sync reads (README, "Environment"), by what needs it.
ENVIRONMENT = {
    "KOMEET_SYNC_HOME": "the folder of the embedded SQLite database and of the syncs "
    "(default ./.komeet_sync)",
    "KOMEET_SYNC_DATABASE_URL": "another database, e.g. postgresql+psycopg://user@host/dbname",
    "KOMEET_SYNC_RESULTS": "another place for every sync's reports: a folder or an fsspec "
    "URL such as s3://bucket/komeet (default $KOMEET_SYNC_HOME/syncs)",
    "KOMEET_SCIM_URL": "the base URL of Komeet's SCIM API",
    "KOMEET_SCIM_TOKEN": "the bearer token Komeet issued for the sync",
    "KOMEET_SYNC_KOMEET_TIMEOUT": "seconds a Komeet request may take (default 30)",
    "KOMEET_SYNC_KOMEET_ATTEMPTS": "tries of a Komeet request that failed transiently (default 6)",
    "KOMEET_SYNC_KOMEET_BACKOFF": "the first retry's longest wait, in seconds (default 1)",
    "GOOGLE_SERVICE_ACCOUNT_FILE": "the service account key (JSON) with domain-wide delegation",
    "GOOGLE_DIRECTORY_API_ENDPOINT": "another Directory API address (the emulator)",
    "GOOGLE_OAUTH_CLIENT_FILE": "the client-secrets JSON of Komeet's OAuth client (Desktop app) "
    "that admins authorize with `google authorize`",
    "KOMEET_SYNC_GOOGLE_ATTEMPTS": "tries of a Google request that failed transiently (default 6)",
    "KOMEET_SYNC_GOOGLE_BACKOFF": "the first retry's longest wait, in seconds (default 1)",
    "KOMEET_SYNC_PUBLIC_URL": "the address IdPs reach the SCIM endpoint at "
    "(default http://127.0.0.1:8000)",
    "KOMEET_SYNC_SCIM_RATE_LIMIT": "requests a second a SCIM domain's IdP may send unless "
    "`domains set --scim-rate-limit` says (default 50)",
    "KOMEET_SYNC_SCHEDULE": "Dagster: the cron schedule of the syncs (default hourly)",
    "KOMEET_SYNC_NOTIFY": "notification URLs of the domains with none of their own",
    "KOMEET_SYNC_SECRET_KEY": "the Fernet keys that seal notification URLs and refresh tokens "
    "at rest, newest first, separated by commas (URLs' default: $KOMEET_SYNC_HOME/secret.key; "
    "refresh tokens need it)",
    "KOMEET_SYNC_RETENTION_DAYS": "days the SCIM request log and past syncs' results are "
    "kept (default 90)",
    "KOMEET_SYNC_DAGSTER_URL": "Dagster: where admins open the UI, for whole approval links",
    "KOMEET_SYNC_EXECUTOR": "Dagster: where a run's steps execute, in_process (default) or celery",
    "KOMEET_SYNC_CELERY_BROKER": "Dagster, with celery: the Redis URL of the broker, "
    "redis://host:6379/0",
}
DATABASE = ("KOMEET_SYNC_HOME", "KOMEET_SYNC_DATABASE_URL")
RESULTS = ("KOMEET_SYNC_RESULTS",)
KOMEET = (
    "KOMEET_SCIM_URL",
    "KOMEET_SCIM_TOKEN",
    "KOMEET_SYNC_KOMEET_TIMEOUT",
    "KOMEET_SYNC_KOMEET_ATTEMPTS",
    "KOMEET_SYNC_KOMEET_BACKOFF",
)
GOOGLE = (
    "GOOGLE_SERVICE_ACCOUNT_FILE",
    "GOOGLE_OAUTH_CLIENT_FILE",
    "GOOGLE_DIRECTORY_API_ENDPOINT",
    "KOMEET_SYNC_GOOGLE_ATTEMPTS",
    "KOMEET_SYNC_GOOGLE_BACKOFF",
)
# A domain authorized by its admin's consent: the OAuth client, and the key of its token.
GOOGLE_OAUTH = (
    "GOOGLE_OAUTH_CLIENT_FILE",
    "GOOGLE_DIRECTORY_API_ENDPOINT",
    "KOMEET_SYNC_SECRET_KEY",
)
SECRET_KEY = ("KOMEET_SYNC_SECRET_KEY",)
GOOGLE_RETRIES = ("KOMEET_SYNC_GOOGLE_ATTEMPTS", "KOMEET_SYNC_GOOGLE_BACKOFF")
PUBLIC_URL = ("KOMEET_SYNC_PUBLIC_URL",)
NOTIFY = ("KOMEET_SYNC_NOTIFY", "KOMEET_SYNC_SECRET_KEY")
RETENTION = ("KOMEET_SYNC_RETENTION_DAYS",)
SCIM_RATE_LIMIT = ("KOMEET_SYNC_SCIM_RATE_LIMIT",)
# The exit codes of the commands that apply a plan or compute one (sync, apply, audit).
PLAN_EXIT_CODES = (EXIT_OK, EXIT_ERROR, EXIT_HELD, EXIT_INTERRUPTED)


class UserError(Exception):
    """A mistake of the user's; its message is all they see."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """A bad option: one line, naming the help to read, and exit 1 as every mistake."""
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def command(
    group: Any,
    name: str,
    help_text: str,
    run: Callable[[argparse.Namespace], int],
    *,
    environment: tuple[str, ...] = DATABASE,
    exit_codes: tuple[int, ...] = (EXIT_OK, EXIT_ERROR, EXIT_INTERRUPTED),
    exit_meanings: dict[int, str] | None = None,
) -> argparse.ArgumentParser:
    """A command of ``group`` that runs ``run``; every command takes ``--json`` and
    ``--debug``, and its ``--help`` ends with its exit codes (``exit_meanings`` where one
    means something else for it than EXIT_CODES says) and the environment variables it
    reads."""
    parser = group.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog=epilog(environment, exit_codes, exit_meanings),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    debug_option(parser, default=argparse.SUPPRESS)
    parser.set_defaults(run=run)
    return parser


def debug_option(parser: argparse.ArgumentParser, default: Any = False) -> None:
    parser.add_argument(
        "--debug",
        action="store_true",
        default=default,
        help="show the traceback of an unexpected error (to report it)",
    )


def epilog(
    environment: tuple[str, ...],
    exit_codes: tuple[int, ...],
    exit_meanings: dict[int, str] | None = None,
) -> str:
    meanings = EXIT_CODES | (exit_meanings or {})
    codes = "\n".join(f"  {code:<4} {meanings[code]}" for code in exit_codes)
    width = max(len(name) for name in environment) if environment else 0
    names = "\n".join(f"  {name:<{width}}  {ENVIRONMENT[name]}" for name in environment)
    return f"exit codes:\n{codes}" + (f"\n\nenvironment:\n{names}" if environment else "")


def fail(args: argparse.Namespace, message: str) -> int:
    if getattr(args, "json", False):
        print(json.dumps({"error": message}))
    print(f"komeet-sync: {message}", file=sys.stderr)
    return EXIT_ERROR


def domain_store():
    """The domain configurations, in the database the settings name."""
    from komeet_sync.store.database import DatabaseUnavailable, open_database
    from komeet_sync.store.domains import DomainStore

    try:
        return DomainStore(open_database())
    except DatabaseUnavailable as exc:
        raise UserError(str(exc)) from None


def configured(domain: str):
    """A domain's configuration, or a UserError naming the domains there are."""
    from komeet_sync.store.domains import UnknownDomain

    store = domain_store()
    try:
        return store, store.get(domain)
    except UnknownDomain as exc:
        raise UserError(str(exc)) from None


def komeet_client():
    """Komeet's SCIM API as ``KOMEET_SCIM_URL`` and ``KOMEET_SCIM_TOKEN`` say."""
    from komeet_sync.komeet.client import KomeetClient, KomeetError

    try:
        return KomeetClient.from_environment()
    except KomeetError as exc:
        raise UserError(str(exc)) from None


def print_config(config, args: argparse.Namespace, headline: str | None = None) -> None:
    data = config.as_dict()
    if args.json:
        print(json.dumps(data, indent=2))
        return
    if headline:
        print(headline)
    rows = [
        (key, ", ".join(value) if isinstance(value, list) else value) for key, value in data.items()
    ]
    print(tabulate(rows, tablefmt="plain"))


def sync_state(config) -> str:
    """Whether a domain's syncs write to Komeet, in words (``domains list``, ``status``)."""
    switch = "enabled" if config.enabled else "DISABLED"
    return switch if config.quarantine is None else f"{switch}, QUARANTINED"


def quarantine_lines(quarantine) -> list[str]:
    """A quarantine in words, with the command that lifts it (``domains show``, ``status``)."""
    return [
        f"{quarantine.domain}: QUARANTINED since {quarantine.since:%Y-%m-%d %H:%M} UTC: "
        f"{quarantine.reason}. Nothing is written to Komeet for it; its reports still compute.",
        f"  release it: {quarantine.release}",
    ]


def print_summary(summary: dict[str, Any], out: str, approved_by: str | None = None) -> None:
    """A reconciliation's counts, actions and holds (``summary.json``), whether its plan was
    approved (``approved_by``, when stored), and where its reports are."""
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
    if summary["held"] and approved_by:
        print(f"Plan {summary['plan_id']} was held, and {approved_by} approved it:")
        for hold in summary["hold_reasons"]:
            print(f"  - {hold['guard']}: {hold['detail']}")
    elif summary["held"]:
        print(f"Plan {summary['plan_id']} is HELD:")
        for hold in summary["hold_reasons"]:
            print(f"  - {hold['guard']}: {hold['detail']}")
    else:
        print(f"Plan {summary['plan_id']} may be applied.")
    print(f"Reports written to {out}/ (CSV and Parquet, summary.json).")


def counted(number: int, one: str, many: str | None = None) -> str:
    """``number`` of a thing, in words: "1 plan", "2,000 plans"."""
    return f"{number:,} {one if number == 1 else (many or one + 's')}"


def terminal_width() -> int:
    """The terminal's width (``COLUMNS`` first; 80 when it is not a terminal)."""
    return max(40, shutil.get_terminal_size().columns)


# A table's columns, most important first, each with the narrowest width it is shown at
# (None: never wrapped, as an id).
Columns = list[tuple[str, int | None]]


def fitted_table(frame: pd.DataFrame, columns: Columns, width: int | None = None) -> str:
    """``frame``'s ``columns`` as a table no wider than ``width`` (the terminal's): columns
    with nothing in them are left out, the least important are dropped until their
    narrowest widths fit, then the space left goes to the columns that want it, the least
    greedy first, and longer cells wrap. Every table of the CLI fits this way."""
    width = width or terminal_width()
    cells = frame.astype(object).where(frame.notna(), "").astype(str)
    # tabulate pads a header by 2 and separates columns by 2.
    natural = {
        name: max([len(name) + 2, *(len(line) for c in cells[name] for line in c.splitlines())])
        for name, _ in columns
        if name in cells and (cells[name] != "").any()
    }
    narrowest = {
        name: natural[name] if least is None else min(natural[name], max(least, len(name) + 2))
        for name, least in columns
        if name in natural
    }
    kept = [name for name, _ in columns if name in natural]
    while len(kept) > 1 and sum(narrowest[n] for n in kept) + 2 * (len(kept) - 1) > width:
        kept.pop()
    given = dict(narrowest)
    spare = width - sum(given[n] for n in kept) - 2 * (len(kept) - 1)
    wanting = sorted(
        (n for n in kept if natural[n] > given[n]), key=lambda n: natural[n] - given[n]
    )
    for index, name in enumerate(wanting):
        more = min(natural[name] - given[name], max(0, spare) // (len(wanting) - index))
        given[name] += more
        spare -= more
    return tabulate(
        cells[kept],
        headers="keys",
        showindex=False,
        maxcolwidths=[given[n] if given[n] < natural[n] else None for n in kept],
    )


class ConsoleProgress:
    """The stages of long work (``komeet_sync.progress``) on stderr: on a terminal, a line
    redrawn as the work goes, with a bar, the rate and the ETA when the total is known;
    off a terminal (a log, a pipe) or with ``--json``, one line per stage when it ends."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.live = sys.stderr.isatty() and not getattr(args, "json", False)

    @contextmanager
    def stage(self, label: str, unit: str) -> Iterator[Advance]:
        started = time.monotonic()
        shown = 0.0
        counted: list[tuple[int, int | None]] = []
        if self.live:
            print(f"\r\033[K{label} ...", end="", file=sys.stderr, flush=True)

        def advance(done: int, total: int | None) -> None:
            nonlocal shown
            counted[:] = [(done, total)]
            now = time.monotonic()
            if not self.live or (now - shown < 0.1 and (total is None or done < total)):
                return
            shown = now
            line = _progress_line(label, unit, done, total, now - started)
            print(f"\r\033[K{line}", end="", file=sys.stderr, flush=True)

        try:
            yield advance
        except BaseException:
            if self.live:
                print(file=sys.stderr)
            raise
        seconds = time.monotonic() - started
        if counted:
            done, _ = counted[0]
            rate = f", {done / seconds:,.0f}/s" if seconds >= 0.05 and done else ""
            line = f"{label}: {done:,} {unit} in {seconds:.1f} s{rate}"
            print(f"\r\033[K{line}" if self.live else line, file=sys.stderr, flush=True)
        elif self.live:
            print("\r\033[K", end="", file=sys.stderr, flush=True)


def _progress_line(label: str, unit: str, done: int, total: int | None, seconds: float) -> str:
    rate = done / seconds if seconds > 0 else 0.0
    speed = f"{rate:,.0f} {unit}/s" if rate else ""
    if total is None:
        return f"{label}  {done:,} {unit}  {speed}  {seconds:.0f} s"
    width = 24
    filled = width * min(done, total) // max(total, 1)
    eta = f"ETA {(total - done) / rate:,.0f} s" if rate and done < total else ""
    return (
        f"{label} [{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} {unit}  "
        f"{speed}  {eta}"
    ).rstrip()
