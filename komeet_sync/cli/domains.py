"""``komeet-sync domains ...``: the domain configurations, one per email domain."""

from __future__ import annotations

import argparse
import json
import sys

from tabulate import tabulate

from komeet_sync.cli.output import (
    EXIT_OK,
    Parser,
    UserError,
    command,
    configured,
    domain_store,
    print_config,
)


def register(commands) -> None:
    domains = commands.add_parser("domains", help="manage domain configurations")
    group = domains.add_subparsers(title="domain commands", parser_class=Parser)
    add = command(group, "add", "configure a domain", _add)
    add.add_argument("domain", help="the customer's email domain, e.g. acme.com")
    add.add_argument("--source", required=True, choices=["google", "scim"])
    add.add_argument("--admin-email", help="Google: the super admin the delegation acts as")
    policy_options(add)
    add.add_argument("--disabled", action="store_true", help="add it disabled (no writes)")
    command(group, "list", "list configured domains", _list)
    for name, help_text, run in (
        ("show", "show one domain's configuration", _show),
        ("enable", "enable a domain's sync", _enable),
        ("disable", "disable a domain's sync: stops every write for it at once", _disable),
    ):
        command(group, name, help_text, run).add_argument("domain")
    remove = command(group, "remove", "remove a domain's configuration", _remove)
    remove.add_argument("domain")
    remove.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def policy_options(parser: argparse.ArgumentParser) -> None:
    """What a domain's scope and guards are set with (``domains add`` and ``audit``)."""
    parser.add_argument(
        "--group",
        action="append",
        default=[],
        dest="groups",
        metavar="GROUP",
        help="a selected group: its email (Google) or displayName (SCIM); repeat",
    )
    parser.add_argument(
        "--alias-domain",
        action="append",
        default=[],
        dest="alias_domains",
        metavar="DOMAIN",
        help="another domain of the same users; repeat",
    )
    parser.add_argument(
        "--protect",
        action="append",
        default=[],
        dest="protected",
        metavar="EMAIL",
        help="an account never deactivated; repeat",
    )
    parser.add_argument(
        "--max-deactivations",
        type=int,
        metavar="N",
        default=500,
        help="deactivations a plan may carry without approval (default 500)",
    )
    parser.add_argument(
        "--max-deactivation-share",
        type=float,
        metavar="SHARE",
        default=0.2,
        help="share of active managed accounts, and of directory shrink, a "
        "plan may reach without approval (default 0.2)",
    )


def _add(args: argparse.Namespace) -> int:
    from komeet_sync.cli.scim import print_credentials, public_url
    from komeet_sync.model.domain_config import DomainConfig, InvalidConfiguration, SourceKind
    from komeet_sync.store.domains import DomainConflict

    if args.source == SourceKind.SCIM.value:
        public_url()  # checked before the domain is stored, since its SCIM URL is printed after
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
        store = domain_store()
        store.add(config)
    except (InvalidConfiguration, DomainConflict) as exc:
        raise UserError(str(exc)) from None
    if config.source is SourceKind.SCIM:
        from komeet_sync.sources.scim.secret import issue_secret

        config, secret = issue_secret(store, config.domain)
        print_credentials(config, secret, args, f"Configured {config.domain} (scim).")
        return EXIT_OK
    print_config(config, args, f"Configured {config.domain} ({config.source.value}).")
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    configs = domain_store().list()
    if args.json:
        print(json.dumps([config.as_dict() for config in configs], indent=2))
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


def _show(args: argparse.Namespace) -> int:
    from komeet_sync.store.failures import recent_failures

    store, config = configured(args.domain)
    failures = recent_failures(store.engine, config.domain)
    if args.json:
        recent = json.loads(failures.to_json(orient="records", date_format="iso"))
        print(json.dumps(config.as_dict() | {"recent_failures": recent}, indent=2))
        return EXIT_OK
    print_config(config, args)
    if len(failures):
        print("\nRecent failed syncs (newest first):")
        for row in failures.itertuples(index=False):  # five at most
            first_line = str(row.message).strip().splitlines()[0]
            print(f"  {row.at:%Y-%m-%d %H:%M} UTC  run {str(row.run_id)[:8]}: {first_line}")
    return EXIT_OK


def _enable(args: argparse.Namespace) -> int:
    store, config = configured(args.domain)
    config = store.set_enabled(config.domain, True)
    print_config(config, args, f"Sync enabled for {config.domain}.")
    return EXIT_OK


def _disable(args: argparse.Namespace) -> int:
    store, config = configured(args.domain)
    config = store.set_enabled(config.domain, False)
    print_config(config, args, f"Sync disabled for {config.domain}: nothing is written for it.")
    return EXIT_OK


def _remove(args: argparse.Namespace) -> int:
    store, config = configured(args.domain)
    if not args.yes:
        if not sys.stdin.isatty():
            raise UserError(f"removing {config.domain} needs --yes when not run on a terminal")
        answer = input(f"Remove the configuration of {config.domain}? Type the domain: ")
        if answer.strip().lower() != config.domain:
            raise UserError(f"not removed: {answer.strip()!r} is not {config.domain}")
    store.remove(config.domain)
    print_config(config, args, f"Removed the configuration of {config.domain}.")
    return EXIT_OK
