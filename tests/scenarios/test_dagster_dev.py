"""`dg dev -w workspace.yaml` serving the definitions without a warning, and a backfill of three
domains launched through its GraphQL API, as the UI launches one."""

from __future__ import annotations

import os
import shutil
import time
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.support import ROOT
from tests.support.dagster_server import start
from tests.support.world import NAMES, build_world, push_directory

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
ASSETS = [
    "snapshot", "komeet_accounts", "joiners", "leavers", "updates", "duplicates", "errors",
    "out_of_scope", "plan", "results",
]  # fmt: skip
DOMAINS = ["acme.com", "globex.com", "initech.com"]


@pytest.fixture
def dagster_dev(request, monkeypatch, tmp_path, workspace, komeet, scim):
    """dagster dev on the world of test_pipelines plus initech.com (SCIM). With komeet-sync on
    PostgreSQL, the Dagster instance is too: deploy/dagster.yaml, on a database of its own."""
    build_world(monkeypatch, tmp_path, workspace, komeet, scim, ("globex.com",))
    push_directory(scim, "initech.com")
    env = {key: value for key, value in os.environ.items() if key.startswith(("KOMEET", "GOOGLE"))}
    home = tmp_path / "dagster_home"
    home.mkdir()
    if scim.engine.dialect.name == "postgresql":
        server_url = request.getfixturevalue("postgres_server_url")
        name = f"dagster_{uuid.uuid4().hex[:10]}"
        admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        pg_url = make_url(server_url).set(drivername="postgresql+psycopg2", database=name)
        env["DAGSTER_PG_URL"] = pg_url.render_as_string(hide_password=False)
        shutil.copy(ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    server = start(home, env, command="dg")
    yield server
    server.stop()


# On PostgreSQL (deploy/dagster.yaml): the embedded default's backfill is launched from the
# browser in test_dagster_ui.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_backfill_of_three_domains_launched_through_graphql(dagster_dev, komeet):
    # `dg dev` (what the README says to run) served the definitions without a warning.
    warnings = [
        line for line in dagster_dev.log.read_text().splitlines() if "warning" in line.lower()
    ]
    assert warnings == [], warnings
    assert dagster_dev.location() == "pipelines.definitions"
    selector = {
        "repositoryLocationName": dagster_dev.location(),
        "repositoryName": "__repository__",
    }
    for domain in DOMAINS:
        added = dagster_dev.graphql(ADD_PARTITION, selector=selector, key=domain)
        assert added["addDynamicPartition"]["__typename"] in (
            "AddDynamicPartitionSuccess",
            "DuplicateDynamicPartitionError",  # the sensor was quicker
        )

    launched = dagster_dev.graphql(
        BACKFILL,
        params={
            "assetSelection": [{"path": [name]} for name in ASSETS],
            "partitionNames": DOMAINS,
        },
    )["launchPartitionBackfill"]

    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    deadline = time.monotonic() + 300
    while True:
        status = dagster_dev.graphql(STATUS, id=launched["backfillId"])
        backfill = status["partitionBackfillOrError"]["status"]
        if backfill not in ("REQUESTED", "CANCELING", "FAILING"):
            break
        assert time.monotonic() < deadline, (
            f"backfill still {backfill}: {dagster_dev.log.read_text()[-2000:]}"
        )
        time.sleep(1)
    runs = status["runsOrError"]["results"]
    assert backfill in ("COMPLETED", "COMPLETED_SUCCESS"), (backfill, runs)
    assert (
        sorted(
            next(tag["value"] for tag in run["tags"] if tag["key"] == "dagster/partition")
            for run in runs
        )
        == DOMAINS
    )
    assert {run["status"] for run in runs} == {"SUCCESS"}
    accounts = komeet.by_user_name()
    assert len(accounts) == 6 + 2 * len(NAMES)
    assert {f"{name}@initech.com" for name in NAMES} <= set(accounts)
