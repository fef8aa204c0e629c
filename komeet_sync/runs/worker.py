"""The incremental worker: IdP pushes reach Komeet in seconds (docs/incremental.md).

Every write the SCIM endpoint accepts records the people it touched (``scim_changes``, with
their keys before the write). The worker syncs, for each enabled SCIM domain, the people
changed since its cursor: it waits ``batch_wait`` after the first change so that changes
arriving together are decided together, reads only those people from staging and only the
Komeet accounts that could match them, decides with the same engine as a whole sync
(``runs.incremental.sync_people``) and applies through the ledger, then moves its cursor.

A domain's writes are paced to ``rate`` actions a second, so that an IdP re-sending
everything does not hammer Komeet (unchanged people send nothing anyway); a domain that
fails (Komeet unreachable) is retried with a growing pause, the others go on. A disabled
domain gets nothing: its changes wait for it to be enabled; a quarantined one's wait for its
release (``runs.quarantine``: a batch whose actions fail too much quarantines it too).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from komeet_sync.komeet.accounts import KomeetSide
from komeet_sync.komeet.client import KomeetClient, KomeetError
from komeet_sync.model.domain_config import DomainConfig, SourceKind
from komeet_sync.runs import alerts
from komeet_sync.runs.failures import recorded
from komeet_sync.runs.incremental import PeopleSync, sync_people
from komeet_sync.sources.scim.changes import advance, cursor, pending, read_changes
from komeet_sync.sources.scim.people import StagedPeople
from komeet_sync.store.domains import DomainStore
from komeet_sync.store.leases import Busy, holder_name

CONSUMER = "worker"
PAUSE_CAP = 60.0  # seconds: the longest pause of a domain whose batches keep failing
# A push waiting longer than this for the worker is told of (``alerts.worker_behind``): the
# latency target is seconds, and Dagster's safety net syncs the domain whole after a minute.
BEHIND = timedelta(minutes=5)


@dataclass(frozen=True)
class Options:
    batch_wait: float = 0.1  # seconds after a domain's first pending change
    rate: float = 50.0  # actions a second, per domain
    poll: float = 0.1  # seconds between looks at the change log when idle
    batch: int = 2_000  # changes decided together at most


@dataclass(frozen=True)
class Batch:
    """One domain's changes, decided and applied together."""

    domain: str
    changes: int
    first_seq: int
    last_seq: int
    sync: PeopleSync | None  # None: it failed, ``error`` says why
    error: str | None
    # Seconds from each change's acceptance by the endpoint (its 2xx) until the writes it
    # led to were acknowledged by Komeet and recorded in the ledger (empty: nothing sent).
    latencies: tuple[float, ...] = ()
    seconds: float = 0.0
    # Of ``seconds``, the wall time with a request to Komeet awaiting its answer (reads and
    # writes), and how many requests were sent: the rest is the worker's own.
    komeet_seconds: float = 0.0
    komeet_requests: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "changes": self.changes,
            "seq": [self.first_seq, self.last_seq],
            "seconds": round(self.seconds, 3),
            "komeet_seconds": round(self.komeet_seconds, 3),
            "komeet_requests": self.komeet_requests,
            "latencies": [round(value, 3) for value in self.latencies],
            "error": self.error,
            **(self.sync.summary() if self.sync is not None else {}),
        }


@dataclass
class _Pace:
    """When a domain may be worked on next, and how many of its batches failed in a row."""

    not_before: float = 0.0
    failures: int = 0


@dataclass
class Worker:
    engine: Engine
    client: KomeetClient
    options: Options = field(default_factory=Options)
    holder: str = field(default_factory=holder_name)
    stopping: threading.Event = field(default_factory=threading.Event)
    clock: Callable[[], float] = time.monotonic
    _paces: dict[str, _Pace] = field(default_factory=dict)

    def run(self, on_batch: Callable[[Batch], None] = lambda batch: None) -> None:
        """Work until ``stopping`` is set; each batch is told to ``on_batch``."""
        while not self.stopping.is_set():
            batches = self.run_once()
            for batch in batches:
                on_batch(batch)
            if not batches:
                self.stopping.wait(self.options.poll)

    def run_once(self, wait: bool = True) -> list[Batch]:
        """One batch of each enabled SCIM domain with changes pending and due, unless it is
        quarantined (``wait``: honour ``batch_wait`` and the domain's pace)."""
        due = pending(self.engine)
        if not due:
            return []
        configs = {config.domain: config for config in DomainStore(self.engine).list()}
        batches = []
        now = datetime.now(UTC)
        for domain, (waiting, oldest) in sorted(due.items(), key=lambda item: item[1][1]):
            config = configs.get(domain)
            if config is None or not config.enabled or config.source is not SourceKind.SCIM:
                continue
            if config.quarantine is not None:
                continue
            if now - oldest > BEHIND:
                alerts.worker_behind(
                    self.engine, domain, waiting, oldest, now, "The worker is working on them."
                )
            if self.stopping.is_set():
                break
            pace = self._paces.setdefault(domain, _Pace())
            if wait and self.clock() < pace.not_before:
                continue
            young = self.options.batch_wait - (now - oldest).total_seconds()
            if wait and young > 0:
                self.stopping.wait(young)
            batches.append(self._batch(config, pace))
        return batches

    def _batch(self, config: DomainConfig, pace: _Pace) -> Batch:
        started = self.clock()
        waited, requests = self.client.seconds_waited, self.client.requests_sent
        after = cursor(self.engine, config.domain, CONSUMER)
        changes = read_changes(self.engine, config.domain, after, self.options.batch)
        if not changes:
            return Batch(config.domain, 0, after, after, None, None)
        ids = sorted({change.resource_id for change in changes})
        keys = {tuple(key) for change in changes for key in change.keys}
        first, last = changes[0].seq, changes[-1].seq
        try:
            done = sync_people(
                config,
                self.engine,
                self.client,
                StagedPeople(self.engine, config),
                KomeetSide(self.client, config),
                ids=ids,
                keys=keys,  # type: ignore[arg-type]
                holder=self.holder,
                lease_wait=0.0,
            )
        except (Busy, KomeetError, OSError) as exc:
            pace.failures += 1
            pace.not_before = self.clock() + min(PAUSE_CAP, 2.0**pace.failures)
            error = str(exc)
            # Stopped (Ctrl-C, SIGTERM): a request cut short is no failure of the sync.
            if not isinstance(exc, Busy) and not self.stopping.is_set():
                recorded(self.engine, config.domain, f"worker {first}-{last}", CONSUMER, error)
            return Batch(config.domain, len(changes), first, last, None, error)
        acknowledged = datetime.now(UTC)
        result = done.applied.result if done.applied is not None else None
        if result is not None and result.interrupted:
            # Stopped mid-way: the changes stay pending, the next worker decides them again.
            return Batch(config.domain, len(changes), first, last, done, "stopped")
        stopped = done.applied.stopped if done.applied is not None else None
        if stopped is not None and stopped.quarantine is not None:
            # Quarantined since the domain was listed: the changes wait for its release.
            return Batch(config.domain, len(changes), first, last, done, str(stopped))
        advance(self.engine, config.domain, CONSUMER, last)
        pace.failures = 0
        sent = result.requests if result is not None else 0
        pace.not_before = self.clock() + sent / self.options.rate
        latencies = (
            tuple((acknowledged - change.accepted_at).total_seconds() for change in changes)
            if sent
            else ()
        )
        return Batch(
            config.domain,
            len(changes),
            first,
            last,
            done,
            None,
            latencies,
            self.clock() - started,
            self.client.seconds_waited - waited,
            self.client.requests_sent - requests,
        )
