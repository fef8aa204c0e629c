"""Approving a held plan from the UI: the ``approve_plan`` job, which records the same
approval as ``komeet-sync plans approve``, and the launchpad link a held run's metadata
gives to it, prefilled with the plan's id. The next run of the domain applies the plan if
the directory and Komeet still give it (an approval belongs to a plan, by id)."""

from urllib.parse import quote

import dagster as dg

from komeet_sync import settings
from komeet_sync.store.plans import PlanError, PlanStore

from .partitions import domains
from .resources import DatabaseResource

JOB = "approve_plan"
OP = "approve"
# The code location the webserver names the definitions after (workspace.yaml).
LOCATION = "pipelines.definitions"
NAME_HINT = "your name"

APPROVALS = dg.AssetSpec(
    "approvals",
    partitions_def=domains,
    group_name="provisioning",
    description="The held plans admins approved, by domain: who, when, and the plan's summary "
    "(the approve_plan job, or komeet-sync plans approve).",
)


def launchpad_link(plan_id: str, location: str = LOCATION) -> str:
    """The launchpad of ``approve_plan``, its config filled in but for the approver's name."""
    config = (
        f"ops:\n  {OP}:\n    config:\n      plan_id: {plan_id}\n"
        f"      approved_by: ''  # {NAME_HINT}, as plans approve --by takes it\n"
    )
    base = settings.dagster_url()
    return (
        f"{base}/locations/__repository__@{quote(location)}/jobs/{JOB}/playground/setup"
        f"?config={quote(config)}"
    )


def location_of(run: dg.DagsterRun) -> str:
    """The code location a run was launched from (the UI's, a schedule's), else the
    workspace's (a run in process)."""
    origin = run.remote_job_origin
    if origin is None:
        return LOCATION
    return origin.repository_origin.code_location_origin.location_name


class PlanApproval(dg.Config):
    """The held plan an admin approves: its id (the held run's metadata, ``komeet-sync
    plans list``) and the admin's name."""

    plan_id: str
    approved_by: str


@dg.op(name=OP, out=dg.Out(dg.Nothing))
def approve(context: dg.OpExecutionContext, config: PlanApproval, database: DatabaseResource):
    """Record the approval, as ``komeet-sync plans approve PLAN_ID --by NAME`` does."""
    plans = PlanStore(database.engine())
    by = config.approved_by.strip()
    try:
        if not by or by.lower() == NAME_HINT:
            raise PlanError(f"approved_by is {config.approved_by!r}: give your own name")
        before = plans.get(config.plan_id.strip())
        plan = plans.approve(before.plan_id, by)
    except PlanError as exc:
        raise dg.Failure(description=f"{config.plan_id} was not approved: {exc}") from None
    first = before.approved_by is None
    said = f"{plan.plan_id} was already approved by {plan.approved_by}"
    if first:
        said = f"approved {plan.plan_id} as {plan.approved_by}"
    after = (
        f"The next sync of {plan.domain} applies it if the directory and Komeet still give "
        f"this plan (or `komeet-sync apply {plan.plan_id}` now)"
    )
    context.log.info(f"{said}. {after}")
    yield dg.AssetMaterialization(
        APPROVALS.key,
        partition=plan.domain,
        description=said,
        metadata={
            "plan_id": plan.plan_id,
            "domain": plan.domain,
            "approved_by": plan.approved_by or "",
            "approved_at": plan.approved_at.isoformat() if plan.approved_at else "",
            "held": dg.MetadataValue.md("\n".join(f"- {hold.detail}" for hold in plan.holds)),
            **{f"actions/{action}": count for action, count in plan.counts.items()},
            "next": after,
        },
    )
    yield dg.Output(None)


@dg.job(
    name=JOB,
    description="Approve a held plan by its id (as komeet-sync plans approve): the next sync of "
    "its domain applies it. A held run's metadata links here with the id filled in.",
)
def approve_plan() -> None:
    approve()
