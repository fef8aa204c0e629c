"""SCIM pushes refused above a rate are told of (README, "Notifications"): an IdP whose
requests keep being refused (a rotated secret not entered, a userName another user holds,
a body Komeet cannot read, its rate limit) fails its own provisioning quietly, and only
its admin's provisioning logs say so. Like Entra ID's quarantine e-mail, but at once.

Counted by the request log's writer in the endpoint's process, over the last WINDOW: at
THRESHOLD refusals a domain's event is recorded, at most once an hour, with the reasons
that came most often. A 404 is not a refusal (IdPs ask for users to learn they are gone).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from komeet_sync.store.events import Event, EventKind, record_event

WINDOW = timedelta(minutes=10)
THRESHOLD = 20
TOP_REASONS = 3
NOT_REFUSALS = frozenset({404})
# What an admin does about the most common refusals.
ADVICE = {
    401: "401: the IdP sends a secret that is not the domain's: enter the current one in "
    "its provisioning settings (`komeet-sync scim rotate-secret DOMAIN` issues a new one)",
    403: "403: the domain's sync is disabled in Komeet (`komeet-sync domains enable DOMAIN`)",
    409: "409: a value another user or group holds (a userName, an externalId): see "
    "`komeet-sync explain EMAIL`",
    429: "429: over the domain's rate limit: the IdP waits and sends again",
}


class RefusalWatch:
    """Each domain's refused requests over the last WINDOW, from the request log's rows."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._refused: dict[str, deque[tuple[datetime, int, str]]] = {}
        self._told: dict[str, str] = {}  # domain: the key of its last event

    def observe(self, rows: Iterable[dict[str, Any]]) -> list[Event]:
        """Count the refusals among ``rows`` (the request log's), and record the event of
        each domain at the refusal that reaches THRESHOLD (once an hour); the events
        recorded."""
        recorded = []
        for row in rows:
            domain, status = row.get("domain"), int(row["status"])
            if not domain or status < 400 or status in NOT_REFUSALS:
                continue
            refused = self._refused.setdefault(domain, deque())
            refused.append((row["at"], status, row.get("reason") or f"HTTP {status}"))
            while refused and refused[0][0] < row["at"] - WINDOW:
                refused.popleft()
            if len(refused) < THRESHOLD or self._told.get(domain) == _key(domain, row["at"]):
                continue
            event = self._event(domain)  # as of this refusal, however many the batch holds
            self._told[domain] = event.key
            if (kept := record_event(self.engine, event)) is not None:
                recorded.append(kept)
        return recorded

    def _event(self, domain: str) -> Event:
        refused = self._refused[domain]
        last = refused[-1][0]
        reasons = Counter((status, reason) for _, status, reason in refused)
        top = reasons.most_common(TOP_REASONS)
        advice = [
            ADVICE[status].replace("DOMAIN", domain)
            for status in dict.fromkeys(status for (status, _), _ in top)
            if status in ADVICE
        ]
        lines = [f"  {count:,} x {status}: {reason}" for (status, reason), count in top]
        return Event(
            kind=EventKind.PUSHES_REFUSED,
            domain=domain,
            key=_key(domain, last),
            subject=(
                f"{domain}: {len(refused):,} SCIM requests refused in "
                f"{WINDOW.total_seconds() / 60:.0f} minutes ({top[0][0][0]}: {top[0][0][1]})"
            ),
            body=(
                f"The SCIM endpoint refused {len(refused):,} of {domain}'s IdP's requests in "
                f"the {WINDOW.total_seconds() / 60:.0f} minutes to {last:%Y-%m-%d %H:%M:%S} "
                "UTC: what they asked for did not reach Komeet.\n\nThe reasons given most "
                "often:\n"
                + "\n".join(lines)
                + "\n\n"
                + "\n".join(advice)
                + ("\n\n" if advice else "")
                + "Each request is in the SCIM request log (the notebooks' "
                "`loader.scim_requests(domain)`).\n"
            ),
            details={
                "refused": len(refused),
                "reasons": [
                    {"status": status, "reason": reason, "count": count}
                    for (status, reason), count in top
                ],
            },
        )


def _key(domain: str, at: datetime) -> str:
    """The occurrence a refusal at ``at`` belongs to: its domain's, that hour."""
    return f"pushes refused {domain} {at:%Y-%m-%dT%H}"
