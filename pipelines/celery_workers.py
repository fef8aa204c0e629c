"""The Celery workers that execute runs' steps when ``KOMEET_SYNC_EXECUTOR=celery``
(docs/scaling.md, "Runs on Celery workers"); on each machine of the pool::

    celery -A pipelines.celery_workers worker -n worker1@%h --concurrency 2 --loglevel INFO

A worker needs what a run's steps need (the code location's environment, the instance's
``DAGSTER_PG_URL``) and the broker, ``KOMEET_SYNC_CELERY_BROKER``.
"""

from dagster_celery.tasks import create_task

# Loaded once, before the worker forks its pool: every step finds the definitions imported.
from . import definitions  # noqa: F401
from .executors import celery_app

app = celery_app()
execute_plan = create_task(app)
