"""Where a run's steps execute: one after the other in the run's process (the default), or
each on a pool of Celery workers (``KOMEET_SYNC_EXECUTOR=celery``; docs/scaling.md, "Runs on
Celery workers"). The choice is read from the environment when a run starts, in the process
that runs it, so one code location serves both deployments.

dagster-celery's loop waits for a step's result as long as it takes: a worker killed in the
middle of a step, or whose machine was lost, never answers, and its run would wait forever.
Here the run asks the worker that started each step whether it is alive (Celery's ping),
every ``ping_every_seconds``, and fails the step as lost when it has not answered for
``lost_after_seconds``: the failure names the step and the worker, and the next run of the
domain resumes from the ledger, which never repeats an action (ARCHITECTURE.md, "Applying a
plan"). Celery acknowledges a step's message when a worker starts it (``task_acks_late``
off), so a lost step is never run again by another worker behind the run's back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg
from celery import Celery
from celery.result import AsyncResult
from dagster._core.definitions.executor_definition import (
    ExecutorRequirement,
    multiple_process_executor_requirements,
)
from dagster._core.execution.retries import RetryMode
from dagster._core.executor.in_process import InProcessExecutor
from dagster._serdes import serialize_value
from dagster._utils.error import SerializableErrorInfo
from dagster_celery.core_execution_loop import core_celery_execution_loop
from dagster_celery.executor import CeleryExecutor, _submit_task
from dagster_celery.make_app import make_app

from komeet_sync import settings

# The Celery settings of the runs and of the workers alike (both build their app with
# ``celery_app``): Celery reads some on one side, some on the other.
CELERY_SETTINGS: dict[str, Any] = {
    # A worker records in the result backend that it started a step, and its name: the run
    # pings that worker.
    "task_track_started": True,
    # A step's message is acknowledged when a worker starts it: a step whose worker dies is
    # failed by its run, never started again by another worker.
    "task_acks_late": False,
    # A worker takes a step from the broker only when one of its processes is free to start
    # it (Redis only): no step waits in a busy worker while another is idle, nor dies
    # unstarted with its worker.
    "worker_prefetch_multiplier": 1,
    "worker_disable_prefetch": True,
    "broker_connection_retry_on_startup": True,
}
PING_EVERY_SECONDS = 5.0
LOST_AFTER_SECONDS = 30.0


def celery_app() -> Celery:
    """The Celery app on ``KOMEET_SYNC_CELERY_BROKER`` (broker and result backend), with
    dagster-celery's queue and ``CELERY_SETTINGS``."""
    return make_app(WatchedCeleryExecutor(LostWorkerWatch()).app_args())


@dataclass(frozen=True)
class LostWorkerWatch:
    """How a run watches the workers of its steps: a ping every ``ping_every`` seconds, each
    waiting at most a second for its answer; a step is lost when its worker has answered
    none for ``lost_after`` seconds."""

    ping_every: float = PING_EVERY_SECONDS
    lost_after: float = LOST_AFTER_SECONDS

    def __post_init__(self) -> None:
        if not 0 < self.ping_every < self.lost_after:
            raise ValueError(
                f"ping_every_seconds {self.ping_every!r} and lost_after_seconds "
                f"{self.lost_after!r}: give a ping interval above 0 and shorter than the time "
                f"after which a step is lost, like {PING_EVERY_SECONDS:g} and "
                f"{LOST_AFTER_SECONDS:g}"
            )

    @property
    def ping_timeout(self) -> float:
        return min(1.0, self.ping_every)


class WatchedStep:
    """A step's Celery result as dagster-celery's loop polls it (``ready``, ``get``,
    ``revoke``), which is also ready, as a failure, once the worker that started the step
    has stopped answering (``LostWorkerWatch``). A step still queued has no worker yet, and
    waits for one as long as it takes."""

    def __init__(
        self,
        step_key: str,
        result: AsyncResult,
        app: Celery,
        watch: LostWorkerWatch,
        failure: Callable[[str], list[str]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.step_key = step_key
        self.result = result
        self.app = app
        self.watch = watch
        self.failure = failure  # the serialized events that fail the step, from a message
        self.clock = clock
        self.worker: str | None = None
        self.lost: str | None = None
        self._answered = clock()
        self._next_ping = self._answered + watch.ping_every

    def ready(self) -> bool:
        if self.lost is not None or self.result.ready():
            return True
        now = self.clock()
        if now < self._next_ping:
            return False
        self._next_ping = now + self.watch.ping_every
        self.worker = self._started_by() or self.worker
        if self.worker is None or self._answers(self.worker):
            self._answered = self.clock()
            return False
        silent = self.clock() - self._answered
        if silent < self.watch.lost_after:
            return False
        self.lost = (
            f"Step {self.step_key!r} was lost: worker {self.worker} "
            f"stopped answering (no answer to a ping for {silent:.0f} s; limit "
            f"{self.watch.lost_after:g} s). It was killed, or its machine or its network "
            "was lost; the step failed, and the next run of the domain resumes from the ledger."
        )
        return True

    def get(self) -> list[str]:
        if self.lost is not None:
            return self.failure(self.lost)
        return self.result.get()

    def revoke(self) -> None:
        self.result.revoke()

    def _started_by(self) -> str | None:
        """The worker that started the step (``task_track_started``), or None while queued."""
        if self.result.state != "STARTED":
            return None
        info = self.result.info
        return info.get("hostname") if isinstance(info, dict) else None

    def _answers(self, worker: str) -> bool:
        return bool(self.app.control.ping(destination=[worker], timeout=self.watch.ping_timeout))


class WatchedCeleryExecutor(CeleryExecutor):
    """dagster-celery's executor on ``KOMEET_SYNC_CELERY_BROKER`` (broker and result
    backend), each step's result a ``WatchedStep``."""

    def __init__(self, watch: LostWorkerWatch, retries: RetryMode = RetryMode.ENABLED) -> None:
        broker = settings.celery_broker()
        super().__init__(
            retries=retries, broker=broker, backend=broker, config_source=CELERY_SETTINGS
        )
        self.watch = watch

    def execute(self, plan_context, execution_plan):
        def submit(app, context, step, queue, priority, known_state) -> WatchedStep:
            def failure(message: str) -> list[str]:
                error = SerializableErrorInfo(message, stack=[], cls_name="StepLost")
                event = self.log_failure_or_retry_event_after_error(
                    context.for_step(step), error, known_state
                )
                return [serialize_value(event)]

            result = _submit_task(app, context, step, queue, priority, known_state)
            return WatchedStep(step.key, result, app, self.watch, failure)

        return core_celery_execution_loop(plan_context, execution_plan, step_execution_fn=submit)


def _requirements(_config: Any) -> Sequence[ExecutorRequirement]:
    if settings.executor() == settings.CELERY:
        return multiple_process_executor_requirements()
    return []


@dg.executor(
    name="in_process_or_celery",
    config_schema={
        "ping_every_seconds": dg.Field(
            float,
            default_value=PING_EVERY_SECONDS,
            description="On Celery: how often the run pings each worker running its steps.",
        ),
        "lost_after_seconds": dg.Field(
            float,
            default_value=LOST_AFTER_SECONDS,
            description="On Celery: how long a worker may leave the pings unanswered before "
            "its step fails as lost.",
        ),
    },
    requirements=_requirements,
)
def steps_executor(init_context: dg.InitExecutorContext) -> dg.Executor:
    """The steps of a run in its own process, one after the other, or on Celery workers:
    ``KOMEET_SYNC_EXECUTOR`` decides, read when the run starts (module docstring)."""
    if settings.executor() == settings.IN_PROCESS:
        # A domain's steps are small and sequential: a process per step would cost more
        # in imports than the steps take.
        return InProcessExecutor(retries=RetryMode.ENABLED, marker_to_close=None)
    config = init_context.executor_config
    watch = LostWorkerWatch(config["ping_every_seconds"], config["lost_after_seconds"])
    return WatchedCeleryExecutor(watch)
