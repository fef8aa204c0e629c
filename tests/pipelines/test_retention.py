"""Retention in Dagster: the daily schedule launches the job ``retention``, which runs the
prune ``komeet-sync prune`` runs, and its run says what it deleted."""

from __future__ import annotations

import dagster as dg

from komeet_sync.store.database import open_database
from komeet_sync.store.results import ResultStore
from pipelines.definitions import defs
from tests.support import retention


def test_the_daily_schedule_s_job_deletes_and_says_what(database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("KOMEET_SYNC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KOMEET_SYNC_DATABASE_URL", database_url)
    engine = open_database(database_url)
    retention.build(engine, ResultStore.from_settings())
    schedule = defs.resolve_schedule_def("daily_retention")
    with dg.build_schedule_context() as context:
        [request] = schedule.evaluate_tick(context).run_requests or []
    assert schedule.job_name == "retention" and schedule.cron_schedule == "30 3 * * *"

    result = defs.resolve_job_def("retention").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), tags=request.tags
    )

    assert result.success
    [output] = [event for event in result.all_events if event.event_type_value == "STEP_OUTPUT"]
    metadata = {key: value.value for key, value in output.step_output_data.metadata.items()}
    assert metadata["retention_days"] == 90
    assert metadata["request_log_deleted"] == sum(retention.REQUESTS_DELETED.values())
    assert metadata["results_deleted"] == len(retention.SYNCS_DELETED)
    assert "| SCIM request log | globex.com | 3 rows |" in metadata["deleted"]
    assert retention.remaining(engine) == retention.ROWS_KEPT
    engine.dispose()
