"""Where a run's steps execute: ``KOMEET_SYNC_EXECUTOR`` read when a run starts, the
in-process executor by default, Celery on the broker of ``KOMEET_SYNC_CELERY_BROKER``; and
a step whose worker stopped answering fails as lost (tests/scenarios/test_celery.py runs
them on real workers)."""

from __future__ import annotations

import dagster as dg
import pytest
from celery import Celery
from dagster._core.executor.in_process import InProcessExecutor

from komeet_sync.settings import SettingError
from pipelines.definitions import defs
from pipelines.executors import LostWorkerWatch, WatchedCeleryExecutor, WatchedStep

REDIS = "redis://127.0.0.1:6399/0"


def executor_of_a_run(config: dict | None = None) -> dg.Executor:
    """The executor the definitions' job makes as a run starts, from its executor config."""
    job = defs.resolve_job_def("sync_domain")
    creation = job.executor_def.executor_creation_fn
    context = dg.InitExecutorContext(
        job=dg.reconstructable(_job),
        executor_def=job.executor_def,
        executor_config={"ping_every_seconds": 5.0, "lost_after_seconds": 30.0} | (config or {}),
        instance=dg.DagsterInstance.ephemeral(),
    )
    return creation(context)


def _job() -> dg.JobDefinition:
    return defs.resolve_job_def("sync_domain")


def test_a_run_executes_its_steps_in_its_own_process_by_default(monkeypatch):
    monkeypatch.delenv("KOMEET_SYNC_EXECUTOR", raising=False)

    assert isinstance(executor_of_a_run(), InProcessExecutor)
    assert defs.resolve_job_def("sync_domain").executor_def.get_requirements({}) == []


def test_celery_sends_steps_to_the_broker_named_by_the_environment(monkeypatch):
    monkeypatch.setenv("KOMEET_SYNC_EXECUTOR", "celery")
    monkeypatch.setenv("KOMEET_SYNC_CELERY_BROKER", REDIS)

    executor = executor_of_a_run({"ping_every_seconds": 0.5, "lost_after_seconds": 3.0})

    assert isinstance(executor, WatchedCeleryExecutor)
    assert (executor.broker, executor.backend) == (REDIS, REDIS)
    assert executor.watch == LostWorkerWatch(0.5, 3.0)
    assert executor.config_source.task_track_started is True
    assert defs.resolve_job_def("sync_domain").executor_def.get_requirements({})


@pytest.mark.parametrize(
    ("broker", "said"),
    [
        (None, "KOMEET_SYNC_CELERY_BROKER is not set"),
        ("amqp://user:hunter2@rabbit//", "is not a Redis URL (its scheme is 'amqp')"),
        ("127.0.0.1:6379", "is not a Redis URL (it has no scheme)"),
    ],
)
def test_celery_without_a_redis_broker_is_refused_naming_the_variable(monkeypatch, broker, said):
    monkeypatch.setenv("KOMEET_SYNC_EXECUTOR", "celery")
    if broker is None:
        monkeypatch.delenv("KOMEET_SYNC_CELERY_BROKER", raising=False)
    else:
        monkeypatch.setenv("KOMEET_SYNC_CELERY_BROKER", broker)

    with pytest.raises(SettingError) as refused:
        executor_of_a_run()

    assert said in str(refused.value)
    assert "KOMEET_SYNC_EXECUTOR=celery needs" in str(refused.value)
    assert "hunter2" not in str(refused.value)


def test_an_unknown_executor_is_refused_naming_the_variable(monkeypatch):
    monkeypatch.setenv("KOMEET_SYNC_EXECUTOR", "kubernetes")

    with pytest.raises(SettingError, match="KOMEET_SYNC_EXECUTOR='kubernetes' is not"):
        executor_of_a_run()


def test_a_ping_interval_not_shorter_than_the_loss_is_refused():
    with pytest.raises(ValueError, match=r"ping_every_seconds 30\.0 and lost_after_seconds 30\.0"):
        LostWorkerWatch(30.0, 30.0)


class Result:
    """A Celery result as a worker leaves it: queued, then started by a worker."""

    id = "task-1"

    def __init__(self) -> None:
        self.state = "PENDING"
        self.info: object = None

    def ready(self) -> bool:
        return False


class Control:
    """Celery's control API, answering the pings of the workers that are alive."""

    def __init__(self) -> None:
        self.alive = {"worker1@host"}
        self.pinged: list[str] = []

    def ping(self, destination: list[str], timeout: float) -> list[dict]:
        self.pinged += destination
        return [{name: {"ok": "pong"}} for name in destination if name in self.alive]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def watched() -> tuple[WatchedStep, Result, Control, Clock]:
    result, control, clock = Result(), Control(), Clock()
    app = Celery("test")
    app.control = control  # type: ignore[misc]
    step = WatchedStep(
        "results", result, app, LostWorkerWatch(1.0, 5.0), lambda message: [message], clock
    )
    return step, result, control, clock


def test_a_step_whose_worker_stops_answering_fails_as_lost_after_the_limit():
    step, result, control, clock = watched()
    result.state, result.info = "STARTED", {"hostname": "worker1@host", "pid": 42}
    clock.now = 1.0
    assert not step.ready()  # answered
    control.alive.clear()
    for now in (2.0, 3.0, 4.0, 5.0):
        clock.now = now
        assert not step.ready()
    clock.now = 6.0

    assert step.ready()
    [message] = step.get()
    assert message.startswith("Step 'results' was lost: worker worker1@host stopped answering")
    assert "for 5 s" in message
    assert control.pinged == ["worker1@host"] * 6


def test_a_queued_step_waits_for_a_worker_without_a_ping():
    step, result, control, clock = watched()
    for now in range(1, 20):
        clock.now = float(now)
        assert not step.ready()
    assert control.pinged == []
    result.state, result.info = "STARTED", {"hostname": "worker1@host", "pid": 42}
    control.alive.clear()
    clock.now = 22.0
    assert not step.ready()  # the five seconds count from its start, not from its submission
