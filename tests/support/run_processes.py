"""Imported, for this alone, by the server that the run processes of
``celery_workers.run_workers`` fork from: the job's definition and snapshot are made there
once, instead of once in each run process."""

from tests.support.celery_workers import JOB

JOB.get_definition().get_job_snapshot_id()
