"""Celery workers started as the documented command starts them
(``celery -A pipelines.celery_workers worker``), each as a "machine" of its own: its own
process group, working directory, ``KOMEET_SYNC_HOME`` and ``DAGSTER_HOME``, sharing only
what docs/scaling.md says the machines share (PostgreSQL, the result store, the broker);
and the processes that orchestrate runs whose steps go to them."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import forkserver
from pathlib import Path

import dagster as dg
from celery import Celery
from dagster._core.definitions.reconstruct import ReconstructableRepository

from tests.support import ROOT

CELERY = Path(sys.executable).with_name("celery")


@dataclass
class CeleryWorker:
    name: str  # the worker's node name, NAME@HOST, as Celery and the run events show it
    process: subprocess.Popen
    folder: Path

    @property
    def log(self) -> Path:
        return self.folder / "worker.log"

    def kill(self) -> None:
        """SIGKILL the worker and its pool's processes (its whole process group), as when
        its machine is lost."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


def stop_workers(workers: list[CeleryWorker]) -> None:
    """SIGTERM every worker still running, at once; SIGKILL those not gone within 5 s."""
    running = [worker for worker in workers if worker.process.poll() is None]
    for worker in running:
        os.killpg(worker.process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    for worker in running:
        try:
            worker.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.kill()


def start_workers(
    names: list[str], root: Path, env: dict[str, str], instance_yaml: Path
) -> list[CeleryWorker]:
    """Start a worker of 2 processes per name, in ``root/NAME``, with ``env`` added to this
    process's environment (``answering`` waits until they take steps)."""
    host = socket.gethostname()
    workers = []
    for name in names:
        folder = root / name
        (folder / "dagster_home").mkdir(parents=True)
        shutil.copy(instance_yaml, folder / "dagster_home" / "dagster.yaml")
        command = [str(CELERY), "-A", "pipelines.celery_workers", "worker", "-n",
                   f"{name}@%h", "--concurrency", "2", "--loglevel", "INFO"]  # fmt: skip
        process = subprocess.Popen(
            command,
            cwd=folder,
            env=os.environ
            | env
            | {
                "PYTHONPATH": str(ROOT),
                "KOMEET_SYNC_HOME": str(folder / "home"),
                "DAGSTER_HOME": str(folder / "dagster_home"),
            },
            stdout=(folder / "worker.log").open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        workers.append(CeleryWorker(f"{name}@{host}", process, folder))
    return workers


def answering(app: Celery, workers: list[CeleryWorker]) -> None:
    """Return once each worker answers Celery's ping."""
    deadline = time.monotonic() + 180
    waiting = {worker.name for worker in workers}
    while waiting:
        for worker in workers:
            if worker.process.poll() is not None:
                raise RuntimeError(f"worker {worker.name} exited: {worker.log.read_text()[-3000:]}")
        for answer in app.control.ping(destination=sorted(waiting), timeout=0.5):
            waiting -= set(answer)
        if time.monotonic() > deadline:
            raise RuntimeError(f"workers {sorted(waiting)} did not answer within 180 s")


# The job as the run worker of a deployment loads it (workspace.yaml's module).
JOB = ReconstructableRepository.for_module(
    "pipelines.definitions", "defs", working_directory=str(ROOT)
).get_reconstructable_job("sync_domain")


def execute(dagster_home: str, domain: str, run_config: dict | None = None) -> tuple[str, bool]:
    """One run of the domain's partition orchestrated in this process, as the run worker the
    daemon starts orchestrates it: its id, and whether it succeeded."""
    with dg.DagsterInstance.from_config(dagster_home) as instance:
        result = dg.execute_job(
            JOB, instance, run_config=run_config, tags={"dagster/partition": domain}
        )
        return result.run_id, result.success


def run_workers(count: int) -> ProcessPoolExecutor:
    """Processes to ``execute`` runs in, each a run worker of its own (Dagster's run
    creation configures logging, which threads of one process cannot do at once), forked
    from a server that loaded the job once (``run_processes``)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__, "pipelines.executors", "tests.support.run_processes"])
    forkserver.ensure_running()  # it imports them now, while the caller goes on
    return ProcessPoolExecutor(count, mp_context=context)
