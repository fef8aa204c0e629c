"""Benchmark of the Dagster pipeline against the same core functions called directly.

    .venv/bin/python benchmarks/pipeline.py
    .venv/bin/python benchmarks/pipeline.py --people 10000 --domains 20

Three measures, in one run:

1. Definitions load time: ``import pipelines.definitions`` in a fresh interpreter, 3 times.
2. One Google domain of ``--people`` people, extract to applied, against the Directory API
   emulator and scim2-server (each in its own process, Komeet empty each time): first the
   core's sync (``runs.sync.sync``, what ``komeet-sync sync`` runs: read, plan, store,
   apply), then the ``sync_domain`` job executed in process, storing the same results in
   the same store. The Dagster overhead is the ratio of the two wall times.
3. A backfill of ``--domains`` SCIM domains (50 people each, pushed to ``komeet-sync scim
   serve``) launched through ``dagster dev``'s GraphQL API, timed to its end.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from machine import describe  # benchmarks/machine.py, beside this script

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TOKEN = "bench-token"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


def load_time() -> list[float]:
    times = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import pipelines.definitions"], cwd=ROOT, check=True)
        times.append(time.perf_counter() - started)
    return times


def started(
    command: list[str], pattern: str, env: dict | None = None
) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(pattern, line)
    if match is None:
        process.kill()
        raise SystemExit(f"{command[0]} did not start: {line!r}")
    return process, line


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--domains", type=int, default=20)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="komeet-pipeline-bench-"))
    os.environ["KOMEET_SYNC_HOME"] = str(folder / "home")
    os.environ["DAGSTER_HOME"] = str(folder / "dagster_home")
    (folder / "dagster_home").mkdir()
    (folder / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")

    loads = load_time()
    print(f"Definitions load: {statistics.median(loads):.2f} s (median of {loads})")

    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        komeet_port = sock.getsockname()[1]
    komeet = subprocess.Popen(
        [str(BIN / "scim2-server"), "--port", str(komeet_port), "--bearer-token", TOKEN,
         "--dynamic-tenants"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    google, line = started(
        [sys.executable, "-m", "komeet_sync.emulators.directory_api", "--generate",
         str(args.people), "--groups", "3", "--domain", "bench.example",
         "--key-out", str(folder / "key.json")],
        r"^\{",
    )  # fmt: skip
    emulator = json.loads(line)
    os.environ["GOOGLE_SERVICE_ACCOUNT_FILE"] = emulator["key_file"]
    os.environ["GOOGLE_DIRECTORY_API_ENDPOINT"] = emulator["url"]
    os.environ["KOMEET_SCIM_TOKEN"] = TOKEN
    time.sleep(1.0)
    try:
        direct, dagster_time = one_domain(args, folder, emulator, komeet_port)
        overhead = dagster_time / direct
        print(
            f"One domain of {args.people:,} people, extract to applied: core functions "
            f"{direct:.1f} s, Dagster job {dagster_time:.1f} s, overhead {overhead:.2f}x"
        )
        backfill(args, folder, komeet_port)
    finally:
        google.terminate()
        komeet.terminate()
    print(describe("dagster", "pandas", "scim2-server"))
    return 0


def one_domain(args, folder: Path, emulator: dict, komeet_port: int) -> tuple[float, float]:
    import dagster as dg

    from komeet_sync.komeet.client import KomeetClient
    from komeet_sync.model.domain_config import DomainConfig
    from komeet_sync.runs import sync
    from komeet_sync.store.database import open_database
    from komeet_sync.store.domains import DomainStore
    from komeet_sync.store.results import ResultStore
    from pipelines.definitions import defs
    from pipelines.partitions import domains

    config = DomainConfig.create(
        "bench.example",
        "google",
        admin_email=emulator["admins"][0],
        groups=emulator["selected"],
        max_deactivation_share=1.0,
    )
    timings = []
    for mode in ("core", "dagster"):
        database = f"sqlite:///{folder / f'{mode}.db'}"
        os.environ["KOMEET_SYNC_DATABASE_URL"] = database
        os.environ["KOMEET_SCIM_URL"] = f"http://127.0.0.1:{komeet_port}/{mode}/v2"
        engine = open_database(database)
        DomainStore(engine).add(config)
        started_at = time.perf_counter()
        if mode == "core":
            client = KomeetClient(os.environ["KOMEET_SCIM_URL"], TOKEN)
            run = sync.sync(
                config,
                engine,
                ResultStore.from_settings(),
                read_directory=lambda _advance: sync.read_source(config, engine),  # noqa: B023
                client=client,
                trigger="bench",
            )
            assert run.applied is not None and run.applied.result is not None
            counts = run.applied.result.counts
        else:
            instance = dg.DagsterInstance.ephemeral()
            instance.add_dynamic_partitions(domains.name, [config.domain])
            result = defs.resolve_job_def("sync_domain").execute_in_process(
                instance=instance, partition_key=config.domain
            )
            assert result.success
            counts = {"run": result.run_id}
        timings.append(time.perf_counter() - started_at)
        print(f"  {mode}: {timings[-1]:.1f} s, {counts}")
        engine.dispose()
    return timings[0], timings[1]


def backfill(args, folder: Path, komeet_port: int) -> None:
    database = f"sqlite:///{folder / 'backfill.db'}"
    env = os.environ | {
        "KOMEET_SYNC_DATABASE_URL": database,
        "KOMEET_SCIM_URL": f"http://127.0.0.1:{komeet_port}/backfill/v2",
    }
    names = [f"d{number:02d}.example" for number in range(args.domains)]
    secrets = {}
    for name in names:
        made = subprocess.run(
            [str(BIN / "komeet-sync"), "domains", "add", name, "--source", "scim", "--group",
             "Komeet Users", "--json"],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        secrets[name] = json.loads(made.stdout)["secret"]
    serve, line = started(
        [str(BIN / "komeet-sync"), "scim", "serve", "--port", "0"], r"http://[\d.]+:\d+", env
    )
    url = re.search(r"http://[\d.]+:\d+", line).group(0)  # type: ignore[union-attr]
    try:
        for name in names:
            with httpx.Client(
                base_url=f"{url}/scim/{name}/v2",
                headers={"Authorization": f"Bearer {secrets[name]}"},
            ) as idp:
                ids = []
                for number in range(50):
                    created = idp.post(
                        "/Users",
                        json={"schemas": [USER], "userName": f"p{number}@{name}",
                              "name": {"givenName": "P", "familyName": str(number)},
                              "active": True},
                    )  # fmt: skip
                    ids.append(created.json()["id"])
                idp.post(
                    "/Groups",
                    json={"schemas": [GROUP], "displayName": "Komeet Users",
                          "members": [{"value": i} for i in ids]},
                )  # fmt: skip
    finally:
        serve.terminate()
        serve.wait()

    sys.path.insert(0, str(ROOT))
    from tests.support.dagster_server import start

    server = start(folder / "dagster_home", env)
    try:
        selector = {"repositoryLocationName": server.location(), "repositoryName": "__repository__"}
        for name in names:
            server.graphql(
                "mutation($s: RepositorySelector!, $k: String!) { addDynamicPartition("
                'repositorySelector: $s, partitionsDefName: "domains", partitionKey: $k) '
                "{ __typename } }",
                s=selector,
                k=name,
            )
        assets = [
            "snapshot",
            "komeet_accounts",
            "joiners",
            "leavers",
            "updates",
            "duplicates",
            "errors",
            "out_of_scope",
            "plan",
            "results",
        ]
        began = time.perf_counter()
        launched = server.graphql(
            "mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p)"
            " { __typename ... on LaunchBackfillSuccess { backfillId } } }",
            p={"assetSelection": [{"path": [a]} for a in assets], "partitionNames": names},
        )["launchPartitionBackfill"]
        while True:
            status = server.graphql(
                "query($id: String!) { partitionBackfillOrError(backfillId: $id) "
                "{ ... on PartitionBackfill { status } } runsOrError(filter: {tags: [{key: "
                '"dagster/backfill", value: $id}]}) { ... on Runs { results { status } } } }',
                id=launched["backfillId"],
            )
            state = status["partitionBackfillOrError"]["status"]
            if state not in ("REQUESTED", "CANCELING", "FAILING"):
                break
            time.sleep(1)
        seconds = time.perf_counter() - began
        runs = [run["status"] for run in status["runsOrError"]["results"]]
        print(
            f"Backfill of {len(names)} domains (50 people each): {state} in {seconds:.1f} s, "
            f"{runs.count('SUCCESS')} of {len(runs)} runs succeeded, "
            f"{seconds / len(names):.1f} s a domain"
        )
    finally:
        server.stop()
    print(f"  at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")


if __name__ == "__main__":
    sys.exit(main())
