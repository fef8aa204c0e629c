"""What the benchmarks of Google reads share: the Directory API emulator in a process of its
own, and each phase measured in a fresh process (no warm caches, its own peak memory)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def emulator(*options: str) -> Iterator[dict[str, Any]]:
    """``python -m komeet_sync.emulators.directory_api OPTIONS`` with a throwaway key, until
    the block ends; yields the JSON line it prints (``url``, ``key_file``, ``admins``,
    ``selected``)."""
    folder = Path(tempfile.mkdtemp(prefix="google-bench-"))
    process = subprocess.Popen(
        [
            sys.executable, "-m", "komeet_sync.emulators.directory_api", *options,
            "--key-out", str(folder / "key.json"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        yield json.loads(process.stdout.readline())
    finally:
        process.terminate()
        process.wait(timeout=30)


def in_fresh_process(script: str, phase: str, connect: dict[str, Any]) -> dict[str, Any]:
    """Run ``script --phase PHASE --connect JSON`` and read the JSON line it prints."""
    output = subprocess.run(
        [sys.executable, script, "--phase", phase, "--connect", json.dumps(connect)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(output)


def phase_options(parser: argparse.ArgumentParser, phases: list[str]) -> None:
    """``--latency`` of the emulator, ``--rounds``, and the hidden options by which a phase
    runs in its fresh process."""
    parser.add_argument("--latency", type=float, default=0.02, metavar="SECONDS")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--phase", choices=phases, help=argparse.SUPPRESS)
    parser.add_argument("--connect", help=argparse.SUPPRESS)


def connection(started: dict[str, Any], domain: str = "example.com") -> dict[str, Any]:
    """What a phase needs to read the emulator that printed ``started``, as its admin."""
    return {
        "url": started["url"],
        "key_file": started["key_file"],
        "admin": started["admins"][0],
        "domain": domain,
    }
