"""The run tags that let the Runs page filter by what a sync is and what came of it:
``komeet/source`` and ``komeet/enabled`` (the domain's configuration as the run began),
``komeet/held`` (a guard held its plan: nothing was sent, the run did not fail) and
``komeet/plan`` (the plan it made)."""

from __future__ import annotations

import dagster as dg

from komeet_sync.model.domain_config import DomainConfig

SOURCE = "komeet/source"
ENABLED = "komeet/enabled"
HELD = "komeet/held"
PLAN = "komeet/plan"


def domain_tags(config: DomainConfig) -> dict[str, str]:
    """A domain's run tags: what its schedule and sensors launch with."""
    return {SOURCE: config.source.value, ENABLED: "true" if config.enabled else "false"}


def tag_run(context: dg.AssetExecutionContext, tags: dict[str, str]) -> None:
    """Add tags to the running run (one launched from the UI has none of them), or correct
    them; tags it already has with these values are left alone."""
    run = context.run
    missing = {key: value for key, value in tags.items() if run.tags.get(key) != value}
    if missing:
        context.instance.add_run_tags(run.run_id, missing)
