"""Notification URLs: Apprise's (https://github.com/caronc/apprise/wiki), such as
``mailto://user:password@smtp.example.com?to=it@acme.com``, ``slack://T1/B2/C3/#it``,
``msteams://...`` or ``json://hooks.example.com/komeet`` for a generic webhook.

A URL holds its service's token or password: it is shown with them masked (Apprise's
privacy form), stored sealed (``store.sealed``) and never logged.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import apprise

from komeet_sync import settings

SCHEMES_HELP = "https://github.com/caronc/apprise/wiki#notification-services"


class InvalidNotifyUrl(ValueError):
    """A URL Apprise cannot send to; the message names it, masked, and what to give."""


def checked(urls: tuple[str, ...], where: str = "--notify") -> tuple[str, ...]:
    """``urls``, each one Apprise can send to, without duplicates; InvalidNotifyUrl names
    the first that is not."""
    for url in urls:
        if apprise.Apprise.instantiate(url.strip()) is None:
            raise InvalidNotifyUrl(
                f"{where} {shown_unparsed(url)!r} is not a notification URL Apprise can send "
                f"to: give one like mailto://user:password@smtp.example.com?to=it@acme.com, "
                f"slack://TokenA/TokenB/TokenC or json://hooks.example.com/komeet (schemes: "
                f"{SCHEMES_HELP})"
            )
    return tuple(dict.fromkeys(url.strip() for url in urls))


# Options Apprise writes into every URL it shows, at their defaults: left out of what we print.
_DEFAULT_OPTIONS = frozenset({"overflow", "retry", "wait", "optional", "method", "cto", "rto"})


def masked(url: str) -> str:
    """``url`` with its password and tokens masked, as Apprise shows it, without the
    options Apprise adds at their defaults."""
    plugin = apprise.Apprise.instantiate(url)
    if plugin is None:
        return shown_unparsed(url)
    parts = urlsplit(plugin.url(privacy=True))
    kept = [(k, v) for k, v in parse_qsl(parts.query) if k not in _DEFAULT_OPTIONS]
    return urlunsplit(parts._replace(query=urlencode(kept, safe="@*:/")))


def shown_unparsed(url: str) -> str:
    """A URL Apprise cannot read, shown without what may be a password or token (a
    webhook's host or path may be one): its scheme only."""
    scheme, separator, _ = url.strip().partition("://")
    return f"{scheme[:20]}://…" if separator else "…"


def default_urls() -> tuple[str, ...]:
    """``KOMEET_SYNC_NOTIFY``'s URLs: those of every domain that has none of its own and
    of events of no domain; InvalidNotifyUrl names the first that cannot be used."""
    return checked(settings.default_notify_urls(), settings.NOTIFY_ENV)
