"""Sensors: the domain partitions kept in step with the configurations; a run for each
domain whose IdP pushed to the SCIM endpoint; failures recorded where the CLI shows them."""

from collections.abc import Iterator

import dagster as dg

from komeet_sync.sources.scim.pushes import pushed_domains
from komeet_sync.store.domains import DomainStore
from komeet_sync.store.failures import record_failure

from .jobs import sync_domain
from .partitions import domains
from .resources import DatabaseResource


@dg.sensor(minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def domain_partitions(
    context: dg.SensorEvaluationContext, database: DatabaseResource
) -> dg.SensorResult:
    """One partition per configured domain: added when a domain is configured, removed when
    its configuration is."""
    configured = {config.domain for config in DomainStore(database.engine()).list()}
    existing = set(context.instance.get_dynamic_partitions(domains.name))
    requests: list = []
    if configured - existing:
        requests.append(domains.build_add_request(sorted(configured - existing)))
    if existing - configured:
        requests.append(domains.build_delete_request(sorted(existing - configured)))
    return dg.SensorResult(dynamic_partitions_requests=requests)


@dg.sensor(
    job=sync_domain, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING
)
def scim_pushes(
    context: dg.SensorEvaluationContext, database: DatabaseResource
) -> Iterator[dg.RunRequest | dg.SkipReason]:
    """A sync of each enabled domain whose IdP pushed users or groups since the last tick
    (read from the SCIM request log), within a minute of the push."""
    after = int(context.cursor) if context.cursor else None
    pushed, last = pushed_domains(database.engine(), after)
    context.update_cursor(str(last))
    known = set(context.instance.get_dynamic_partitions(domains.name))
    store = DomainStore(database.engine())
    enabled = {config.domain for config in store.list() if config.enabled}
    launched = [domain for domain in pushed if domain in known and domain in enabled]
    for domain in launched:
        yield dg.RunRequest(partition_key=domain, run_key=f"scim-push-{domain}-{last}")
    if not launched:
        yield dg.SkipReason("no SCIM push since the last tick")


@dg.run_failure_sensor(default_status=dg.DefaultSensorStatus.RUNNING)
def sync_failures(context: dg.RunFailureSensorContext, database: DatabaseResource) -> None:
    """Record each failed run with its domain, for ``komeet-sync domains show`` and the
    notebooks."""
    run = context.dagster_run
    steps = [
        f"{event.step_key}: {_cause(event.step_failure_data.error)}"
        for event in context.get_step_failure_events()
        if event.step_failure_data.error is not None
    ]
    record_failure(
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
