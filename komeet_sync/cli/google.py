"""``komeet-sync google check``: whether a Google domain can be read."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from komeet_sync.cli.output import (
    DATABASE,
    EXIT_ERROR,
    EXIT_OK,
    GOOGLE,
    Parser,
    UserError,
    command,
    configured,
)


def register(commands) -> None:
    google = commands.add_parser("google", help="Google Workspace domains")
    group = google.add_subparsers(title="google commands", parser_class=Parser)
    check = command(
        group,
        "check",
        "authenticate as the domain's admin, count its users and resolve its selected groups",
        _check,
        environment=DATABASE + GOOGLE,
    )
    check.add_argument("domain")


def _check(args: argparse.Namespace) -> int:
    from komeet_sync.model.domain_config import SourceKind
    from komeet_sync.sources.google.credentials import SCOPES, GoogleError
    from komeet_sync.sources.google.reader import reader_for

    _, config = configured(args.domain)
    if config.source is not SourceKind.GOOGLE:
        raise UserError(
            f"{config.domain} syncs by SCIM: Entra ID or Okta pushes its users, so there is "
            "no Google Workspace to read"
        )
    try:
        reader = reader_for(config)
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
        print(f"  authorised for {', '.join(scope.rsplit('/', 1)[-1] for scope in SCOPES)}")
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
