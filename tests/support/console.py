"""Reading what a command printed on stderr: the log line each finished step writes off a
terminal (``cli.output.ConsoleProgress``), and everything else."""

from __future__ import annotations

import re

STEP = re.compile(r"^[^:]+: [\d,]+ \w+ in [\d.]+ s(, [\d,]+/s)?$")


def error_lines(stderr: str) -> list[str]:
    """The lines of ``stderr`` that are not a finished step's log line."""
    return [line for line in stderr.splitlines() if not STEP.match(line)]
