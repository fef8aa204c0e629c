"""Retry waits for the APIs the sync calls (Google's Directory API, Komeet's SCIM API):
capped exponential backoff with full jitter, so that many clients retrying after one outage
do not come back in step."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Backoff:
    """Before retry ``n`` (from 1), wait a random time up to ``min(cap, base * 2 ** (n - 1))``
    seconds; give up after ``attempts`` tries in all."""

    attempts: int = 6
    base: float = 1.0
    cap: float = 32.0

    def delay(self, retry: int, rng: random.Random) -> float:
        return rng.uniform(0.0, min(self.cap, self.base * 2 ** (retry - 1)))

    @classmethod
    def from_environment(
        cls, attempts_env: str, backoff_env: str, error: type[Exception]
    ) -> Backoff:
        """The attempts and the first wait's ceiling (seconds) from two environment
        variables, when set; a bad value raises ``error`` naming it."""
        default = cls()
        attempts = _setting(
            attempts_env, int, default.attempts, "a whole number from 1, like 6", error
        )
        base = _setting(backoff_env, float, default.base, "seconds, like 1 or 0.5", error)
        if attempts < 1 or base < 0:
            raise error(
                f"{attempts_env}={attempts} / {backoff_env}={base}: give at least 1 attempt "
                "and a wait of 0 seconds or more"
            )
        return cls(attempts=attempts, base=base, cap=default.cap)


def _setting(
    name: str, kind: Callable[[str], Any], default: Any, expected: str, error: type[Exception]
) -> Any:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return kind(value)
    except ValueError:
        raise error(f"{name}={value!r} is not {expected}") from None
