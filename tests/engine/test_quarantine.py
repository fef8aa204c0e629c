"""The quarantine's rule (``engine.quarantine``): more than 40% of at least 10 failed actions
in an application, or 5 failed runs in a row."""

from __future__ import annotations

import pandas as pd
import pytest

from komeet_sync.engine.quarantine import (
    action_causes,
    actions_reason,
    application_failed,
    failed_in_a_row,
    run_causes,
    too_many_failed,
)


@pytest.mark.parametrize(
    ("failed", "attempted", "quarantines", "fails_the_run"),
    [
        (12, 20, True, True),
        (10, 24, True, True),  # 41.7%
        (10, 25, False, False),  # 40% exactly: not more than 40%
        (9, 9, False, True),  # too few to quarantine, yet a failed run
        (1, 1000, False, False),
        (0, 0, False, False),  # nothing to do is a success
    ],
)
def test_failed_actions_over_the_share_and_at_least_ten_quarantine(
    failed, attempted, quarantines, fails_the_run
):
    assert too_many_failed(failed, attempted) is quarantines
    assert application_failed(failed, attempted) is fails_the_run


def test_runs_in_a_row_are_counted_back_to_the_last_success():
    assert failed_in_a_row([True, True, False, True, True, True]) == 2
    assert failed_in_a_row([True] * 5) == 5
    assert failed_in_a_row([]) == 0
    assert failed_in_a_row([False, True]) == 0


def test_the_reason_and_the_causes_say_what_failed_with_counts():
    assert actions_reason(12, 20) == "12 of 20 actions failed (60%)"
    assert actions_reason(12, 20, "plan_x") == "12 of 20 actions failed (60%) applying plan_x"
    failures = pd.DataFrame(
        {
            "action": ["update"] * 3 + ["create"],
            "user_name": ["a@acme.com", "b@acme.com", "c@acme.com", "d@acme.com"],
            "http_status": [404, 404, 404, None],
            "outcome": ["gone: 404 a", "gone: 404 b", "gone: 404 c", "no answer"],
        }
    )
    assert action_causes(failures) == [
        "3 update: gone: 404 a (e.g. a@acme.com)",
        "1 create: no answer (e.g. d@acme.com)",
    ]
    assert run_causes(["401", "401", "timeout"]) == ["2 run(s): 401", "1 run(s): timeout"]
