"""``komeet-sync google check | authorize | revoke``: whether a Google domain can be read, and
the OAuth consent of its admin that lets Komeet read it without domain-wide delegation."""

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
    GOOGLE_OAUTH,
    GOOGLE_RETRIES,
    SECRET_KEY,
    Parser,
    UserError,
    command,
    configured,
)

# How long `authorize` waits for the consent in the browser.
CONSENT_WAIT = 600.0


def register(commands) -> None:
    google = commands.add_parser("google", help="Google Workspace domains")
    group = google.add_subparsers(title="google commands", parser_class=Parser)
    check = command(
        group,
        "check",
        "authenticate as the domain's admin, count its users and resolve its selected groups",
        _check,
        environment=DATABASE + GOOGLE + SECRET_KEY,
    )
    check.add_argument("domain")
    authorize = command(
        group,
        "authorize",
        "a Workspace admin's consent (OAuth) to read the domain's directory, read-only; its "
        "syncs then read as that admin instead of by domain-wide delegation",
        _authorize,
        environment=DATABASE + GOOGLE_OAUTH + GOOGLE_RETRIES,
    )
    authorize.add_argument("domain")
    way = authorize.add_mutually_exclusive_group()
    way.add_argument(
        "--headless",
        action="store_true",
        help="on a machine without a browser: print the address to open on any machine, then "
        "read back the address the browser shows after the consent (it fails to load)",
    )
    way.add_argument(
        "--no-browser",
        action="store_true",
        help="print the address instead of opening a browser; the consent still comes back "
        "to this machine (a browser here, or one whose 127.0.0.1 is this machine's)",
    )
    authorize.add_argument(
        "--port", type=int, default=0, help="the loopback port of the redirect (default: any)"
    )
    revoke = command(
        group,
        "revoke",
        "revoke the domain's consent at Google and delete it; its syncs then use "
        "domain-wide delegation",
        _revoke,
        environment=DATABASE + GOOGLE_OAUTH,
    )
    revoke.add_argument("domain")
    revoke.add_argument(
        "--forget-only",
        action="store_true",
        help="delete the stored consent without revoking it at Google (when Google cannot "
        "be reached): the admin then removes it in their Google Account or Admin console",
    )


def _google_domain(domain: str):
    from komeet_sync.model.domain_config import SourceKind

    store, config = configured(domain)
    if config.source is not SourceKind.GOOGLE:
        raise UserError(
            f"{config.domain} syncs by SCIM: Entra ID or Okta pushes its users, so there is "
            "no Google Workspace to read"
        )
    return store, config


def _check(args: argparse.Namespace) -> int:
    from komeet_sync.sources.google.credentials import SCOPES, GoogleError
    from komeet_sync.sources.google.reader import reader_for

    store, config = _google_domain(args.domain)
    try:
        reader = reader_for(config, engine=store.engine)
    except GoogleError as exc:
        raise UserError(str(exc)) from None
    check = reader.check(config.domains, config.groups)
    if args.json:
        print(json.dumps(asdict(check), indent=2))
        return EXIT_ERROR if check.problems else EXIT_OK
    print(f"Google Workspace of {check.domains[0]}, read as {check.subject}:")
    print(f"  {check.credential}")
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


def _authorize(args: argparse.Namespace) -> int:
    from komeet_sync.sources.google.authorization import authorize
    from komeet_sync.sources.google.credentials import GoogleError
    from komeet_sync.sources.google.oauth import OAuthClient
    from komeet_sync.store.sealed import SealError, check_keys

    store, config = _google_domain(args.domain)
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port {args.port}: give a port from 1 to 65535, or 0 for any")
    try:
        check_keys(require_key=True)  # before the admin consents, not after
        client = OAuthClient.load()
    except (SealError, GoogleError) as exc:
        raise UserError(str(exc)) from None
    # The address goes to stderr with --json, so that stdout holds the JSON only.
    shown = sys.stderr if args.json else sys.stdout
    where = "on any machine with a browser" if args.headless else "in a browser on this machine"
    prompt = (
        f"Open this address {where}, sign in as an admin of {config.domain}'s Google "
        "Workspace and allow read-only access to its directory:\n{url}"
    )

    def read_line() -> str:
        print(
            "Then paste here the whole address the browser was sent to (the page fails to "
            "load; copy it from the address bar):",
            file=shown,
            flush=True,
        )
        return sys.stdin.readline()

    try:
        done = authorize(
            store.engine,
            config,
            client,
            prompt=prompt,
            announce=lambda text: print(text, file=shown, flush=True),
            read_line=read_line if args.headless else None,
            open_browser=not args.no_browser,
            port=args.port,
            timeout=CONSENT_WAIT,
        )
    except (GoogleError, SealError) as exc:
        raise UserError(str(exc)) from None
    granted = done.authorization
    if args.json:
        print(
            json.dumps(
                {
                    "domain": granted.domain,
                    "admin_email": granted.admin_email,
                    "client_id": granted.client_id,
                    "scopes": list(granted.scopes),
                    "granted_at": granted.granted_at.isoformat(),
                    "replaced": done.replaced.describe() if done.replaced else None,
                },
                indent=2,
            )
        )
        return EXIT_OK
    print(
        f"{granted.domain} is {granted.describe()} for "
        f"{', '.join(s.rsplit('/', 1)[-1] for s in granted.scopes)}: its syncs read Google "
        f"Workspace as {granted.admin_email} from now on."
    )
    if done.replaced is not None:
        print(f"It replaces the authorization {done.replaced.describe()}.")
    print(f"Check it: komeet-sync google check {granted.domain}")
    return EXIT_OK


def _revoke(args: argparse.Namespace) -> int:
    from komeet_sync.sources.google.authorization import revoke
    from komeet_sync.sources.google.credentials import GoogleError
    from komeet_sync.store.sealed import SealError

    store, config = _google_domain(args.domain)
    try:
        done = revoke(store.engine, config, forget_only=args.forget_only)
    except (GoogleError, SealError) as exc:
        raise UserError(str(exc)) from None
    if args.json:
        print(json.dumps(done.as_dict(), indent=2))
        return EXIT_OK
    print(done.describe())
    return EXIT_OK
