"""``komeet-sync google check | groups | authorize | revoke``: whether a Google domain can be
read and what its first sync would do, the Workspace's groups to choose from, and the OAuth
consent of its admin that lets Komeet read it without domain-wide delegation."""

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
    KOMEET,
    SECRET_KEY,
    Columns,
    Parser,
    UserError,
    command,
    configured,
    counted,
    fitted_table,
    komeet_client,
)

# How long `authorize` waits for the consent in the browser.
CONSENT_WAIT = 600.0


def register(commands) -> None:
    google = commands.add_parser("google", help="Google Workspace domains")
    group = google.add_subparsers(title="google commands", parser_class=Parser)
    check = command(
        group,
        "check",
        "authenticate as the domain's admin, count its users, resolve its selected groups, "
        "and say what its first sync would do: desired people, people in no selected group, "
        "invalid addresses, the accounts it would create and deactivate",
        _check,
        environment=DATABASE + GOOGLE + KOMEET + SECRET_KEY,
    )
    check.add_argument("domain")
    check.epilog = (
        "The accounts to create and deactivate are those of the plan a sync would make now "
        "(the same engine, guards included), from Komeet's accounts at KOMEET_SCIM_URL; "
        "without KOMEET_SCIM_URL they are not read. Nothing is stored or sent.\n\n"
        + (check.epilog or "")
    )
    groups = command(
        group,
        "groups",
        "list the Google Workspace's groups to choose from: name, email, direct members, "
        "users with nested groups, and how many of them a sync would select",
        _groups,
        environment=DATABASE + GOOGLE,
    )
    groups.add_argument("domain", help="a configured Google domain (its admin reads)")
    groups.add_argument(
        "--search",
        metavar="TEXT",
        help="groups whose name or email starts with TEXT (Google searches); TEXT with "
        "spaces: groups whose name or email holds it",
    )
    groups.add_argument(
        "--limit",
        type=_limit,
        default=50,
        metavar="N",
        help="show the first N groups by name (default 50; 0: all)",
    )
    groups.add_argument(
        "--no-counts",
        dest="counts",
        action="store_false",
        help="only the direct members Google lists with each group: one groups.list pass",
    )
    groups.epilog = (
        "The groups are read in one paged groups.list pass (200 a page). The users of each "
        "group shown, nested groups included, and how many of them a sync selecting it "
        "would select (active, valid email of the domain or its alias domains) are read for "
        f"at most {_counted_at_most()} groups shown: the domain's users once, then each "
        "group's members; more groups shown (--limit) show the direct members only.\n\n"
        + (groups.epilog or "")
    )
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
        "revoke the domain's consent at Google and remove it from the database; its syncs then use "
        "domain-wide delegation",
        _revoke,
        environment=DATABASE + GOOGLE_OAUTH,
    )
    revoke.add_argument("domain")
    revoke.add_argument(
        "--forget-only",
        action="store_true",
        help="remove the stored consent without revoking it at Google (when Google cannot "
        "be reached): the admin then removes it in their Google Account or Admin console",
    )


def _check(args: argparse.Namespace) -> int:
    from komeet_sync.sources.google.credentials import SCOPES, GoogleError
    from komeet_sync.sources.google.reader import reader_for

    store, config = _google_domain(args.domain)
    try:
        reader = reader_for(config, engine=store.engine)
    except GoogleError as exc:
        raise UserError(str(exc)) from None
    check = reader.check(config.domains, config.groups)
    first = _first_sync(store.engine, config, reader) if not check.problems else None
    if args.json:
        print(json.dumps(asdict(check) | {"first_sync": first}, indent=2))
        return EXIT_ERROR if check.problems else EXIT_OK
    print(f"Google Workspace of {check.domains[0]}, read as {check.subject}:")
    print(f"  {check.credential}")
    if check.users is not None:
        print(f"  scopes read: {', '.join(scope.rsplit('/', 1)[-1] for scope in SCOPES)}")
        print(f"  {check.users:,} users in {', '.join(check.domains)}")
        for group in check.groups:
            state = f"{group.members:,} users" if group.found else "NOT FOUND"
            print(f"  group {group.group}: {state}")
    print(f"  ({check.requests} requests)")
    if first is not None:
        _print_first_sync(first)
    if check.problems:
        print("Problems:", file=sys.stderr)
        for problem in check.problems:
            print(f"  - {problem}", file=sys.stderr)
        return EXIT_ERROR
    print("Everything needed to sync this domain is in place.")
    return EXIT_OK


def _counted_at_most() -> int:
    from komeet_sync.runs import COUNTED_AT_MOST

    return COUNTED_AT_MOST


def _limit(text: str) -> int:
    """An argparse type: ``--limit``'s number of groups, 0 for all."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is below 0 (0 shows every group)")
    return value


def _google_domain(domain: str):
    """A configured Google domain's store and configuration, or a UserError."""
    from komeet_sync.model.domain_config import SourceKind

    store, config = configured(domain)
    if config.source is not SourceKind.GOOGLE:
        raise UserError(
            f"{config.domain} syncs by SCIM: Entra ID or Okta pushes its users, so there is "
            "no Google Workspace to read"
        )
    return store, config


GROUP_COLUMNS: Columns = [
    ("name", 16),
    ("email", None),
    ("direct", None),
    ("users", None),
    ("desired", None),
]


def _groups(args: argparse.Namespace) -> int:
    from komeet_sync.runs.selection import list_groups
    from komeet_sync.sources.google.credentials import GoogleError
    from komeet_sync.sources.google.reader import reader_for

    store, config = _google_domain(args.domain)
    try:
        reader = reader_for(config, engine=store.engine)
        reader.authenticate()
        listing = list_groups(
            config,
            reader,
            search=args.search,
            limit=args.limit or None,
            counts=args.counts,
        )
    except GoogleError as exc:
        raise UserError(str(exc)) from None
    frame = listing.groups
    if args.json:
        print(
            json.dumps(
                {
                    "domain": config.domain,
                    "search": listing.search,
                    "searched_by": listing.searched_by,
                    "found": listing.found,
                    "shown": len(frame),
                    "counted": listing.counted,
                    "requests": listing.requests,
                    "groups": frame.to_dict("records"),
                },
                indent=2,
            )
        )
        return EXIT_OK
    what = f"matching {listing.search!r} " if listing.search else ""
    if frame.empty:
        print(f"No group {what}in the Google Workspace of {config.domain}.")
        return EXIT_OK
    selected = set(config.groups)
    table = frame.rename(columns={"direct_members": "direct", "members": "users"}).assign(
        email=lambda f: f["email"].where(~f["email"].str.lower().isin(selected), f["email"] + " *")
    )
    print(fitted_table(table, GROUP_COLUMNS))
    print()
    shown = (
        f"All {counted(listing.found, 'group')}"
        if len(frame) == listing.found
        else f"The first {len(frame):,} of {counted(listing.found, 'group')}"
    )
    print(f"{shown} {what}by name ({listing.requests} requests; * selected now).")
    if listing.counted:
        print(
            "users: nested groups included; desired: those a sync selecting the group would "
            "select (active, valid address of the domain)."
        )
    elif args.counts:
        print(
            f"Only direct members: users and desired are read for at most "
            f"{_counted_at_most()} groups shown (--limit, --search)."
        )
    return EXIT_OK


CHECK_ROWS = 10  # the first rows of each list ``google check`` prints


def _first_sync(engine, config, reader) -> dict[str, object]:
    """What the domain's next sync would do (``runs.selection.first_sync``), as JSON values:
    each selected group's counts, desired people, people in no selected group, invalid
    addresses, and the plan's creates and deactivations with its holds; without
    KOMEET_SCIM_URL, the directory's side only (``komeet``: why Komeet was not read)."""
    import os

    from komeet_sync.komeet.client import KomeetError
    from komeet_sync.runs.selection import first_sync
    from komeet_sync.sources.google.credentials import GoogleError

    if not os.environ.get("KOMEET_SCIM_URL"):
        client, unread = None, "KOMEET_SCIM_URL is not set: Komeet's accounts were not read"
    else:
        client, unread = komeet_client(), None
    try:
        decided, groups = first_sync(engine, config, client, reader)
    except (GoogleError, KomeetError) as exc:
        raise UserError(str(exc)) from None
    reports = decided.reports

    def first(name: str, columns: list[str], rows=None) -> dict[str, object]:
        frame = reports[name] if rows is None else rows
        head = frame[columns].head(CHECK_ROWS).astype(object)
        return {"count": len(frame), "first": head.where(head.notna(), None).to_dict("records")}

    errors = reports["errors"]
    invalid = errors[errors["error"].isin(INVALID_ERRORS)]
    plan = decided.plan
    found = {
        "groups": groups.to_dict("records"),
        "desired": decided.stats["desired"],
        "out_of_scope": first("out_of_scope", ["email", "org_unit"]),
        "invalid": first("errors", ["email", "error", "detail"], invalid),
        "komeet": unread,
    }
    if client is None:
        return found
    actions = plan.actions
    return found | {
        "komeet_accounts": decided.stats["komeet_accounts"],
        "create": _actions(actions, ("create", "reactivate")),
        "deactivate": _actions(actions, ("deactivate",)),
        "held": plan.held,
        "holds": [hold.as_dict() for hold in plan.holds],
    }


# The errors of people and members whose address keeps them from an account.
INVALID_ERRORS = ("invalid_email", "outside_domain", "missing_name", "member_not_found")


def _actions(actions, kinds: tuple[str, ...]) -> dict[str, object]:
    chosen = actions[actions["action"].isin(kinds)]
    head = chosen[["action", "email", "reason"]].head(CHECK_ROWS).astype(object)
    return {"count": len(chosen), "first": head.where(head.notna(), None).to_dict("records")}


def _print_first_sync(first: dict[str, object]) -> None:
    """``_first_sync`` in words, after the check's lines."""
    print("What a sync would do now:")
    for group in first["groups"]:  # type: ignore[attr-defined]
        print(
            f"  group {group['group']}: {counted(group['members'], 'user')} with nested "
            f"groups, {group['desired']:,} desired"
        )
    print(f"  {counted(first['desired'], 'desired person', 'desired people')}")  # type: ignore[arg-type]
    _print_rows(
        first["out_of_scope"],
        "active user in no selected group",
        "active users in no selected group",
        lambda row: f"{row['email']} ({row['org_unit'] or 'no org unit'})",
    )
    _print_rows(
        first["invalid"],
        "person with an invalid address or name",
        "people with an invalid address or name",
        lambda row: f"{row['email']}: {row['error']} ({row['detail']})",
    )
    if first.get("komeet"):
        print(f"  {first['komeet']}: run it with KOMEET_SCIM_URL to see the accounts")
        return
    print(f"  {counted(first['komeet_accounts'], 'Komeet account')} of the domain")  # type: ignore[arg-type]
    _print_rows(
        first["create"],
        "account to create",
        "accounts to create (or reactivate)",
        lambda row: f"{row['action']} {row['email']}",
    )
    _print_rows(
        first["deactivate"],
        "account to deactivate",
        "accounts to deactivate",
        lambda row: f"{row['email']}: {row['reason']}",
    )
    if first["held"]:
        print("  The plan would be HELD:")
        for hold in first["holds"]:  # type: ignore[attr-defined]
            print(f"    - {hold['guard']}: {hold['detail']}")
    else:
        print("  No guard would hold the plan.")


def _print_rows(found, one: str, many: str, line) -> None:
    count = found["count"]
    print(f"  {count:,} {one if count == 1 else many}" + (":" if count else ""))
    for row in found["first"]:
        print(f"    {line(row)}")
    if count > len(found["first"]):
        print(f"    ... and {count - len(found['first']):,} more")


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
