"""Sending recorded events (README, "Notifications"): each to its domain's notification
URLs, else to ``KOMEET_SYNC_NOTIFY``'s, once.

Sending happens beside the work, never in it: a sync records its event (one INSERT) and
goes on; a ``Courier`` thread, or the CLI as a command ends, sends it. A receiver that is
down costs a try, not a sync: the event is tried again later, MOST_ATTEMPTS times at most,
and each outcome is kept with it, in words (``status`` shows them). One process sends an
event at a time (``store.events.claim``), so running the CLI, the worker and Dagster
together never sends one twice.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

import apprise
from sqlalchemy import Engine

from komeet_sync import settings
from komeet_sync.notify.urls import InvalidNotifyUrl, default_urls, masked
from komeet_sync.store import events as event_store
from komeet_sync.store.domains import DomainStore, UnknownDomain
from komeet_sync.store.events import Event
from komeet_sync.store.sealed import SealError

MOST_ATTEMPTS = 5
# Longer than Apprise's own timeouts for one URL (connect 4-15 s, read 4 s) times a few URLs.
CLAIM = timedelta(minutes=2)
NOWHERE = (
    "not sent: no notification URL; set one with `komeet-sync domains set {domain} --notify "
    f"URL` or {settings.NOTIFY_ENV}"
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    """What became of one event: ``outcome`` in words, ``settled`` when no try is left."""

    event: Event
    outcome: str
    settled: bool
    nowhere: bool = False  # no notification URL is set for it


def deliver_pending(engine: Engine, deadline: float | None = None) -> list[Delivery]:
    """Send every event whose sending has not ended, oldest first, until ``deadline``
    (``time.monotonic()``) if given. Never raises: an event that cannot be sent keeps the
    reason, and is tried again next time."""
    deliveries = []
    try:
        pending = event_store.undelivered(engine, MOST_ATTEMPTS)
    except Exception:
        log.exception("could not read the events to send")
        return []
    for event in pending:
        if deadline is not None and time.monotonic() >= deadline:
            break
        try:
            if not event_store.claim(engine, event, CLAIM):
                continue  # another process sends it
            delivery = _deliver(engine, event)
            event_store.record_delivery(engine, event.id or 0, delivery.outcome, delivery.settled)
        except Exception:
            log.exception("could not send the event %r", event.subject)
            continue
        deliveries.append(delivery)
    return deliveries


def recipients(engine: Engine, domain: str | None) -> tuple[str, ...]:
    """Where an event of ``domain`` goes: the domain's own URLs, else the default's."""
    if domain is not None:
        try:
            own = DomainStore(engine).notify_urls(domain)
        except UnknownDomain:
            own = ()
        if own:
            return own
    return default_urls()


def _deliver(engine: Engine, event: Event) -> Delivery:
    try:
        urls = recipients(engine, event.domain)
    except (SealError, InvalidNotifyUrl) as exc:
        return Delivery(event, f"not sent: {exc}", _last_try(event))
    if not urls:
        return Delivery(event, NOWHERE.format(domain=event.domain or "DOMAIN"), True, True)
    failures = [
        f"{masked(url)}: {problem}" for url in urls if (problem := send(url, event)) is not None
    ]
    sent = len(urls) - len(failures)
    if not failures:
        return Delivery(event, f"sent to {_listed(urls)}", True)
    outcome = f"sent to {sent} of {len(urls)}; " + "; ".join(failures)
    # Sent somewhere: not again, or those who got it would get it twice.
    return Delivery(event, outcome, sent > 0 or _last_try(event))


def send(url: str, event: Event) -> str | None:
    """Send ``event`` to one URL: None when it was, else why not, in a line."""
    notifier = apprise.Apprise()
    if not notifier.add(url):
        return "not a notification URL Apprise can send to"
    with apprise.LogCapture(level=logging.WARNING) as captured:
        sent = notifier.notify(
            title=event.title, body=event.body, body_format=apprise.NotifyFormat.TEXT
        )
    if sent:
        return None
    lines = [line.strip() for line in captured.getvalue().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "the service refused it"


def _last_try(event: Event) -> bool:
    return event.attempts + 1 >= MOST_ATTEMPTS


def _listed(urls: tuple[str, ...]) -> str:
    return ", ".join(masked(url) for url in urls)


class Courier:
    """Sends events from a thread of its own while a process works (``scim serve``, the
    worker): at once when this process records one, and every ``every`` seconds for those
    other processes record. ``close`` makes a last pass, waiting ``wait`` seconds at most."""

    def __init__(self, engine: Engine, every: float = 10.0) -> None:
        self.engine = engine
        self.every = every
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notifications", daemon=True)

    def start(self) -> Courier:
        self._thread.start()
        return self

    def close(self, wait: float = 15.0) -> None:
        self._stopping.set()
        event_store.RECORDED.set()
        self._thread.join(timeout=wait)

    def _run(self) -> None:
        while not self._stopping.is_set():
            event_store.RECORDED.clear()
            deliver_pending(self.engine)
            event_store.RECORDED.wait(self.every)
        deliver_pending(self.engine, deadline=time.monotonic() + 10)
