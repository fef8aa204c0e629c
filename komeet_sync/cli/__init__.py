"""The ``komeet-sync`` command line: one module per command group, each parsing its
arguments, calling the core and printing what it returns.

Every command takes ``--json`` for machine-readable output. A mistake of the user's (a bad
value, a missing file, a domain configured twice) ends with one line saying what was wrong
and what to do, and a non-zero exit; never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO, cast

from komeet_sync import __version__
from komeet_sync.cli import (
    audit,
    domains,
    explain,
    google,
    plans,
    prune,
    scim,
    status,
    sync,
    worker,
)
from komeet_sync.cli.interrupt import Interrupts
from komeet_sync.cli.output import EXIT_ERROR, Parser, UserError, debug_option, fail


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    if not hasattr(args, "run"):
        parser.print_help()
        return EXIT_ERROR
    if sys.stdout is sys.__stdout__ and sys.stdout is not None:
        sys.stdout = ReaderGone.wrap(sys.stdout)
    with Interrupts() as interrupts:
        args.interrupts = interrupts
        try:
            code = int(args.run(args))
        except UserError as exc:
            code = fail(args, str(exc))
        except KeyboardInterrupt:
            print(file=sys.stderr)
            if interrupts.plan_id is None:
                print("komeet-sync: interrupted; nothing was sent to Komeet.", file=sys.stderr)
            else:
                print(
                    f"komeet-sync: stopped at once; the actions in flight may have no outcome "
                    f"yet. `komeet-sync apply {interrupts.plan_id}` settles them (it searches "
                    "Komeet before sending a create again) and sends the rest.",
                    file=sys.stderr,
                )
            return interrupts.exit_code  # what it recorded is sent by the next sender
        except Exception as exc:
            if args.debug:
                raise
            code = fail(
                args,
                f"unexpected error: {type(exc).__name__}: {str(exc).strip().splitlines()[0]} "
                "(run the command again with --debug for the traceback, and report it)"
                if str(exc).strip()
                else f"unexpected error: {type(exc).__name__} (run it again with --debug "
                "for the traceback, and report it)",
            )
        send_recorded_events()
        return code


# The longest a command waits, once done, to send the events it recorded; those left are
# sent by the next process that sends (Dagster's sensor, the worker, the endpoint).
SEND_WAIT = 20.0


def send_recorded_events() -> None:
    """Send the events this command recorded (a plan held, a sync failed, ...), and say on
    stderr what became of each; never fails the command."""
    events = sys.modules.get("komeet_sync.store.events")
    if events is None or not events.RECORDED.is_set():
        return
    from komeet_sync.notify.delivery import deliver_pending
    from komeet_sync.store.database import open_database

    events.RECORDED.clear()
    try:
        deliveries = deliver_pending(open_database(), deadline=time.monotonic() + SEND_WAIT)
    except KeyboardInterrupt:
        print("\nkomeet-sync: stopped sending notifications; they are sent later.", file=sys.stderr)
        return
    except Exception:  # the database went away: the events wait for the next sender
        return
    for delivery in deliveries:
        if delivery.nowhere:  # notifications are not set up: nothing to say
            continue
        print(f"Notified: {delivery.event.subject}: {delivery.outcome}", file=sys.stderr)


class ReaderGone:
    """stdout that, once its reader has gone (``| head -1``), drops what is still written
    instead of failing the command: the work goes on and the exit code stays the
    command's."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._gone = False

    @classmethod
    def wrap(cls, stream: TextIO) -> TextIO:
        return cast(TextIO, cls(stream))

    def write(self, text: str) -> int:
        if not self._gone:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._reader_left()
        return len(text)

    def flush(self) -> None:
        if not self._gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._reader_left()

    def _reader_left(self) -> None:
        self._gone = True
        # What is still buffered, and Python's own flush at exit, go nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), self._stream.fileno())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="komeet-sync",
        description="Keep Komeet accounts in step with each customer's directory.",
    )
    parser.add_argument("--version", action="version", version=f"komeet-sync {__version__}")
    debug_option(parser)
    commands = parser.add_subparsers(title="commands", parser_class=Parser)
    for group in (domains, audit, google, scim, sync, plans, status, explain, worker, prune):
        group.register(commands)
    for subparser in commands.choices.values():
        if "run" not in subparser._defaults:  # a group (`komeet-sync domains`): its own help
            subparser.set_defaults(run=_group_help(subparser), json=False, debug=False)
    return parser


def _group_help(parser: argparse.ArgumentParser) -> Any:
    def run(args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return EXIT_ERROR

    return run
