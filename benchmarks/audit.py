"""Benchmark of ``komeet-sync audit`` against the floor of the same work.

    make bench-audit                # 100k and 1M people, 2 rounds
    .venv/bin/python benchmarks/audit.py --sizes 100000 --rounds 3

For each size, the exported files of a Google domain of N people are written once (not
timed; ``--keep DIR`` keeps them for the next run): ``users.json`` (a users.list response),
``members.json`` (the one selected group, every person a member) and ``komeet_users.json``
(Komeet's accounts as one SCIM ListResponse, as ``GET /Users`` returns them, meta
included). 1% of the people are joiners (no account) and 1% leavers (suspended in Google,
their account active): N x 0.99 accounts, N/100 creates and N/100 deactivations, checked on
every run. Then, each in a fresh process and interleaved round by round so that a drift of
the machine weighs on all alike:

- the floor: load the same three files with ``json``, make pandas frames of the people's
  and the accounts' ids and emails, lower-case the emails, one outer merge;
- the audit: the real command, ``komeet-sync audit ... --json --out DIR``, reports written;
- the floor again with Python's cyclic garbage collector paused while it decodes, as the
  audit pauses it: most of the floor's time at a million is the collector's.

Each time is the wall time of the whole process (interpreter start and imports included,
as a user waits for it), best of ``--rounds``; beside it the process's CPU seconds (user +
system, which a shared machine inflates less) and its own peak resident set (``wait4``).
Prints Markdown tables, the last one from the audit's progress lines.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from machine import describe  # benchmarks/machine.py, beside this script

from komeet_sync.emulators.directory_generator import FAMILY, GIVEN

DOMAIN = "acme.com"
GROUP = f"all@{DOMAIN}"
BIN = Path(sys.executable).parent
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


def generate(size: int, folder: Path, seed: int = 16) -> dict[str, int]:
    """The three files of a domain of ``size`` people; the plan they must give."""
    rng = random.Random(seed)
    order = list(range(size))
    rng.shuffle(order)
    joiners = set(order[: size // 100])
    leavers = set(order[size // 100 : 2 * (size // 100)])
    users, members, accounts = [], [], []
    for number in range(size):
        given, family = rng.choice(GIVEN), rng.choice(FAMILY)
        uid = str(100000000000000000000 + number * 7919)
        email = f"{given}.{family}.{number}@{DOMAIN}"
        created = f"{rng.randint(2015, 2026)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        users.append(
            {
                "kind": "admin#directory#user",
                "id": uid,
                "etag": f'"{uid[-12:]}"',
                "primaryEmail": email,
                "name": {
                    "givenName": given.title(),
                    "familyName": family.title(),
                    "fullName": f"{given.title()} {family.title()}",
                },
                "isAdmin": False,
                "suspended": number in leavers,
                "archived": False,
                "emails": [{"address": email, "primary": True}],
                "externalIds": [{"type": "organization", "value": f"E{number:07d}"}],
                "orgUnitPath": "/",
                "creationTime": f"{created}T09:00:00.000Z",
                "lastLoginTime": "2026-11-20T08:30:00.000Z",
            }
        )
        members.append(
            {
                "kind": "admin#directory#member",
                "id": uid,
                "email": email,
                "role": "MEMBER",
                "type": "USER",
                "status": "SUSPENDED" if number in leavers else "ACTIVE",
            }
        )
        if number in joiners:
            continue
        kid = f"{rng.getrandbits(128):032x}"
        accounts.append(
            {
                "schemas": [USER_SCHEMA],
                "id": kid,
                "externalId": uid,
                "userName": email,
                "name": {"givenName": given.title(), "familyName": family.title()},
                "active": True,
                "emails": [{"value": email, "type": "work", "primary": True}],
                "meta": {
                    "resourceType": "User",
                    "created": f"{created}T09:05:00Z",
                    "lastModified": "2026-11-21T02:00:00Z",
                    "location": f"https://komeet.example/scim/v2/Users/{kid}",
                    "version": f'W/"{kid[:8]}"',
                },
            }
        )
    folder.mkdir(parents=True, exist_ok=True)
    _write(folder / "users.json", {"kind": "admin#directory#users", "users": users})
    _write(folder / "members.json", {GROUP: members})
    listing = {
        "schemas": [LIST_SCHEMA],
        "totalResults": len(accounts),
        "startIndex": 1,
        "itemsPerPage": len(accounts),
        "Resources": accounts,
    }
    _write(folder / "komeet_users.json", listing)
    return {"accounts": len(accounts), "create": len(joiners), "deactivate": len(leavers)}


def _write(path: Path, document: object) -> None:
    with path.open("w") as out:
        json.dump(document, out, separators=(",", ":"))


def floor(folder: Path, paused: bool) -> None:
    """The least any audit does: read the files, frame the emails, one outer merge;
    ``paused``: with Python's cyclic garbage collector off while the files are decoded."""
    import pandas as pd

    if paused:
        gc.disable()
    users = json.loads((folder / "users.json").read_text())["users"]
    members = json.loads((folder / "members.json").read_text())[GROUP]
    accounts = json.loads((folder / "komeet_users.json").read_text())["Resources"]
    gc.enable()
    people = pd.DataFrame(
        {"id": [u["id"] for u in users], "email": [u["primaryEmail"] for u in users]}
    )
    people["email"] = people["email"].str.lower()
    pd.DataFrame({"id": [m["id"] for m in members], "email": [m["email"] for m in members]})
    komeet = pd.DataFrame(
        {"komeet_id": [a["id"] for a in accounts], "user_name": [a["userName"] for a in accounts]}
    )
    komeet["user_name"] = komeet["user_name"].str.lower()
    merged = people.merge(komeet, left_on="email", right_on="user_name", how="outer")
    print(json.dumps({"rows": len(merged)}))


def audit_command(folder: Path, out: Path) -> list[str]:
    return [
        str(BIN / "komeet-sync"),
        "audit",
        "--json",
        "--domain",
        DOMAIN,
        "--group",
        GROUP,
        "--max-deactivations",
        str(10**9),
        "--max-deactivation-share",
        "1",
        "--google-users",
        str(folder / "users.json"),
        "--google-members",
        str(folder / "members.json"),
        "--komeet",
        str(folder / "komeet_users.json"),
        "--out",
        str(out),
    ]


@dataclass(frozen=True)
class Run:
    """One process: its wall and CPU (user + system) seconds, peak RSS, and what it said."""

    seconds: float
    cpu: float
    rss_mb: float
    output: str
    progress: str


def timed(command: list[str]) -> Run:
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)  # this child's own peak RSS and CPU
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        output, progress = out.read(), err.read()
    if process.returncode not in (0, 3):
        raise SystemExit(f"{' '.join(command)} exited with {process.returncode}: {progress}")
    return Run(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, output, progress)


STAGES = {
    "Reading the export": "read the directory",
    "Reading Komeet's export": "read Komeet",
    "Reconciling": "reconcile",
    "Writing the reports": "write the reports",
}


def stages(progress: str) -> dict[str, float]:
    """Each stage's seconds, from the audit's progress lines (``...: N users in 1.4 s``)."""
    found: dict[str, float] = {}
    for line in progress.splitlines():
        for prefix, stage in STAGES.items():
            match = re.match(rf"{re.escape(prefix)}.* in ([0-9.]+) s", line)
            if match:
                found[stage] = float(match.group(1))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--rounds", type=int, default=2, help="floor and audit, interleaved")
    parser.add_argument("--floor", type=Path, help=argparse.SUPPRESS)  # child process
    parser.add_argument("--paused", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--keep", type=Path, help="keep the files in this folder (and reuse those found there)"
    )
    args = parser.parse_args()
    if args.floor:
        floor(args.floor, args.paused)
        return

    root = args.keep or Path(tempfile.mkdtemp(prefix="komeet-audit-bench-"))
    results = []
    try:
        for size in args.sizes:
            results.append(measure(size, root / str(size), args.rounds))
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    report(results)


def measure(size: int, folder: Path, rounds: int) -> dict:
    expected_file = folder / "expected.json"
    if expected_file.exists():
        expected = json.loads(expected_file.read_text())
    else:
        expected = generate(size, folder)
        expected_file.write_text(json.dumps(expected))
    print(f"{size:,} people in {folder}", file=sys.stderr)
    runs: dict[str, list[Run]] = {"floor": [], "floor, collector paused": [], "audit": []}
    floor = [sys.executable, __file__, "--floor", str(folder)]
    for number in range(rounds):
        runs["floor"].append(timed(floor))
        runs["audit"].append(timed(audit_command(folder, folder / "out")))
        runs["floor, collector paused"].append(timed([*floor, "--paused"]))
        _check(json.loads(runs["audit"][-1].output), expected, size)
        print(
            f"round {number + 1}: "
            + ", ".join(f"{name} {kind[-1].seconds:.2f} s" for name, kind in runs.items()),
            file=sys.stderr,
        )
    return {"size": size, "expected": expected, "runs": runs}


def report(results: list[dict]) -> None:
    print(f"Machine: {describe('pandas', 'pydantic', 'scim2-models', 'msgspec')}")
    print()
    print(
        "| people | Komeet accounts | floor (s) | audit (s) | audit / floor | floor CPU (s) "
        "| audit CPU (s) | floor peak RSS (MB) | audit peak RSS (MB) | creates / deactivates |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for result in results:
        floor, audit = result["runs"]["floor"], result["runs"]["audit"]
        best_floor, best_audit = min(r.seconds for r in floor), min(r.seconds for r in audit)
        expected = result["expected"]
        print(
            f"| {result['size']:,} | {expected['accounts']:,} | {best_floor:.2f} "
            f"| {best_audit:.2f} | {best_audit / best_floor:.2f}x "
            f"| {min(r.cpu for r in floor):.2f} | {min(r.cpu for r in audit):.2f} "
            f"| {max(r.rss_mb for r in floor):,.0f} | {max(r.rss_mb for r in audit):,.0f} "
            f"| {expected['create']:,} / {expected['deactivate']:,} |"
        )
    print()
    print("The floor with Python's cyclic collector paused while it decodes (as the audit does):")
    print()
    print("| people | floor, collector paused (s) | audit / it | its CPU (s) | its peak RSS (MB) |")
    print("|---:|---:|---:|---:|---:|")
    for result in results:
        paused, audit = result["runs"]["floor, collector paused"], result["runs"]["audit"]
        best, best_audit = min(r.seconds for r in paused), min(r.seconds for r in audit)
        print(
            f"| {result['size']:,} | {best:.2f} | {best_audit / best:.2f}x "
            f"| {min(r.cpu for r in paused):.2f} | {max(r.rss_mb for r in paused):,.0f} |"
        )
    print()
    print("Where the audit's time went (its best round; start = interpreter, imports, arguments):")
    print()
    print("| people | start | " + " | ".join(STAGES.values()) + " | total |")
    print("|---:|" + "---:|" * (len(STAGES) + 2))
    for result in results:
        best = min(result["runs"]["audit"], key=lambda run: run.seconds)
        steps = stages(best.progress)
        cells = " | ".join(f"{steps.get(stage, 0):.1f}" for stage in STAGES.values())
        start = best.seconds - sum(steps.values())
        print(f"| {result['size']:,} | {start:.1f} | {cells} | {best.seconds:.1f} |")


def _check(summary: dict, expected: dict[str, int], size: int) -> None:
    """The audit found every joiner and every leaver."""
    got = {key: summary["actions"].get(key, 0) for key in ("create", "deactivate")}
    want = {key: expected[key] for key in ("create", "deactivate")}
    if got != want:
        raise SystemExit(f"wrong plan at {size:,}: expected {want}, got {got}")


if __name__ == "__main__":
    main()
