"""Benchmark of the reconciliation engine against one pandas merge (the floor).

    make bench                      # 10k, 100k and 1M accounts
    .venv/bin/python benchmarks/reconcile.py --sizes 10000 100000

For each size, in a fresh process: a synthetic directory and Komeet state of that many
accounts with 1% joiners, 1% leavers, 0.5% renames and 0.2% duplicates; then the floor (one
pandas merge of the two frames' key columns) and the engine (normalisation, matching,
situations, reports, plan), timed in the same run, best of ``--repeat``. Peak memory is the
process's peak resident set size, inputs included. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd

from komeet_sync.engine.reconcile import reconcile
from komeet_sync.model.domain_config import DomainConfig
from komeet_sync.model.frames import Source
from komeet_sync.model.snapshots import DirectorySnapshot, KomeetAccounts

CONFIG = DomainConfig.create(
    "acme.com",
    "google",
    groups=["all@acme.com"],
    require_admin=False,
    max_deactivations=10**9,
    max_deactivation_share=1.0,
)


def synthetic(size: int, seed: int = 7) -> tuple[DirectorySnapshot, pd.DataFrame, dict[str, int]]:
    rng = np.random.default_rng(seed)
    ids = np.array([f"{100000000000 + i}" for i in range(size)], dtype=object)
    local = np.array([f"user{i:07d}" for i in range(size)], dtype=object)
    email = local + "@acme.com"
    shuffled = rng.permutation(size)
    n_join, n_leave = size // 100, size // 100
    n_rename, n_dup = size // 200, size // 500
    joiners = shuffled[:n_join]
    renamed = shuffled[n_join : n_join + n_rename]
    duplicated = shuffled[n_join + n_rename : n_join + n_rename + n_dup]

    new_email = email.copy()
    new_email[renamed] = "renamed." + local[renamed] + "@acme.com"
    users = pd.DataFrame(
        {
            "source": "google",
            "account_id": ids,
            "stable_id": ids,
            "email": new_email,
            "given_name": "Given",
            "family_name": "Family",
            "active": True,
            "inactive_reason": None,
            "employee_id": None,
        }
    )
    aliases = pd.DataFrame({"account_id": ids[renamed], "alias": email[renamed]})
    members = pd.DataFrame(
        {
            "group": "all@acme.com",
            "member_id": ids,
            "member_email": new_email,
            "member_type": "USER",
        }
    )
    groups = pd.DataFrame({"group": ["all@acme.com"], "found": [True]})
    snapshot = DirectorySnapshot.of(Source.GOOGLE, users, aliases, members, groups)

    has_account = np.ones(size, dtype=bool)
    has_account[joiners] = False
    leaver_ids = np.array([f"{900000000000 + i}" for i in range(n_leave)], dtype=object)
    komeet = pd.DataFrame(
        {
            "komeet_id": np.concatenate(
                [
                    np.array([f"k{i}" for i in range(size)], dtype=object)[has_account],
                    np.array([f"kl{i}" for i in range(n_leave)], dtype=object),
                    np.array([f"kd{i}" for i in range(n_dup)], dtype=object),
                ]
            ),
            "user_name": np.concatenate(
                [
                    email[has_account],
                    np.array([f"left{i:07d}@acme.com" for i in range(n_leave)], dtype=object),
                    np.char.upper(email[duplicated].astype(str)).astype(object),
                ]
            ),
            "email": None,
            "external_id": np.concatenate([ids[has_account], leaver_ids, [None] * n_dup]),
            "given_name": "Given",
            "family_name": "Family",
            "active": True,
            "employee_id": None,
        }
    )
    expected = {"create": n_join, "deactivate": n_leave, "update": n_rename, "disputed": n_dup}
    return snapshot, komeet, expected


def measure(size: int, repeat: int) -> dict[str, object]:
    snapshot, komeet, expected = synthetic(size)
    users = snapshot.users

    def floor() -> None:
        users[["account_id", "email"]].merge(
            komeet[["komeet_id", "user_name"]], left_on="email", right_on="user_name", how="outer"
        )

    accounts = KomeetAccounts.of(komeet)

    def engine():
        return reconcile(snapshot, accounts, CONFIG)

    floor_times, engine_times, result = [], [], None
    for _ in range(repeat):  # interleaved, so drift on a shared machine hits both alike
        start = time.perf_counter()
        floor()
        floor_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        result = engine()
        engine_times.append(time.perf_counter() - start)
    assert result is not None
    actions = result.plan.counts()
    got = {
        "create": actions.get("create", 0),
        "deactivate": actions.get("deactivate", 0),
        "update": actions.get("update", 0),
        "disputed": int(result.reports["duplicates"]["cluster_id"].nunique()),
    }
    if got != expected:
        raise SystemExit(f"wrong plan at {size:,}: expected {expected}, got {got}")
    return {
        "size": size,
        "floor_s": min(floor_times),
        "engine_s": min(engine_times),
        "ratio": min(engine_times) / min(floor_times),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "actions": got,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3, help="timings per process")
    parser.add_argument("--rounds", type=int, default=2, help="fresh processes per size")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.repeat)))
        return

    best: dict[int, dict] = {}
    for round_number in range(args.rounds):  # rounds interleave sizes: drift hits all alike
        for size in args.sizes:
            out = subprocess.run(
                [sys.executable, __file__, "--one", str(size), "--repeat", str(args.repeat)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            result = json.loads(out)
            kept = best.setdefault(size, result)
            best[size] = min(kept, result, key=lambda r: r["engine_s"]) | {
                "floor_s": min(kept["floor_s"], result["floor_s"]),
                "peak_rss_mb": max(kept["peak_rss_mb"], result["peak_rss_mb"]),
            }
            print(f"round {round_number + 1}: measured {size:,}", file=sys.stderr)
    results = [
        best[size] | {"ratio": best[size]["engine_s"] / best[size]["floor_s"]}
        for size in args.sizes
    ]

    print(
        f"Machine: {platform.machine()}, {_cpu()}, {_cores()} cores, {_memory()}; "
        f"Python {platform.python_version()}, pandas {pd.__version__}, numpy {np.__version__}"
    )
    print()
    print(
        "| accounts | floor: one merge (s) | engine (s) | engine / floor | peak RSS (MB) "
        "| creates / deactivates / updates / disputes |"
    )
    print("|---:|---:|---:|---:|---:|---|")
    for r in results:
        a = r["actions"]
        print(
            f"| {r['size']:,} | {r['floor_s']:.3f} | {r['engine_s']:.3f} | {r['ratio']:.1f}x "
            f"| {r['peak_rss_mb']:,.0f} | {a['create']:,} / {a['deactivate']:,} / "
            f"{a['update']:,} / {a['disputed']:,} |"
        )
    if len(results) > 1:
        small, large = results[-2], results[-1]
        times = large["size"] / small["size"]
        engine = large["engine_s"] / small["engine_s"]
        floor = large["floor_s"] / small["floor_s"]
        print()
        print(
            f"Growth from {small['size']:,} to {large['size']:,} accounts (x{times:.0f}): "
            f"engine time x{engine:.1f} ({engine / times:.2f} of linear); "
            f"the floor x{floor:.1f} ({floor / times:.2f} of linear)."
        )


def _proc_line(path: str, prefix: str) -> str | None:
    try:
        with open(path) as lines:
            return next((line for line in lines if line.startswith(prefix)), None)
    except OSError:
        return None


def _cpu() -> str:
    line = _proc_line("/proc/cpuinfo", "model name")
    return line.split(":", 1)[1].strip() if line else platform.processor() or "unknown CPU"


def _cores() -> int:
    return len(os.sched_getaffinity(0))


def _memory() -> str:
    line = _proc_line("/proc/meminfo", "MemTotal")
    return f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB RAM" if line else "unknown RAM"


if __name__ == "__main__":
    main()
