"""The machine a benchmark ran on, in one line for benchmarks/RESULTS.md."""

from __future__ import annotations

import os
import platform
from importlib.metadata import version
from pathlib import Path


def describe(*packages: str, extra: str = "") -> str:
    """CPU, cores, memory and Python, then each package's version (and ``extra``)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    software = [f"Python {platform.python_version()}", *filter(None, [extra])]
    software += [f"{name} {version(name)}" for name in packages]
    return (
        f"{platform.machine()}, {cpu}, {len(os.sched_getaffinity(0))} cores, "
        f"{memory:.0f} GiB RAM; {', '.join(software)}"
    )
