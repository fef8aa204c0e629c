"""Where a domain's events are told (``domains set --notify``), and the events as ``status``
and ``domains show`` print them. A notification URL holds a token or a password: it is
printed masked, always."""

from __future__ import annotations

import argparse

from komeet_sync.cli.output import UserError


def notify_options(parser: argparse.ArgumentParser) -> None:
    whole = parser.add_mutually_exclusive_group()
    whole.add_argument(
        "--notify",
        action="append",
        metavar="URL",
        help="where the domain's events (a plan held, a sync failed, a quarantine, SCIM "
        "pushes refused, the worker behind) are sent: an Apprise URL such as "
        "mailto://user:password@smtp.example.com?to=it@acme.com, slack://TokenA/TokenB/TokenC "
        "or json://hooks.example.com/komeet; repeat: replaces the domain's list",
    )
    whole.add_argument(
        "--no-notify",
        action="store_true",
        help="no notification URL of its own: its events go to KOMEET_SYNC_NOTIFY's",
    )


def notify_change(args: argparse.Namespace) -> tuple[str, ...] | None:
    """The domain's new notification URLs, checked; None when they do not change."""
    from komeet_sync.notify.urls import InvalidNotifyUrl, checked

    if args.no_notify:
        return ()
    if args.notify is None:
        return None
    try:
        return checked(tuple(args.notify))
    except InvalidNotifyUrl as exc:
        raise UserError(str(exc)) from None


def destinations(store, domain: str) -> tuple[list[str], str]:
    """Where ``domain``'s events go, masked, and whose URLs they are (in words)."""
    from komeet_sync import settings
    from komeet_sync.notify.urls import InvalidNotifyUrl, default_urls, masked
    from komeet_sync.store.sealed import SealError

    try:
        own = store.notify_urls(domain)
        if own:
            return [masked(url) for url in own], "the domain's own"
        default = default_urls()
    except (SealError, InvalidNotifyUrl) as exc:
        raise UserError(str(exc)) from None
    if default:
        return [masked(url) for url in default], settings.NOTIFY_ENV
    return [], (
        f"none: set them with `komeet-sync domains set {domain} --notify URL` or "
        f"{settings.NOTIFY_ENV}"
    )


def event_lines(events) -> list[str]:
    """Events, a line each, newest first: when, what, and what became of telling it."""
    return [
        f"  {event.at:%Y-%m-%d %H:%M} UTC  {event.subject}  [{event.delivery or 'to send'}]"
        for event in events
    ]
