"""What every command shares: exit codes, the one-line error, the database and Komeet as a
command opens them, the progress bar and the summary tables."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any, NoReturn

from tabulate import tabulate

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_HELD = 3


class UserError(Exception):
    """A mistake of the user's; its message is all they see."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # bad input exits 1, as every command does
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


def command(
    group: Any, name: str, help_text: str, run: Callable[[argparse.Namespace], int]
) -> argparse.ArgumentParser:
    """A command of ``group`` that runs ``run``; every command takes ``--json``."""
    parser = group.add_parser(name, help=help_text, description=help_text)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(run=run)
    return parser


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


def print_summary(summary: dict[str, Any], out: str) -> None:
    """A reconciliation's counts, actions and holds (``summary.json``), and where its
    reports are."""
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


class Progress:
    """A progress bar on stderr when it is a terminal; nothing otherwise."""

    def __init__(self, label: str, args: argparse.Namespace) -> None:
        self.label = label
        self.shown = sys.stderr.isatty() and not args.json
        self.last = 0.0

    def __enter__(self) -> Progress:
        return self

    def update(self, done: int, total: int) -> None:
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
