"""Quarantining a domain whose writes keep failing, and releasing it (ARCHITECTURE.md,
"Guards"; the rule and what a run is: ``engine.quarantine``).

A domain is judged after every application of a plan (``runs.sync.apply``, which every path
that writes goes through: ``sync``, ``apply``, the worker, ``sync --person``, the Dagster
asset ``results``) and after every recorded failure of a run (``runs.failures``: the CLI's,
and the Dagster run failure sensor's). A quarantine is recorded once: on the domain's
configuration (``DomainStore.quarantine``) and as a QUARANTINED event (``store.events``)
whose body says what happened, its commonest causes and the command that releases it.
Nothing here stops a write: ``komeet.apply.check_may_apply`` refuses every plan of a
quarantined domain, whoever applies it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine

from komeet_sync.engine.quarantine import (
    ACTIONS_RULE,
    RUNS_IN_A_ROW,
    RUNS_RULE,
    action_causes,
    actions_reason,
    failed_in_a_row,
    run_causes,
    runs_reason,
    too_many_failed,
)
from komeet_sync.komeet.apply import ApplyResult
from komeet_sync.model.domain_config import Quarantine
from komeet_sync.runs.alerts import recorded
from komeet_sync.store.domains import DomainStore
from komeet_sync.store.events import Event, EventKind
from komeet_sync.store.failures import latest_runs

# Failures recorded under these jobs are no whole-domain run (``engine.quarantine``): the
# incremental worker's batches (``runs.worker``) and ``komeet-sync sync --person``.
INCREMENTAL_JOBS = ("worker", "komeet-sync sync --person")


def after_application(engine: Engine, result: ApplyResult, whole: bool) -> Quarantine | None:
    """Quarantine the domain when too many of this application's actions failed, or when
    it ended ``RUNS_IN_A_ROW`` failed runs (``whole``: it applied a whole sync's plan);
    the quarantine, when the domain is quarantined now, else None."""
    attempted = result.applied + result.failed
    if too_many_failed(result.failed, attempted):
        return _quarantine(
            engine,
            result.domain,
            headline=actions_reason(result.failed, attempted),
            reason=actions_reason(result.failed, attempted, result.plan_id),
            rule=ACTIONS_RULE,
            causes=action_causes(result.failures),
            look=f"`komeet-sync plans show {result.plan_id} --failed` lists every failed action",
        )
    return after_run(engine, result.domain) if whole else None


def after_run(engine: Engine, domain: str) -> Quarantine | None:
    """Quarantine the domain when its latest ``RUNS_IN_A_ROW`` runs failed; the quarantine,
    when the domain is quarantined now, else None."""
    runs = latest_runs(engine, domain, RUNS_IN_A_ROW, INCREMENTAL_JOBS)
    count = failed_in_a_row(run.failed for run in runs)
    if count < RUNS_IN_A_ROW:
        return None
    reason = runs_reason(count)
    return _quarantine(
        engine,
        domain,
        headline=reason,
        reason=f"{reason}, the last at {runs[0].at:%Y-%m-%d %H:%M} UTC: {runs[0].cause}",
        rule=RUNS_RULE,
        causes=run_causes(run.cause for run in runs),
        look=f"`komeet-sync domains show {domain}` lists the failed syncs",
    )


def release(engine: Engine, domain: str) -> Quarantine:
    """Lift the domain's quarantine (``DomainStore.release``) and record a RELEASED event;
    the quarantine lifted. A release starts the count of failed runs afresh."""
    lifted = DomainStore(engine).release(domain)
    now = datetime.now(UTC)
    recorded(
        engine,
        Event(
            kind=EventKind.RELEASED,
            domain=lifted.domain,
            key=f"released {lifted.domain} {lifted.since.isoformat()}",
            subject=f"{lifted.domain} released from quarantine",
            body=(
                f"{lifted.domain}, quarantined since {lifted.since:%Y-%m-%d %H:%M} UTC "
                f"({lifted.reason}), was released at {now:%Y-%m-%d %H:%M} UTC: its syncs "
                "write to Komeet again. The next sync applies its plan "
                f"(`komeet-sync sync {lifted.domain}`)."
            ),
            details={"since": lifted.since.isoformat(), "reason": lifted.reason},
        ),
    )
    return lifted


def _quarantine(
    engine: Engine,
    domain: str,
    *,
    headline: str,
    reason: str,
    rule: str,
    causes: list[str],
    look: str,
) -> Quarantine | None:
    """Quarantine ``domain`` and record the event, unless it is quarantined already (that
    quarantine stands); the domain's quarantine."""
    store = DomainStore(engine)
    made = store.quarantine(domain, reason)
    if made is None:
        return store.get(domain).quarantine
    listed = "".join(f"\n  - {cause}" for cause in causes)
    recorded(
        engine,
        Event(
            kind=EventKind.QUARANTINED,
            domain=domain,
            key=f"quarantined {domain} {made.since.isoformat()}",
            subject=f"{domain} quarantined: {headline}",
            body=(
                f"komeet-sync quarantined {domain} at {made.since:%Y-%m-%d %H:%M} UTC: {reason} "
                f"(the rule: {rule}).\n\nCommonest causes:{listed}\n\n"
                f"Nothing is written to Komeet for {domain} until it is released; its syncs "
                f"still read, plan and write their reports. {look}. Fix the "
                f"cause, then release it:\n\n    {made.release}\n"
            ),
            details={"since": made.since.isoformat(), "reason": reason, "causes": causes},
        ),
    )
    return made
