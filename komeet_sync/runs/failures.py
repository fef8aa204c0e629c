"""A sync that fails is recorded, whoever ran it (ARCHITECTURE.md, "Operations": every
failure is visible in one status view).

A failed Dagster run is recorded by the run failure sensor (``pipelines.sensors``); a
``komeet-sync sync`` or ``apply`` that raises is recorded here, around ``runs.sync.sync``
and ``runs.sync.resume``. The Dagster assets call the steps, never those two, so no failure
is recorded twice. Both go through ``record_run_failure``, which quarantines the domain
when its runs keep failing (``runs.quarantine``).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from sqlalchemy import Engine

from komeet_sync.runs import alerts
from komeet_sync.runs.quarantine import INCREMENTAL_JOBS, after_run
from komeet_sync.store.domains import UnknownDomain
from komeet_sync.store.failures import record_failure

Run = TypeVar("Run", bound=Callable[..., Any])
DomainOf = Callable[[dict[str, Any]], str]

log = logging.getLogger(__name__)


def failure_recorded(domain_of: DomainOf) -> Callable[[Run], Run]:
    """Record the failure of a run that raises, then let the exception go on: its domain
    (``domain_of`` finds it in the call's arguments), a run id of its own, its ``trigger``
    argument as the job, and the first line of the message. The run takes its database as
    ``engine``.

    An interruption is not a failure: an apply the operator stopped returns its result,
    marked interrupted, and a second Ctrl-C is a KeyboardInterrupt, which is no Exception.
    Neither is a run whose domain
    cannot be found (``apply`` of a plan that does not exist: the user's mistake). A
    failure that cannot be recorded (the database is what failed) is logged, and the
    exception goes on."""

    def wrap(run: Run) -> Run:
        signature = inspect.signature(run)

        @functools.wraps(run)
        def recorded(*args: Any, **kwargs: Any) -> Any:
            try:
                return run(*args, **kwargs)
            except Exception as exc:
                call = signature.bind(*args, **kwargs)
                call.apply_defaults()
                _record(call.arguments, domain_of, exc)
                raise

        return cast(Run, recorded)

    return wrap


def _record(arguments: dict[str, Any], domain_of: DomainOf, exc: Exception) -> None:
    try:
        domain = domain_of(arguments)
    except Exception:
        return
    record(arguments["engine"], domain, arguments["trigger"], exc)


def record(engine: Engine, domain: str, job: str, exc: Exception) -> None:
    """Record that ``job`` failed for ``domain`` (also before it could start: a key file or
    Komeet's URL missing fails every scheduled sync alike); never raises."""
    lines = str(exc).strip().splitlines()
    recorded(engine, domain, uuid.uuid4().hex, job, lines[0] if lines else type(exc).__name__)


def recorded(engine: Engine, domain: str | None, run_id: str, job: str, message: str) -> None:
    """Record a failed run (of ``domain``, when it has one) and tell of it
    (``alerts.sync_failed``); never raises."""
    try:
        record_run_failure(engine, domain, run_id, job, message)
    except Exception:
        log.exception("could not record the failure of %s for %s: %s", job, domain, message)
    if domain is not None:
        alerts.sync_failed(engine, domain, job, run_id, message, datetime.now(UTC))


def record_run_failure(
    engine: Engine, domain: str | None, run_id: str, job: str, message: str
) -> None:
    """Record that run ``run_id`` of ``job`` failed for ``domain`` (None: a run of no
    domain), then quarantine the domain when that makes too many failed runs in a row
    (``runs.quarantine.after_run``; incremental jobs are no runs)."""
    record_failure(engine, domain, run_id, job, message)
    if domain is None or job.startswith(INCREMENTAL_JOBS):
        return
    with contextlib.suppress(UnknownDomain):  # removed meanwhile: nothing to quarantine
        after_run(engine, domain)
