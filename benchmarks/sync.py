"""Benchmark of a whole ``komeet-sync sync`` of a Google domain into an empty Komeet.

    make bench-sync
    .venv/bin/python benchmarks/sync.py --users 100000 --latency 0.02

Google Workspace is the Directory API emulator in its own process, serving a generated
directory of ``--users`` users (``komeet_sync.emulators.directory_generator``: suspended and
archived users, aliases, guests...) with one selected group, the company-wide kind: 95% of
the users, two levels of nested groups below it. Komeet is the third-party ``scim2-server``
in its own process, empty, behind the latency proxy of ``komeet_sync.emulators.http_proxy``
(its own process too), as in ``benchmarks/apply.py``. Every request to either waits
``--latency`` seconds first, as a remote API would.

The domain is configured with ``komeet-sync domains add``, then ``komeet-sync sync DOMAIN
--json`` runs as a user runs it, in a fresh process: reading Google, reading Komeet,
reconciling, writing the reports, applying the plan (SCIM Bulk when Komeet announces it, as
scim2-server does). Off a terminal the command writes one line per stage on stderr, with
the stage's time: each step's share of the whole comes from them; "start and finish" is the
rest (the interpreter's start and imports, Komeet's discovery, the results written at the
end). Afterwards Komeet is read back: it must hold exactly the plan's accounts, each
userName and externalId once. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from machine import describe  # benchmarks/machine.py, beside this script

from komeet_sync.komeet.client import KomeetClient

DOMAIN = "example.com"
TOKEN = "bench-token"
BIN = Path(sys.executable).parent
# The stages of runs.sync, in order, by the start of their label, and their names here.
STAGES = (
    ("Reading example.com", "reading Google"),
    ("Reading Komeet", "reading Komeet"),
    ("Reconciling", "reconciling"),
    ("Writing the reports", "writing the reports"),
    ("Applying", "applying"),
)
STAGE_LINE = re.compile(r"^(?P<label>.+): (?P<done>[\d,]+) (?P<unit>\w+) in (?P<seconds>[\d.]+) s")


def start(command: list[str], log: Path) -> tuple[subprocess.Popen, str]:
    """Start a process; return it and the first line it prints (where it listens)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log.open("w"), text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.kill()
        raise SystemExit(f"{command[1:3]} did not start; see {log}")
    return process, line


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def komeet_sync(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "komeet-sync"), *args], env=env, capture_output=True, text=True
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--latency", type=float, default=0.02, metavar="SECONDS")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="komeet-sync-bench-"))

    google, google_line = start(
        [sys.executable, "-m", "komeet_sync.emulators.directory_api",
         "--generate", str(args.users), "--domain", DOMAIN, "--groups", "1",
         "--latency", str(args.latency), "--key-out", str(folder / "key.json")],
        folder / "directory_api.log",
    )  # fmt: skip
    port = free_port()
    scim2_server = subprocess.Popen(
        [str(BIN / "scim2-server"), "--port", str(port), "--bearer-token", TOKEN,
         "--dynamic-tenants"],
        stdout=subprocess.DEVNULL, stderr=(folder / "scim2-server.log").open("w"),
    )  # fmt: skip
    proxy, proxy_line = start(
        [sys.executable, "-m", "komeet_sync.emulators.http_proxy",
         "--upstream", f"http://127.0.0.1:{port}", "--latency", str(args.latency)],
        folder / "proxy.log",
    )  # fmt: skip
    try:
        directory = json.loads(google_line)
        proxy_url = re.search(r"http://[\d.]+:\d+", proxy_line)
        assert proxy_url is not None, proxy_line
        env = os.environ | {
            "KOMEET_SYNC_HOME": str(folder / "home"),
            "GOOGLE_SERVICE_ACCOUNT_FILE": directory["key_file"],
            "GOOGLE_DIRECTORY_API_ENDPOINT": directory["url"],
            "KOMEET_SCIM_URL": f"{proxy_url.group(0)}/bench/v2",
            "KOMEET_SCIM_TOKEN": TOKEN,
        }
        env.pop("KOMEET_SYNC_DATABASE_URL", None)
        (group,) = directory["selected"]
        added = komeet_sync(
            "domains", "add", DOMAIN, "--source", "google", "--group", group,
            "--admin-email", directory["admins"][0], env=env,
        )  # fmt: skip
        if added.returncode != 0:
            raise SystemExit(f"domains add failed: {added.stderr}")
        time.sleep(1.0)  # scim2-server's start

        started = time.perf_counter()
        synced = komeet_sync("sync", DOMAIN, "--json", env=env)
        seconds = time.perf_counter() - started
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        if synced.returncode != 0:
            raise SystemExit(f"sync exited {synced.returncode}: {synced.stderr}")
        summary = json.loads(synced.stdout)

        stages = {}
        for line in synced.stderr.splitlines():
            found = STAGE_LINE.match(line)
            if found is None:
                continue
            for prefix, name in STAGES:
                if found["label"].startswith(prefix):
                    stages[name] = (float(found["seconds"]), found["done"], found["unit"])

        accounts = KomeetClient(f"http://127.0.0.1:{port}/bench/v2", TOKEN).list_users([])
        names = Counter(account["userName"].lower() for account in accounts)
        external = Counter(account.get("externalId") for account in accounts)
        duplicates = sum(n - 1 for n in names.values()) + sum(n - 1 for n in external.values())
        creates = summary["actions"].get("create", 0)
        applied = summary["applied"]
        if len(accounts) != creates or duplicates or applied["ledger"] != {"applied": creates}:
            raise SystemExit(
                f"Komeet holds {len(accounts):,} accounts ({duplicates} duplicates) for "
                f"{creates:,} creates; the ledger says {applied['ledger']}"
            )
    finally:
        for process in (proxy, scim2_server, google):
            process.terminate()
            process.wait()
    shutil.rmtree(folder)  # kept when the run fails: its logs say why

    snapshot = summary["snapshot"]
    requests = {
        "reading Google": f"{snapshot['requests']:,} requests",
        "applying": f"{applied['requests']:,} requests, {applied['mode']}",
    }
    print(f"Machine: {describe('pandas', 'pyarrow', 'scim2-server')}")
    print(
        f"Directory: {snapshot['users']:,} users, {snapshot['members']:,} members of the "
        f"selected group listed; {summary['desired']:,} desired; latency "
        f"{args.latency * 1000:g} ms a request to Google and to Komeet"
    )
    print(
        f"Plan: {creates:,} creates; Komeet afterwards: {len(accounts):,} accounts, "
        f"{duplicates} duplicates; sync process peak RSS {peak_mb:,.0f} MB"
    )
    print()
    print("| step | seconds | share | done |")
    print("|---|---:|---:|---|")
    for _, name in STAGES:
        if name in stages:
            step_seconds, done, unit = stages[name]
            done_text = f"{done} {unit}" + (f"; {requests[name]}" if name in requests else "")
            print(f"| {name} | {step_seconds:.1f} | {step_seconds / seconds:.0%} | {done_text} |")
        else:
            print(f"| {name} | not reported | | |")
    rest = seconds - sum(step for step, _, _ in stages.values())
    print(f"| start and finish | {rest:.1f} | {rest / seconds:.0%} | |")
    print(f"| **komeet-sync sync, end to end** | **{seconds:.1f}** | 100% | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
