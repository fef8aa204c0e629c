"""A SCIM domain's request rate limit, so that one IdP cannot slow the others
(ARCHITECTURE.md, "Operations": each domain's IdP is rate-limited on its own).

A token bucket per domain: it holds up to ``burst`` requests (two seconds' worth) and
refills at ``per_second``; each authenticated request takes one, and a request that finds
none is answered 429 with ``Retry-After`` (RFC 6585 §4), the whole seconds until one is
back (RFC 9110 §10.2.3), at least 1. Nothing is taken by a request refused before: an
unknown domain, a wrong secret (so that no one without the secret can use up a domain's
requests) or a disabled domain. Entra ID suspends a job's requests for the time
``Retry-After`` says, then sends again; Okta retries after it too.

The default is 50 requests a second with bursts of 100: Microsoft asks a SCIM endpoint to
take at least 25 requests a second per tenant from Entra ID's provisioning service
("Develop and plan provisioning for a SCIM endpoint in Microsoft Entra ID", its gallery
onboarding checklist), so twice that is never in the way of an IdP that keeps to it.
``KOMEET_SYNC_SCIM_RATE_LIMIT`` changes the default, ``domains set --scim-rate-limit``
one domain's.

The buckets live in memory: no database write per request. The processes of one ``scim
serve --workers N`` share theirs (``SharedRateLimiter``, in shared memory), so a domain's
limit holds whichever of them its requests reach; several ``scim serve`` (on several
machines) each keep their own: behind M of them, a domain may send up to M times its limit.
"""

from __future__ import annotations

import ctypes
import hashlib
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from komeet_sync.model.domain_config import InvalidConfiguration, requests_per_second
from komeet_sync.settings import SettingError

DEFAULT_ENV = "KOMEET_SYNC_SCIM_RATE_LIMIT"
DEFAULT_PER_SECOND = 50
BURST_SECONDS = 2  # a full bucket holds two seconds' worth of requests


@dataclass(frozen=True)
class RateLimit:
    """Requests a second a domain's IdP may send, and how many at once after a pause."""

    per_second: int
    is_default: bool = False

    @property
    def burst(self) -> int:
        return BURST_SECONDS * self.per_second

    def __str__(self) -> str:
        requests = "requests" if self.per_second > 1 else "request"
        return f"{self.per_second} {requests}/s, bursts of {self.burst}"

    def as_dict(self) -> dict[str, object]:
        return {"per_second": self.per_second, "burst": self.burst, "default": self.is_default}


def default_per_second() -> int:
    """``KOMEET_SYNC_SCIM_RATE_LIMIT``, else 50; SettingError when it is not a whole number
    of requests a second that a domain could be given."""
    value = os.environ.get(DEFAULT_ENV, "").strip()
    if not value:
        return DEFAULT_PER_SECOND
    try:
        return requests_per_second(value)
    except InvalidConfiguration as exc:
        raise SettingError(f"{DEFAULT_ENV}={exc} (default {DEFAULT_PER_SECOND})") from None


def rate_limit(configured: int | None, default_per_second: int) -> RateLimit:
    """The limit of a domain whose configuration says ``configured`` (None: the default)."""
    if configured is None:
        return RateLimit(default_per_second, is_default=True)
    return RateLimit(configured)


class RateLimiter:
    """Every domain's bucket in this process, keyed by its configuration's domain. Safe
    from several threads: on PostgreSQL the endpoint checks requests in worker threads."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock: Any = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # domain: (requests left, when)

    def retry_after(self, domain: str, limit: RateLimit) -> int | None:
        """Take a request from ``domain``'s bucket: None when there was one; else the whole
        seconds, at least 1, until there is one again (nothing is taken)."""
        now = self.clock()
        with self._lock:
            left, then = self._bucket(domain, now) or (float(limit.burst), now)
            left = min(float(limit.burst), left + (now - then) * limit.per_second)
            if left >= 1:
                self._keep(domain, left - 1, now)
                return None
            self._keep(domain, left, now)
        return max(1, math.ceil((1 - left) / limit.per_second))

    def _bucket(self, domain: str, now: float) -> tuple[float, float] | None:
        """The domain's bucket, None when it has none (it is full); under the lock."""
        return self._buckets.get(domain)

    def _keep(self, domain: str, left: float, now: float) -> None:
        self._buckets[domain] = (left, now)


# Slots of the shared table: far more than the domains that send within BURST_SECONDS.
SHARED_SLOTS = 8192
PROBES = 64


class SharedBuckets:
    """The buckets of the processes of one ``scim serve``, in shared memory: an open
    addressing table of domain digests, each with its requests left and when. Made by the
    parent, given to each process as it is started."""

    def __init__(self, context: Any) -> None:
        self.keys = context.RawArray(ctypes.c_uint64, SHARED_SLOTS)
        self.values = context.RawArray(ctypes.c_double, 2 * SHARED_SLOTS)
        self.lock = context.Lock()


class SharedRateLimiter(RateLimiter):
    """A RateLimiter whose buckets are ``SharedBuckets``: every process of one ``scim
    serve`` takes from the same bucket of a domain. The clock is the system's monotonic
    clock, the same in every process.

    A slot unused for BURST_SECONDS holds a full bucket, whatever its domain's limit (a
    bucket refills its burst in that time), so it is free for another domain. A domain that
    finds no slot in PROBES tries (more than SHARED_SLOTS domains sending at once) is
    counted in this process alone."""

    def __init__(self, shared: SharedBuckets, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(clock)
        self.shared = shared
        self._lock = shared.lock
        self._slot = (-1, 0)

    def _bucket(self, domain: str, now: float) -> tuple[float, float] | None:
        key = int.from_bytes(hashlib.blake2b(domain.encode(), digest_size=8).digest()) or 1
        keys, values = self.shared.keys, self.shared.values
        self._slot = (-1, key)  # where _keep writes, under the same hold of the lock
        for probe in range(PROBES):
            slot = (key + probe) % SHARED_SLOTS
            if keys[slot] == key:
                self._slot = (slot, key)
                return values[2 * slot], values[2 * slot + 1]
            if self._slot[0] < 0 and (
                keys[slot] == 0 or now - values[2 * slot + 1] >= BURST_SECONDS
            ):
                self._slot = (slot, key)
            if keys[slot] == 0:  # never used: the domain is in none beyond
                break
        if self._slot[0] < 0:
            return super()._bucket(domain, now)
        return None

    def _keep(self, domain: str, left: float, now: float) -> None:
        slot, key = self._slot
        if slot < 0:
            super()._keep(domain, left, now)
            return
        self.shared.keys[slot] = key
        self.shared.values[2 * slot] = left
        self.shared.values[2 * slot + 1] = now
