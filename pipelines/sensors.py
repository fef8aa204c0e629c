"""Sensors: the domain partitions kept in step with the configurations; a run for each
domain whose IdP's pushes no incremental worker synced; failures recorded where the CLI
shows them; the events recorded sent to the people they concern; quarantined and disabled
domains marked on the ``results`` asset as soon as they are."""

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dagster as dg

from komeet_sync.notify.delivery import deliver_pending
from komeet_sync.runs import alerts
from komeet_sync.runs.failures import recorded
from komeet_sync.sources.scim.changes import pending
from komeet_sync.store.domains import DomainStore

from . import tags
from .checks import domains_writing
from .jobs import sync_domain
from .partitions import domains
from .pools import prepare_pools
from .resources import DatabaseResource


@dg.sensor(minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def domain_partitions(
    context: dg.SensorEvaluationContext, database: DatabaseResource
) -> dg.SensorResult:
    """One partition per configured domain: added when a domain is configured, removed when
    its configuration is. The pools are made first, before any run of a domain claims them."""
    prepare_pools(context.instance)
    configured = {config.domain for config in DomainStore(database.engine()).list()}
    existing = set(context.instance.get_dynamic_partitions(domains.name))
    requests: list = []
    if configured - existing:
        requests.append(domains.build_add_request(sorted(configured - existing)))
    if existing - configured:
        requests.append(domains.build_delete_request(sorted(existing - configured)))
    return dg.SensorResult(dynamic_partitions_requests=requests)


# A push that no worker has synced within this long gets a whole sync of its domain.
WORKER_GRACE = timedelta(minutes=1)


@dg.sensor(
    job=sync_domain, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING
)
def scim_pushes(
    context: dg.SensorEvaluationContext, database: DatabaseResource
) -> Iterator[dg.RunRequest | dg.SkipReason]:
    """A whole sync of each enabled domain whose IdP's pushes no incremental worker has
    synced within WORKER_GRACE (docs/incremental.md): the safety net of a deployment whose
    worker is not running or has fallen behind. A whole sync that applies its plan takes
    those changes off the worker's list; one held keeps them, and its run key."""
    engine = database.engine()
    waiting = pending(engine)
    known = set(context.instance.get_dynamic_partitions(domains.name))
    enabled = {config.domain: config for config in DomainStore(engine).list() if config.enabled}
    overdue = datetime.now(UTC) - WORKER_GRACE
    launched = [
        (domain, count, oldest)
        for domain, (count, oldest) in sorted(waiting.items())
        if domain in known and domain in enabled and oldest < overdue
    ]
    alerts.workers_behind(
        engine,
        launched,
        datetime.now(UTC),
        "Dagster launched a whole sync of the domain to catch up (the scim_pushes sensor).",
    )
    for domain, _, oldest in launched:
        yield dg.RunRequest(
            partition_key=domain,
            run_key=f"scim-push-{domain}-{oldest.isoformat()}",
            tags=tags.domain_tags(enabled[domain]),
        )
    if not launched:
        yield dg.SkipReason(
            "no SCIM push waiting for more than a minute"
            + (
                f" ({len(waiting)} domain(s) with pushes the worker has yet to sync)"
                if waiting
                else ""
            )
        )


@dg.run_failure_sensor(default_status=dg.DefaultSensorStatus.RUNNING)
def sync_failures(context: dg.RunFailureSensorContext, database: DatabaseResource) -> None:
    """Record each failed run with its domain, for ``komeet-sync domains show`` and the
    notebooks; the domain is quarantined when its runs keep failing."""
    run = context.dagster_run
    steps = [
        f"{event.step_key}: {_cause(event.step_failure_data.error)}"
        for event in context.get_step_failure_events()
        if event.step_failure_data.error is not None
    ]
    recorded(
        database.engine(),
        run.tags.get("dagster/partition"),
        run.run_id,
        run.job_name,
        "; ".join(steps) or context.failure_event.message or "the run failed",
    )


def _cause(error) -> str:
    """The error at the root of a step's failure (Dagster wraps it), in one line."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip().splitlines()[0]


@dg.sensor(minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def notifications(context: dg.SensorEvaluationContext, database: DatabaseResource) -> dg.SkipReason:
    """Send the events recorded since (a plan held, a sync failed, a domain quarantined, ...)
    to each domain's notification URLs (README, "Notifications"), within 20 seconds; the
    rest wait for the next evaluation."""
    deliveries = deliver_pending(database.engine(), deadline=time.monotonic() + 20)
    if not deliveries:
        return dg.SkipReason("no event to send")
    for delivery in deliveries:
        context.log.info(f"{delivery.event.subject}: {delivery.outcome}")
    return dg.SkipReason(f"sent {len(deliveries)} event(s); their outcomes are in `status`")


@dg.sensor(minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def domain_states(
    context: dg.SensorEvaluationContext, database: DatabaseResource
) -> dg.SensorResult | dg.SkipReason:
    """Evaluate the ``every_domain_writes`` check on ``results`` when a domain is
    quarantined, released, disabled or enabled, whatever did it (the CLI, the worker, a
    sync): the catalog marks it within a minute, not at the domain's next run. The cursor
    is the domains that do not write, and why."""
    configs = DomainStore(database.engine()).list()
    result = domains_writing(configs)
    state = json.dumps(
        sorted(
            (config.domain, config.enabled, str(config.quarantine or ""))
            for config in configs
            if config.quarantine is not None or not config.enabled
        )
    )
    if state == context.cursor:
        return dg.SkipReason("no domain was quarantined, released, disabled or enabled")
    evaluation = dg.AssetCheckEvaluation(
        asset_key=result.asset_key,
        check_name=result.check_name,
        passed=result.passed,
        metadata=result.metadata,
        severity=result.severity,
    )
    return dg.SensorResult(asset_events=[evaluation], cursor=state)
