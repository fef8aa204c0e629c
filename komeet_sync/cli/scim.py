"""``komeet-sync scim ...``: the endpoint Entra ID and Okta push to, and its secrets."""

from __future__ import annotations

import argparse
import json
import re
import signal
import socket
import sys
import threading
from datetime import timedelta

from komeet_sync.cli.output import (
    DATABASE,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    KOMEET,
    NOTIFY,
    PUBLIC_URL,
    SCIM_RATE_LIMIT,
    Columns,
    Parser,
    UserError,
    command,
    configured,
    domain_store,
    fitted_table,
    komeet_client,
)
from komeet_sync.cli.worker import print_batch, start_worker, worker_options


def register(commands) -> None:
    scim = commands.add_parser("scim", help="the SCIM endpoint Entra ID and Okta push to")
    group = scim.add_subparsers(title="scim commands", parser_class=Parser)
    serve = command(
        group,
        "serve",
        "serve every SCIM domain's endpoint",
        _serve,
        environment=DATABASE + PUBLIC_URL + SCIM_RATE_LIMIT + KOMEET + NOTIFY,
    )
    serve.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1")
    serve.add_argument("--port", type=int, default=8000, help="default 8000; 0: any free port")
    serve.add_argument(
        "--quiet", action="store_true", help="do not print a line on stderr for each request"
    )
    serve.add_argument(
        "--worker",
        action="store_true",
        help="also run `komeet-sync worker` in this process: each push reaches Komeet in "
        "seconds (reads KOMEET_SCIM_URL and KOMEET_SCIM_TOKEN)",
    )
    serve.add_argument(
        "--workers",
        type=workers,
        default=1,
        metavar="N",
        help="serve from N processes sharing the port, 1 to 64 (default 1); the database "
        "should then be PostgreSQL",
    )
    worker_options(serve)
    serve.epilog = (
        "Each request is one line on stderr (time, method, path, domain, status, duration;\n"
        "never a secret, a query string or a body) unless --quiet; with --workers, followed\n"
        "by the id of the process that answered it. With --json, one line on stdout says\n"
        'where it listens once it does: {"url", "host", "port", "public_url"}.\n\n'
        "--workers N: the port is bound once and N processes accept on it; --worker and the\n"
        "notifications run once, in the parent. A process that ends is replaced (a line on\n"
        "stderr says so). The processes count a domain's rate limit together (in shared\n"
        "memory). Secrets, disabling and rate limits are read at each request: a change\n"
        "reaches every process at once.\n\n"
        f"{serve.epilog}"
    )
    rotate = command(
        group,
        "rotate-secret",
        "make a new secret for a SCIM domain; the former one works until the overlap ends",
        _rotate_secret,
        environment=DATABASE + PUBLIC_URL,
    )
    rotate.add_argument("domain")
    rotate.add_argument(
        "--overlap",
        type=overlap,
        default=timedelta(hours=24),
        metavar="DURATION",
        help="how long the former secret keeps working, so that the IdP is not cut off before "
        "its admin enters the new one: 24h (default), 90m, 7d, 30s; 0 stops it at once",
    )
    check = command(
        group,
        "check",
        "list staged group memberships that name no resource of the group's domain",
        _check,
        exit_codes=(EXIT_OK, EXIT_ERROR, EXIT_INTERRUPTED),
        exit_meanings={
            EXIT_OK: "every staged membership names a resource of its group's domain",
            EXIT_ERROR: "some do not (listed), or an error",
        },
    )
    check.add_argument("domain", nargs="?", help="one SCIM domain (default: every one)")
    check.epilog = (
        "The endpoint refuses such members (400 invalidValue); rows an earlier version\n"
        "stored are listed here and kept: ask the IdP to push the group again (Entra ID:\n"
        "restart provisioning; Okta: push the group again), which replaces its members.\n\n"
        f"{check.epilog}"
    )


def public_url() -> str:
    """``KOMEET_SYNC_PUBLIC_URL``, checked: called before a secret is issued, so that a bad
    value never costs the only showing of a secret."""
    from komeet_sync import settings

    try:
        return settings.public_url()
    except settings.SettingError as exc:
        raise UserError(str(exc)) from None


def default_rate_limit() -> int:
    """``KOMEET_SYNC_SCIM_RATE_LIMIT``, checked, else the default: a SCIM domain's requests
    a second unless its configuration says."""
    from komeet_sync import settings
    from komeet_sync.sources.scim.rate_limit import default_per_second

    try:
        return default_per_second()
    except settings.SettingError as exc:
        raise UserError(str(exc)) from None


def print_credentials(config, secret: str, args: argparse.Namespace, headline: str) -> None:
    """A SCIM domain's URL and secret: the only time the secret is shown."""
    from komeet_sync.sources.scim.endpoint import scim_url

    url = scim_url(public_url(), config.domain)
    if args.json:
        print(json.dumps(config.as_dict() | {"scim_url": url, "secret": secret}, indent=2))
        return
    print(headline)
    print(f"  SCIM URL:   {url}")
    print(f"  Secret key: {secret}")
    print(
        "Enter both in Entra ID or Okta (Tenant URL / Base URL, and Secret Token / API token). "
        "The secret is shown only now; 'komeet-sync scim rotate-secret "
        f"{config.domain}' makes a new one."
    )


def _check(args: argparse.Namespace) -> int:
    from komeet_sync.sources.scim.checks import dangling_members

    domain = configured(args.domain)[1].domain if args.domain else None
    dangling = dangling_members(domain_store().engine, domain)
    if args.json:
        print(json.dumps([row.as_dict() for row in dangling], indent=2))
        return EXIT_ERROR if dangling else EXIT_OK
    where = domain or "any SCIM domain"
    if not dangling:
        print(f"Every staged group membership of {where} names a resource of its domain.")
        return EXIT_OK
    groups = len({(row.domain, row.group_id) for row in dangling})
    print(
        f"{len(dangling)} staged membership{'s' if len(dangling) != 1 else ''} of {groups} "
        f"group{'s' if groups != 1 else ''} name no resource of the group's domain. They are "
        "kept; pushing the group again from the IdP replaces its members."
    )
    import pandas as pd

    table = pd.DataFrame(
        {
            "domain": [row.domain for row in dangling],
            "group": [row.group_name or row.group_id for row in dangling],
            "member": [row.member_id for row in dangling],
            "why": [
                f"{row.reason} ({row.member_domain})" if row.member_domain else row.reason
                for row in dangling
            ],
        }
    )
    print(fitted_table(table, _CHECK_COLUMNS))
    return EXIT_ERROR


# Most important first, with their narrowest widths (``fitted_table``).
_CHECK_COLUMNS: Columns = [("domain", 12), ("group", 10), ("member", 32), ("why", 14)]


def _rotate_secret(args: argparse.Namespace) -> int:
    from komeet_sync.sources.scim.secret import issue_secret
    from komeet_sync.store.domains import UnknownDomain

    store, config = configured(args.domain)
    public_url()
    try:
        config, secret = issue_secret(store, config.domain, args.overlap)
    except UnknownDomain as exc:  # a Google domain has no secret
        raise UserError(str(exc)) from None
    until = store.secret_overlaps().get(config.domain)
    former = (
        f"the former one works until {until:%Y-%m-%d %H:%M:%S} UTC, then is refused"
        if until is not None
        else "the former one no longer works"
    )
    print_credentials(config, secret, args, f"New secret for {config.domain}: {former}.")
    if args.json:
        return EXIT_OK
    print("Update the IdP before then: `komeet-sync status` shows the overlap until it ends.")
    return EXIT_OK


def workers(text: str) -> int:
    """An argparse type: ``--workers``, 1 to 64 processes."""
    from komeet_sync.sources.scim.serving import worker_count

    try:
        return worker_count(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def overlap(text: str) -> timedelta:
    """An argparse type: a duration such as 24h, 90m, 7d or 30s (0: none), at most 30 days."""
    found = re.fullmatch(r"\s*(\d{1,9}(?:\.\d{1,6})?)\s*([smhd]?)\s*", text, re.IGNORECASE)
    seconds = -1.0
    if found is not None and (found[2] or float(found[1]) == 0):
        seconds = float(found[1]) * _UNITS[(found[2] or "s").lower()]
    if not 0 <= seconds <= 30 * 86400:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration of 0 to 30 days: give a number and a unit, "
            "s, m, h or d (24h, 90m, 7d), or 0"
        )
    return timedelta(seconds=seconds)


def _serve(args: argparse.Namespace) -> int:
    from komeet_sync.notify.delivery import Courier
    from komeet_sync.store.database import DatabaseUnavailable, open_database

    base = public_url()
    default_limit = default_rate_limit()
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
    worker = start_worker(args, engine, komeet_client()) if args.worker else None
    listening.listen(2048)  # connections wait from now on, until the server accepts them
    port = listening.getsockname()[1]  # the one the system chose for --port 0
    url = f"http://{f'[{args.host}]' if ':' in args.host else args.host}:{port}"
    if args.workers == 1:
        serving = _in_this_process(engine, listening, base, default_limit, args)
    else:
        serving = _in_processes(listening, base, default_limit, args)
    if args.json:
        where = {"url": url, "host": args.host, "port": port, "public_url": base}
        print(json.dumps(where), flush=True)
    else:
        processes = f" from {args.workers} processes" if args.workers > 1 else ""
        print(
            f"Serving SCIM on {url}/scim/DOMAIN/v2{processes} (public URL {base}; "
            f"{default_limit} requests/s a domain unless `domains set --scim-rate-limit` "
            "says); Ctrl-C stops.",
            flush=True,
        )
    working = None
    if worker is not None:
        working = threading.Thread(
            target=worker.run,
            args=(lambda batch: print_batch(batch, args.json),),
            name="worker",
            daemon=True,
        )
        working.start()
    courier = Courier(engine).start()  # the refused pushes it records, and others' events
    try:
        serving()
    except KeyboardInterrupt:
        pass
    finally:
        courier.close()
        if worker is not None and working is not None:
            worker.stopping.set()  # the writes in flight finish, nothing new is sent
            working.join()
        listening.close()
    if not args.json:
        print("Stopped.", flush=True)
    return EXIT_OK


def _in_this_process(engine, listening, base: str, default_limit: int, args):
    """Serve from this process (``--workers 1``): what ``_serve`` runs until stopped."""
    import uvicorn

    from komeet_sync.sources.scim.endpoint import ScimEndpoint
    from komeet_sync.sources.scim.serving import print_requests

    endpoint = ScimEndpoint(engine, base, default_limit)
    if not args.quiet:
        print_requests()
    # uvicorn stops gracefully on SIGINT or SIGTERM, then raises the signal again: either
    # is a normal stop.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(EXIT_OK))

    def serve() -> None:
        try:
            uvicorn.Server(uvicorn.Config(endpoint, log_level="warning")).run(sockets=[listening])
        finally:
            endpoint.close()

    return serve


def _in_processes(listening, base: str, default_limit: int, args):
    """Start ``--workers`` processes (``serving.EndpointProcesses``); what ``_serve`` runs
    until SIGTERM or Ctrl-C: replacing those that end."""
    from komeet_sync.sources.scim.serving import EndpointProcesses, ProcessOptions, ServingError

    options = ProcessOptions(base, default_limit, print_requests=not args.quiet)
    processes = EndpointProcesses(
        listening, options, args.workers, lambda line: print(line, file=sys.stderr, flush=True)
    )
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, lambda *_: processes.stop())
    try:
        processes.start()
    except ServingError as exc:
        listening.close()
        raise UserError(str(exc)) from None

    def serve() -> None:
        try:
            processes.supervise()
        except ServingError as exc:
            raise UserError(str(exc)) from None

    return serve
