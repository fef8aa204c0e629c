"""``komeet-sync domains ...``: the domain configurations, one per email domain."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from tabulate import tabulate

from komeet_sync.cli.notify import destinations, event_lines, notify_change, notify_options
from komeet_sync.cli.output import (
    DATABASE,
    EXIT_OK,
    GOOGLE,
    KOMEET,
    NOTIFY,
    SCIM_RATE_LIMIT,
    SECRET_KEY,
    Parser,
    UserError,
    command,
    configured,
    counted,
    domain_store,
    print_config,
    quarantine_lines,
    sync_state,
)
from komeet_sync.cli.preview import not_saved, preview_options, previewed, refuse_yes_alone

if TYPE_CHECKING:
    from komeet_sync.sources.scim.rate_limit import RateLimit
    from komeet_sync.store.domains import Removal


def register(commands) -> None:
    domains = commands.add_parser("domains", help="manage domain configurations")
    group = domains.add_subparsers(title="domain commands", parser_class=Parser)
    add = command(group, "add", "configure a domain", _add, environment=DATABASE + GOOGLE + KOMEET)
    add.add_argument("domain", help="the customer's email domain, e.g. acme.com")
    add.add_argument("--source", required=True, choices=["google", "scim"])
    add.add_argument("--admin-email", help="Google: the super admin the delegation acts as")
    policy_options(add)
    add.add_argument("--disabled", action="store_true", help="add it disabled (no writes)")
    preview_options(add)
    command(group, "list", "list configured domains", _list)
    command(
        group,
        "show",
        "show one domain's configuration, its quarantine, where its events are told, and its "
        "recent failures and events",
        _show,
        environment=DATABASE + SCIM_RATE_LIMIT + NOTIFY,
    ).add_argument("domain")
    for name, help_text, run in (
        ("enable", "enable a domain's sync", _enable),
        ("disable", "disable a domain's sync: stops every write for it at once", _disable),
        (
            "release",
            "lift a domain's quarantine: its syncs write to Komeet again (README, 'Quarantine')",
            _release,
        ),
    ):
        command(group, name, help_text, run).add_argument("domain")
    change = command(
        group,
        "set",
        "change a domain's groups, alias domains, protected accounts, thresholds or SCIM rate "
        "limit in place: its SCIM secret, staged users and groups, plans and history are kept",
        _set,
        environment=DATABASE + GOOGLE + KOMEET,
    )
    change.epilog = (
        "Only the options given change anything, and the result is checked as 'domains add' "
        "checks a new domain. A list option (--group, --alias-domain, --protect) given "
        "replaces the whole list; --add-... and --remove-... change it item by item; "
        "--no-groups, --no-alias-domains and --no-protect empty it. --scim-rate-limit "
        "default gives a SCIM domain the default limit again.\n\n" + (change.epilog or "")
    )
    change.add_argument("domain")
    change_options(change)
    notify_options(change)
    preview_options(change)
    remove = command(
        group,
        "remove",
        "remove a domain's configuration, with its staged users and groups, secret, plans, "
        "ledger and failures; the files of its syncs are kept",
        _remove,
    )
    remove.add_argument("domain")
    remove.add_argument(
        "--yes", action="store_true", help="do not ask for confirmation (needed off a terminal)"
    )
    command(
        group,
        "reseal",
        "seal every stored secret (notification URLs, Google refresh tokens) again under the "
        "first key of KOMEET_SYNC_SECRET_KEY: the step of a key rotation before the old key "
        "is dropped",
        _reseal,
        environment=DATABASE + SECRET_KEY,
    )


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


# The lists ``domains set`` edits: DomainChange's field, the option of an item, its metavar,
# what an item is, and the option that empties the list with what that means.
_LISTS = (
    (
        "groups",
        "group",
        "GROUP",
        "a selected group: its email (Google) or displayName (SCIM)",
        ("--no-groups", "select no group: every user a SCIM IdP pushes is in scope (SCIM only)"),
    ),
    (
        "alias_domains",
        "alias-domain",
        "DOMAIN",
        "another domain of the same users",
        ("--no-alias-domains", "no alias domain"),
    ),
    (
        "protected",
        "protect",
        "EMAIL",
        "an account never deactivated",
        ("--no-protect", "protect no account"),
    ),
)


def change_options(parser: argparse.ArgumentParser) -> None:
    """What ``domains set`` changes: only what is given. A list option replaces the list,
    ``--add-...``/``--remove-...`` edit it, ``--no-...`` empties it."""
    for name, option, metavar, item, (clear, clear_help) in _LISTS:
        whole = parser.add_mutually_exclusive_group()
        whole.add_argument(
            f"--{option}",
            action="append",
            dest=name,
            metavar=metavar,
            help=f"{item}; repeat: replaces the whole list",
        )
        whole.add_argument(clear, action="store_true", dest=f"clear_{name}", help=clear_help)
        parser.add_argument(
            f"--add-{option}",
            action="append",
            default=[],
            dest=f"add_{name}",
            metavar=metavar,
            help="add one to the list; repeat",
        )
        parser.add_argument(
            f"--remove-{option}",
            action="append",
            default=[],
            dest=f"remove_{name}",
            metavar=metavar,
            help="remove one from the list (an error if it is not there); repeat",
        )
    parser.add_argument("--admin-email", help="Google: the super admin the delegation acts as")
    parser.add_argument(
        "--max-deactivations",
        type=int,
        metavar="N",
        help="deactivations a plan may carry without approval",
    )
    parser.add_argument(
        "--max-deactivation-share",
        type=float,
        metavar="SHARE",
        help="share of active managed accounts, and of directory shrink, a plan may reach "
        "without approval (0.2 means 20%%)",
    )
    parser.add_argument(
        "--scim-rate-limit",
        type=scim_rate_limit,
        metavar="N",
        help="SCIM: requests a second the domain's IdP may send, bursts of twice that; "
        "above it, 429 with Retry-After. 'default' for the default (50, or "
        "KOMEET_SYNC_SCIM_RATE_LIMIT)",
    )


def scim_rate_limit(text: str):
    """An argparse type: ``--scim-rate-limit``'s requests a second, or ``default``."""
    from komeet_sync.model.domain_config import (
        Default,
        InvalidConfiguration,
        requests_per_second,
    )

    if text.strip().lower() == Default.DEFAULT.value:
        return Default.DEFAULT
    try:
        return requests_per_second(text)
    except InvalidConfiguration as exc:
        raise argparse.ArgumentTypeError(f"{exc}, or 'default'") from None


def _change(args: argparse.Namespace):
    """The DomainChange that ``domains set``'s options ask for."""
    from komeet_sync.model.domain_config import DomainChange, ListEdit

    def edit(name: str) -> ListEdit:
        given = getattr(args, name)
        whole = () if getattr(args, f"clear_{name}") else given
        return ListEdit(
            replace=None if whole is None else tuple(whole),
            add=tuple(getattr(args, f"add_{name}")),
            remove=tuple(getattr(args, f"remove_{name}")),
        )

    return DomainChange(
        groups=edit("groups"),
        alias_domains=edit("alias_domains"),
        protected=edit("protected"),
        admin_email=args.admin_email,
        max_deactivations=args.max_deactivations,
        max_deactivation_share=args.max_deactivation_share,
        scim_rate_limit=args.scim_rate_limit,
    )


def _add(args: argparse.Namespace) -> int:
    from komeet_sync.cli.scim import print_credentials, public_url
    from komeet_sync.model.domain_config import DomainConfig, InvalidConfiguration, SourceKind
    from komeet_sync.store.domains import DomainConflict

    refuse_yes_alone(args)
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
        if args.preview:
            _refuse_configured(store, config.domain)
            save, shown = previewed(args, store.engine, None, config)
            if not save:
                return not_saved(args, shown)
        store.add(config)
    except (InvalidConfiguration, DomainConflict) as exc:
        raise UserError(str(exc)) from None
    if args.preview and args.json:
        print(json.dumps({"preview": shown, "saved": True} | config.as_dict(), indent=2))
        return EXIT_OK
    if config.source is SourceKind.SCIM:
        from komeet_sync.sources.scim.secret import issue_secret

        config, secret = issue_secret(store, config.domain)
        print_credentials(config, secret, args, f"Configured {config.domain} (scim).")
        return EXIT_OK
    _print_config(config, args, f"Configured {config.domain} ({config.source.value}).")
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    from komeet_sync.model.domain_names import display_domain

    configs = domain_store().list()
    if args.json:
        print(json.dumps([_with_quarantine(config) for config in configs], indent=2))
        return EXIT_OK
    if not configs:
        print("No domain is configured. Add one with 'komeet-sync domains add DOMAIN ...'.")
        return EXIT_OK
    rows = [
        (
            display_domain(c.domain),
            c.source.value,
            sync_state(c),
            ", ".join(c.groups) or "(all users)",
            ", ".join(display_domain(alias) for alias in c.alias_domains),
        )
        for c in configs
    ]
    print(tabulate(rows, headers=["domain", "source", "sync", "groups", "alias domains"]))
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    from komeet_sync.cli.scim import default_rate_limit
    from komeet_sync.model.domain_config import SourceKind
    from komeet_sync.sources.scim.rate_limit import rate_limit
    from komeet_sync.store.events import recent_events
    from komeet_sync.store.failures import recent_failures

    store, config = configured(args.domain)
    failures = recent_failures(store.engine, config.domain)
    notified, whose = destinations(store, config.domain)
    events = recent_events(store.engine, config.domain, limit=5)
    limit = None
    if config.source is SourceKind.SCIM:
        limit = rate_limit(config.scim_rate_limit, default_rate_limit())
    if args.json:
        recent = json.loads(failures.to_json(orient="records", date_format="iso"))
        effective = {"effective_scim_rate_limit": limit.as_dict()} if limit else {}
        print(
            json.dumps(
                _with_quarantine(config)
                | effective
                | {
                    "notify": notified,
                    "notify_from": whose,
                    "recent_failures": recent,
                    "recent_events": [event.as_dict() for event in events],
                },
                indent=2,
            )
        )
        return EXIT_OK
    _print_config(config, args, limit=limit)
    print(f"notify                  {', '.join(notified) or '(nowhere)'} ({whose})")
    if config.quarantine is not None:
        print()
        for line in quarantine_lines(config.quarantine):
            print(line)
    if events:
        print("\nRecent events (newest first):")
        for line in event_lines(events):
            print(line)
    if len(failures):
        print("\nRecent failed syncs (newest first):")
        for row in failures.itertuples(index=False):  # five at most
            first_line = str(row.message).strip().splitlines()[0]
            print(f"  {row.at:%Y-%m-%d %H:%M} UTC  run {str(row.run_id)[:8]}: {first_line}")
    return EXIT_OK


def _enable(args: argparse.Namespace) -> int:
    store, config = configured(args.domain)
    config = store.set_enabled(config.domain, True)
    _print_config(config, args, f"Sync enabled for {config.domain}.")
    return EXIT_OK


def _disable(args: argparse.Namespace) -> int:
    store, config = configured(args.domain)
    config = store.set_enabled(config.domain, False)
    _print_config(config, args, f"Sync disabled for {config.domain}: nothing is written for it.")
    return EXIT_OK


def _release(args: argparse.Namespace) -> int:
    from komeet_sync.runs.quarantine import release
    from komeet_sync.store.domains import NotQuarantined

    store, config = configured(args.domain)
    try:
        lifted = release(store.engine, config.domain)
    except NotQuarantined as exc:
        raise UserError(str(exc)) from None
    if args.json:
        print(json.dumps({"domain": lifted.domain, "released": lifted.as_dict()}, indent=2))
        return EXIT_OK
    print(
        f"Released {lifted.domain} from the quarantine it was in since "
        f"{lifted.since:%Y-%m-%d %H:%M} UTC ({lifted.reason}): its syncs write to Komeet "
        f"again; the next one applies its plan (`komeet-sync sync {lifted.domain}`)."
    )
    return EXIT_OK


def _reseal(args: argparse.Namespace) -> int:
    from komeet_sync.store.authorizations import AuthorizationStore
    from komeet_sync.store.sealed import SealError

    store = domain_store()
    try:
        urls = store.reseal_notify_urls()
        tokens = AuthorizationStore(store.engine).reseal()
    except SealError as exc:
        raise UserError(str(exc)) from None
    if args.json:
        print(json.dumps({"notification_urls": urls, "refresh_tokens": tokens}))
        return EXIT_OK
    print(
        f"Sealed again under the first key of KOMEET_SYNC_SECRET_KEY: the notification URLs "
        f"of {counted(urls, 'domain')} and {counted(tokens, 'Google refresh token')}; every "
        "stored secret is under it now, so the other keys may be dropped."
    )
    return EXIT_OK


def _with_quarantine(config) -> dict[str, object]:
    """A configuration as JSON values, with its quarantine (None: none)."""
    quarantine = config.quarantine.as_dict() if config.quarantine else None
    return config.as_dict() | {"quarantine": quarantine}


def _set(args: argparse.Namespace) -> int:
    from komeet_sync.model.domain_config import InvalidConfiguration, SourceKind
    from komeet_sync.model.domain_names import display_domain
    from komeet_sync.store.domains import DomainConflict

    refuse_yes_alone(args)
    change = _change(args)
    urls = notify_change(args)
    if change.empty and urls is None:
        raise UserError(
            f"nothing to change for {args.domain}: give what changes, for example "
            "--add-group GROUP or --max-deactivations N ('komeet-sync domains set --help')"
        )
    store, config = configured(args.domain)
    before = after = config
    if args.preview:
        if change.empty:
            raise UserError("--preview needs a change of the configuration to preview")
        try:
            proposed = config.changed(change)
        except InvalidConfiguration as exc:
            raise UserError(str(exc)) from None
        save, shown = previewed(args, store.engine, config, proposed)
        if not save:
            return not_saved(args, shown)
        if store.get(config.domain) != config:
            raise UserError(
                f"{config.domain}'s configuration changed while it was previewed: nothing "
                "saved; preview it again"
            )
    if not change.empty:
        try:
            before, after = store.update(config.domain, change)
        except (InvalidConfiguration, DomainConflict) as exc:
            raise UserError(str(exc)) from None
    if urls is not None:
        store.set_notify_urls(config.domain, urls)
    told = {}
    if urls is not None:
        notified, whose = destinations(store, config.domain)
        told = {"notify": notified, "notify_from": whose}
    if args.json:
        previewed_json = {"preview": shown, "saved": True} if args.preview else {}
        print(json.dumps(previewed_json | after.as_dict() | told, indent=2))
        return EXIT_OK
    name = display_domain(after.domain)
    if told:
        print(f"Events of {name} go to {', '.join(notified) or 'nowhere'} ({whose}).")
    differences = before.differences(after)
    if not differences:
        if not change.empty:
            print(f"Nothing {'else ' if told else ''}changed: {name} already has these settings.")
        return EXIT_OK
    kept = (
        "; its SCIM secret and the users and groups its IdP pushed are kept"
        if after.source is SourceKind.SCIM
        else ""
    )
    print(f"Changed the configuration of {name}{kept}:")
    rows = [
        (key, _shown(key, old), "->", _shown(key, new)) for key, (old, new) in differences.items()
    ]
    for line in tabulate(rows, tablefmt="plain").splitlines():
        print(f"  {line}")
    return EXIT_OK


def _remove(args: argparse.Namespace) -> int:
    from komeet_sync.model.domain_names import InvalidDomain, display_domain, normalise_domain
    from komeet_sync.store.results import ResultStore

    store, config = configured(args.domain)
    results = ResultStore.from_settings()
    name = display_domain(config.domain)
    if not args.yes:
        removal = store.removal(config.domain, results)
        if args.json or not sys.stdin.isatty():
            when = "with --json" if args.json else "when not run on a terminal"
            raise UserError(
                f"removing {config.domain} {when} needs --yes; it deletes {_deleted(removal)}"
            )
        print(f"Removing the configuration of {name} deletes from the database:")
        for line in _deleted_lines(removal):
            print(f"  - {line}")
        print(_kept(removal))
        answer = input(f"Remove the configuration of {name}? Type the domain: ").strip()
        try:
            confirmed = normalise_domain(answer) == config.domain
        except InvalidDomain:
            confirmed = False
        if not confirmed:
            raise UserError(f"not removed: {answer!r} is not {name}")
    removal = store.remove(config.domain, results)
    if args.json:
        print(json.dumps(config.as_dict() | removal.as_dict(), indent=2))
        return EXIT_OK
    print(f"Removed the configuration of {name}: deleted {_deleted(removal)}.")
    print(_kept(removal))
    return EXIT_OK


def _deleted_lines(removal: Removal) -> list[str]:
    """What a removal deletes, a line each, in words."""
    from komeet_sync.model.domain_config import SourceKind

    lines = []
    if removal.config.source is SourceKind.SCIM:
        lines.append(
            f"{counted(removal.staged_users, 'staged user')} and "
            f"{counted(removal.staged_groups, 'staged group')} its IdP pushed: if the domain is "
            "added again, its IdP must push them all again"
        )
        if removal.scim_secret:
            lines.append(
                "its SCIM secret: if the domain is added again, it gets a new one that its "
                "IdP must be given"
            )
    lines.append(
        f"{counted(removal.plans, 'plan')}, with their approvals and "
        f"{counted(removal.ledger_entries, 'ledger entry', 'ledger entries')}"
    )
    lines.append(counted(removal.failures, "recorded sync failure"))
    if removal.config.source is SourceKind.SCIM or removal.requests_logged:
        lines.append(f"{counted(removal.requests_logged, 'line')} of the SCIM request log")
    lines.append(
        "its configuration" + (" and alias domains" if removal.config.alias_domains else "")
    )
    return lines


def _deleted(removal: Removal) -> str:
    """What a removal deletes, in one phrase."""
    from komeet_sync.model.domain_config import SourceKind

    parts = []
    if removal.config.source is SourceKind.SCIM:
        parts += [
            counted(removal.staged_users, "staged user"),
            counted(removal.staged_groups, "staged group"),
        ]
        if removal.scim_secret:
            parts.append("its SCIM secret")
    parts += [
        counted(removal.plans, "plan"),
        counted(removal.ledger_entries, "ledger entry", "ledger entries"),
        counted(removal.failures, "recorded sync failure"),
    ]
    if removal.config.source is SourceKind.SCIM or removal.requests_logged:
        parts.append(f"{counted(removal.requests_logged, 'line')} of the SCIM request log")
    return ", ".join(parts)


def _kept(removal: Removal) -> str:
    if removal.syncs_folder is None or not removal.syncs_kept:
        return "No sync of it is stored in the result store."
    return (
        f"Kept: the results of its {counted(removal.syncs_kept, 'sync')}, in "
        f"{removal.syncs_folder} (remove that folder yourself once they are no longer needed)."
    )


def _shown(setting: str, value: object) -> str:
    """A setting's value in a line of ``domains set``'s changes."""
    from komeet_sync.model.domain_names import display_domain

    if setting == "alias_domains" and isinstance(value, list):
        value = [display_domain(name) for name in value]
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "(none)"
    if setting == "scim_rate_limit":
        from komeet_sync.sources.scim.rate_limit import RateLimit

        return "default" if not isinstance(value, int) else str(RateLimit(value))
    return "(none)" if value is None else str(value)


def _print_config(
    config, args: argparse.Namespace, headline: str | None = None, limit: RateLimit | None = None
) -> None:
    """A configuration as ``print_config`` shows it, with the Unicode form of each domain
    name beside its stored form (``xn--bcher-kva.example (bücher.example)``); a SCIM
    domain's rate limit as ``limit`` (``rate_limit.RateLimit``) says, else as set."""
    from komeet_sync.model.domain_names import display_domain

    if args.json:
        print_config(config, args)
        return
    if headline:
        print(headline)
    data = config.as_dict() | {
        "domain": display_domain(config.domain),
        "alias_domains": [display_domain(alias) for alias in config.alias_domains],
    }
    if "scim_rate_limit" in data:
        shown = _shown("scim_rate_limit", data["scim_rate_limit"])
        if limit is not None:
            shown = f"{limit} (the default)" if limit.is_default else str(limit)
        data["scim_rate_limit"] = shown
    rows = [
        (key, ", ".join(value) if isinstance(value, list) else value) for key, value in data.items()
    ]
    print(tabulate(rows, tablefmt="plain"))


def _refuse_configured(store, domain: str) -> None:
    """``add --preview`` of a domain already configured: nothing to add."""
    from komeet_sync.store.domains import UnknownDomain

    try:
        store.get(domain)
    except UnknownDomain:
        return
    raise UserError(
        f"{domain} is already configured; preview a change of it with "
        f"'komeet-sync domains set {domain} ... --preview'"
    )
