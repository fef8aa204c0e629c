"""How many times the generated and repeated tests try: `make test` (CI) at a size that keeps
the whole suite within CI's time, `make test-scale` (KOMEET_SYNC_TEST_SCALE=1) at full size."""

import os

SCALE = os.environ.get("KOMEET_SYNC_TEST_SCALE") == "1"


def at_scale(in_ci: int, full: int) -> int:
    return full if SCALE else in_ci
