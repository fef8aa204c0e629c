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
from collections.abc import Sequence

from komeet_sync import __version__
from komeet_sync.cli import audit, domains, google, plans, scim, status, sync
from komeet_sync.cli.output import EXIT_ERROR, EXIT_OK, Parser, UserError, fail


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
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
        return fail(args, str(exc))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the output was piped to a reader that stopped (| head)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="komeet-sync",
        description="Keep Komeet accounts in step with each customer's directory.",
    )
    parser.add_argument("--version", action="version", version=f"komeet-sync {__version__}")
    commands = parser.add_subparsers(title="commands", parser_class=Parser)
    for group in (domains, audit, google, scim, sync, plans, status):
        group.register(commands)
    return parser
