"""`dagster dev -w workspace.yaml` started as a user starts it, and its GraphQL API."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tests.support import ROOT

DAGSTER = Path(sys.executable).with_name("dagster")
LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""
RUN = """
query Run($id: ID!) {
  runOrError(runId: $id) { ... on Run { status jobName tags { key value } } }
}"""
LATEST = """
query Latest($key: AssetKeyInput!, $partition: String!) {
  assetOrError(assetKey: $key) {
    ... on Asset {
      assetMaterializations(partitions: [$partition], limit: 1) {
        runId
        metadataEntries {
          label
          ... on TextMetadataEntry { text }
          ... on IntMetadataEntry { intValue }
        }
      }
    }
  }
}"""
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}
# A backfill of partitions of the sync's assets, as the UI's Materialize dialog launches one;
# its status and runs; a domain added to the partitions, as the domain_partitions sensor does.
BACKFILL = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
  }
}"""
STATUS = """
query Status($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    ... on PartitionBackfill { status }
  }
  runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]}) {
    ... on Runs { results { runId status tags { key value } } }
  }
}"""
ADD_PARTITION = """
mutation Add($selector: RepositorySelector!, $key: String!) {
  addDynamicPartition(repositorySelector: $selector, partitionsDefName: "domains",
                      partitionKey: $key) {
    __typename
  }
}"""
# A run stopped, as the run page's Terminate button does.
TERMINATE = """
mutation Terminate($runId: String!) {
  terminateRun(runId: $runId) {
    __typename
    ... on TerminateRunFailure { message }
    ... on PythonError { message }
  }
}"""
ASSETS = [
    "snapshot", "komeet_accounts", "joiners", "leavers", "updates", "duplicates", "errors",
    "out_of_scope", "plan", "results",
]  # fmt: skip


@dataclass
class DagsterDev:
    process: subprocess.Popen
    url: str
    log: Path

    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        response = requests.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables}, timeout=60
        )
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    def location(self) -> str:
        data = self.graphql(
            "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
            "locationOrLoadError { __typename ... on PythonError { message } } } } } }"
        )
        [entry] = data["workspaceOrError"]["locationEntries"]
        problem = entry["locationOrLoadError"]
        assert problem["__typename"] == "RepositoryLocation", problem
        return entry["name"]

    def launch(self, job: str, tags: dict[str, str]) -> str:
        """Launch a run of ``job`` in the workspace's code location, as the UI or a schedule
        does (a partition is the tag ``dagster/partition``); its id."""
        launched = self.graphql(
            LAUNCH,
            params={
                "selector": {
                    "repositoryLocationName": self.location(),
                    "repositoryName": "__repository__",
                    "jobName": job,
                },
                "executionMetadata": {
                    "tags": [{"key": key, "value": value} for key, value in tags.items()]
                },
            },
        )["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        return launched["run"]["runId"]

    def finished(self, run_id: str, timeout: float = 300) -> dict[str, Any]:
        """The run once it ended: its status, job and tags (a dict)."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.graphql(RUN, id=run_id)["runOrError"]
            if run["status"] in FINISHED:
                return run | {"tags": {tag["key"]: tag["value"] for tag in run["tags"]}}
            assert time.monotonic() < deadline, f"run {run_id} still {run['status']}"
            time.sleep(1)

    def latest_metadata(self, asset: str, partition: str) -> dict[str, Any] | None:
        """The metadata of ``asset``'s latest materialization of ``partition`` (text and
        integers), with the run that made it under ``run_id``; None before the first."""
        found = self.graphql(LATEST, key={"path": [asset]}, partition=partition)
        materializations = found["assetOrError"]["assetMaterializations"]
        if not materializations:
            return None
        [latest] = materializations
        entries = {
            entry["label"]: entry.get("text", entry.get("intValue"))
            for entry in latest["metadataEntries"]
        }
        return entries | {"run_id": latest["runId"]}

    def stop(self) -> None:
        """Stop it as Ctrl-C would, then whatever of its session is left (the webserver, the
        daemon, the code servers: a test leaves no process behind)."""
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        _kill_session(self.process)


def _kill_session(process: subprocess.Popen) -> None:
    """SIGKILL to what is left of the session ``process`` leads (start_new_session)."""
    with contextlib.suppress(ProcessLookupError):  # nothing left
        os.killpg(process.pid, signal.SIGKILL)


def start(dagster_home: Path, env: dict[str, str], command: str = "dagster") -> DagsterDev:
    """``dagster dev`` (or ``dg dev``) on workspace.yaml, once its code location loaded."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dagster_home.mkdir(parents=True, exist_ok=True)
    log = dagster_home / "dagster-dev.log"
    process = subprocess.Popen(
        [str(DAGSTER.with_name(command)), "dev", "-w", "workspace.yaml", "-p", str(port)],
        cwd=ROOT,
        env=os.environ | env | {"DAGSTER_HOME": str(dagster_home)},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300  # a loaded machine takes minutes to start it
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"dagster dev exited: {log.read_text()[-3000:]}")
        try:
            if requests.get(f"{url}/server_info", timeout=2).ok:
                break
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            process.kill()
            _kill_session(process)
            raise RuntimeError(f"dagster dev did not answer: {log.read_text()[-3000:]}")
        time.sleep(0.5)
    server = DagsterDev(process, url, log)
    while True:  # the code location loads after the webserver answers
        data = server.graphql(
            "{ workspaceOrError { ... on Workspace { locationEntries { loadStatus } } } }"
        )
        if all(e["loadStatus"] == "LOADED" for e in data["workspaceOrError"]["locationEntries"]):
            return server
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"the code location did not load: {log.read_text()[-3000:]}")
        time.sleep(0.5)
