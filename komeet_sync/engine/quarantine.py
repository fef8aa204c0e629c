"""When a domain is quarantined (ARCHITECTURE.md, "Guards": too many failed actions in a
run, or failed runs in a row), modelled on Microsoft Entra ID's provisioning quarantine
("Application provisioning in quarantine status", Microsoft Learn): when most or all of the
calls made to the target system keep failing, the job is quarantined; Microsoft Graph's
``synchronizationQuarantine`` names the share of failed calls
(``EncounteredEscrowProportionThreshold``) and their number (``...BaseEscrowThreshold``)
among its reasons. Unlike Entra, which lifts it by itself once a cycle succeeds, only an
operator releases a domain here: nothing is written meanwhile, so nothing could succeed.

- An application of a plan quarantines its domain when more than ``FAILED_SHARE`` of the
  actions it attempted failed and at least ``LEAST_FAILED`` did: a few refusals in a small
  plan are a data problem to read in the plan's failures, not a broken Komeet.
- ``RUNS_IN_A_ROW`` failed runs in a row quarantine the domain. A run is one whole-domain
  sync (``komeet-sync sync`` or a Dagster run, and ``komeet-sync apply`` of its plan); it
  failed when its failure was recorded (it raised: ``store.failures``) or when its
  application failed (``application_failed``); it succeeded when an application of its
  plan did not fail. A plan held, a domain disabled or an application that sent nothing
  is neither: they neither count nor break the row. The incremental worker's batches and
  ``sync --person`` are not runs: a burst of pushes makes dozens of batches an hour, and
  each of their applications is judged by the share rule alone.

Pure: counts and outcomes in, decisions and words out.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

FAILED_SHARE = 0.4  # of the actions an application attempted
LEAST_FAILED = 10  # failed actions, at least, before the share counts
RUNS_IN_A_ROW = 5  # failed whole-domain runs in a row
TOP_CAUSES = 3  # causes named in the quarantine's event
ACTIONS_RULE = (
    f"more than {FAILED_SHARE:.0%} of the actions attempted failed, and at least {LEAST_FAILED}"
)
RUNS_RULE = f"{RUNS_IN_A_ROW} syncs failed in a row"


def too_many_failed(failed: int, attempted: int) -> bool:
    """Whether an application that attempted ``attempted`` actions (applied or failed), of
    which ``failed`` failed, quarantines its domain."""
    return failed >= LEAST_FAILED and failed > FAILED_SHARE * attempted


def application_failed(failed: int, attempted: int) -> bool:
    """Whether an application counts as a failed run: more than ``FAILED_SHARE`` of what it
    attempted failed, however few (9 failures of 9 do not quarantine, but fail the run)."""
    return failed > 0 and failed > FAILED_SHARE * attempted


def failed_in_a_row(outcomes: Iterable[bool]) -> int:
    """How many runs failed since the last one that succeeded, given each run's outcome
    (True: failed), newest first."""
    count = 0
    for failed in outcomes:
        if not failed:
            break
        count += 1
    return count


def actions_reason(failed: int, attempted: int, plan_id: str | None = None) -> str:
    """Why an application failed, in words (naming its plan, when given)."""
    share = failed / attempted if attempted else 0.0
    said = f"{failed:,} of {attempted:,} actions failed ({share:.0%})"
    return f"{said} applying {plan_id}" if plan_id else said


def runs_reason(count: int) -> str:
    """Why failed runs in a row quarantined their domain, in words."""
    return f"{count} syncs failed in a row"


def action_causes(failures: pd.DataFrame, limit: int = TOP_CAUSES) -> list[str]:
    """The commonest causes of an application's failed actions (the ledger's ``action``,
    ``http_status``, ``user_name`` and ``outcome``), most frequent first, each with its
    count and one example: the outcome's words name a person or an account, so failures
    of one kind are grouped by their action and HTTP status."""
    if failures.empty:
        return []
    kinds = failures.assign(http_status=failures["http_status"].fillna(0).astype(int))
    grouped = (
        kinds.groupby(["action", "http_status"], sort=False)
        .agg(
            failed=("action", "size"),
            user_name=("user_name", "first"),
            outcome=("outcome", "first"),
        )
        .sort_values("failed", ascending=False, kind="stable")
        .head(limit)
        .reset_index()
    )
    return [
        f"{row.failed:,} {row.action}: {row.outcome} (e.g. {row.user_name})"
        for row in grouped.itertuples(index=False)
    ]


def run_causes(messages: Iterable[str], limit: int = TOP_CAUSES) -> list[str]:
    """The commonest messages of failed runs, most frequent first, each with its count."""
    counted = pd.Series(list(messages), dtype="object").value_counts(sort=True)
    return [f"{count:,} run(s): {message}" for message, count in counted.head(limit).items()]
