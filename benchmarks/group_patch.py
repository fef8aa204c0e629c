"""Benchmark of the SCIM endpoint's group PATCH: one member added to a group of N.

    make bench-group-patch
    .venv/bin/python benchmarks/group_patch.py --sizes 10000,100000

For each size N, a fresh SQLite database holds one SCIM domain whose group lists N staged
users (``incremental.stage``: the product's storage, as the endpoint writes them). The
endpoint (``komeet-sync scim serve --port 0 --json --quiet``, its own process) then gets,
over HTTP with the domain's secret, a new user (POST) and the PATCH adding it to the group
as Entra ID sends it (``{"op": "Add", "path": "members", "value": [{"value": ID}]}``),
timed from the request sent to its answer. The same PATCH with
``?excludedAttributes=members`` takes scim2-server's way (the group read and written
whole), for the ratio in the same run. Prints the median and max of each, and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from incremental import DOMAIN, PATCH_OP, person, staged_domain  # beside
from machine import describe

from komeet_sync.store.database import open_database

KOMEET_SYNC = Path(sys.executable).with_name("komeet-sync")
WAYS = {
    "members' rows (default)": "",
    "scim2-server's (whole group)": "?excludedAttributes=members",
}


def measure(size: int, rounds: int, folder: Path) -> dict[str, list[float]]:
    database = f"sqlite:///{folder / f'{size}.db'}"
    engine = open_database(database)
    started = time.perf_counter()
    secret, group_id, _ = staged_domain(engine, size)
    print(f"{size:,} users staged in {time.perf_counter() - started:.0f} s", flush=True)
    env = os.environ | {"KOMEET_SYNC_HOME": str(folder), "KOMEET_SYNC_DATABASE_URL": database}
    server = subprocess.Popen(
        [str(KOMEET_SYNC), "scim", "serve", "--port", "0", "--json", "--quiet"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    times: dict[str, list[float]] = {way: [] for way in WAYS}
    try:
        url = json.loads(server.stdout.readline())["url"]  # type: ignore[union-attr]
        with httpx.Client(
            base_url=f"{url}/scim/{DOMAIN}/v2",
            headers={"Authorization": f"Bearer {secret}"},
            timeout=600,
        ) as client:
            for number in range(rounds):
                for way, query in WAYS.items():
                    name = f"joiner{len(times[way])}-{query and 'whole'}"
                    created = client.post("/Users", json=person(name, 900_000 + number))
                    created.raise_for_status()
                    operation = {"op": "Add", "path": "members", "value": []}
                    operation["value"] = [{"value": created.json()["id"]}]
                    sent = time.perf_counter()
                    answer = client.patch(
                        f"/Groups/{group_id}{query}",
                        json={"schemas": [PATCH_OP], "Operations": [operation]},
                    )
                    times[way].append(time.perf_counter() - sent)
                    answer.raise_for_status()
    finally:
        server.terminate()
        server.wait()
        engine.dispose()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="members of the group, by comma")
    parser.add_argument("--rounds", type=int, default=5, help="PATCHes each way, per size")
    args = parser.parse_args()
    print(f"Machine: {describe('scim2-server', 'sqlalchemy')}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="komeet-group-patch-") as folder:
        for size in (int(text) for text in args.sizes.split(",")):
            times = measure(size, args.rounds, Path(folder))
            rows.append((size, times))
    print("\n| members | way | PATCHes | median (s) | max (s) |\n|---:|---|---:|---:|---:|")
    for size, times in rows:
        for way, found in times.items():
            print(
                f"| {size:,} | {way} | {len(found)} | {statistics.median(found):.3f} "
                f"| {max(found):.3f} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
