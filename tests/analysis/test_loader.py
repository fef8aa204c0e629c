"""The notebooks' loader, on the state real syncs left: the Dagster job run twice for a Google
domain, a SCIM domain pushed by its IdP, Komeet the scim2-server stand-in."""

from __future__ import annotations

import pytest

from komeet_sync.analysis.loader import Loader, NotStored
from tests.support.world import run


def test_the_latest_and_past_reports_of_a_domain(world, komeet, tmp_path):
    instance, people, _ = world
    first = run(instance, "acme.com")
    komeet.add(**{"userName": "stray@acme.com", "externalId": "gone-1", "active": True})
    second = run(instance, "acme.com")
    assert first.success and second.success
    sync = Loader()

    history = sync.history("acme.com", "joiners")
    assert list(history["run_id"]) == [first.run_id, second.run_id]
    assert list(history["trigger"]) == [
        f"dagster run {first.run_id}",
        f"dagster run {second.run_id}",
    ]
    first_sync = history["sync_id"].iloc[0]
    assert first_sync.endswith(first.run_id.replace("-", "")[:8])
    assert len(sync.report("acme.com", "joiners", sync_id=first_sync)) == len(people)
    assert sync.report("acme.com", "joiners").empty  # the second run had nobody to create
    leavers = sync.report("acme.com", "leavers")
    assert list(leavers["email"]) == ["stray@acme.com"]
    at_first = history["started_at"].iloc[0]
    assert len(sync.report("acme.com", "joiners", at=at_first)) == len(people)
    with pytest.raises(NotStored, match=r"no joiners stored for acme\.com at 2000-01-01"):
        sync.report("acme.com", "joiners", at="2000-01-01")
    assert set(sync.snapshot("acme.com").users["email"]) == {p["primaryEmail"] for p in people}
    plan = sync.report("acme.com", "plan", sync_id=first_sync)
    assert set(plan["action"]) == {"create"}

    plans = sync.plans("acme.com")
    assert len(plans) == 2
    ledger = sync.ledger("acme.com")
    assert len(ledger) == len(people) + 1  # the creates, then the stray's deactivation
    assert set(ledger["status"]) == {"applied"} and set(ledger["domain"]) == {"acme.com"}
    results = sync.report("acme.com", "results")
    assert list(results["action"]) == ["deactivate"]

    trend = sync.trend("acme.com")
    assert list(trend["run_id"]) == [first.run_id, second.run_id]
    assert list(trend["errors"]) == [0, 0]
    assert list(trend["joiners"]) == [len(people), 0]
    assert list(trend["leavers"]) == [0, 1]
    assert list(trend["applied"]) == [len(people), 1]
    assert list(trend["failed"]) == [0, 0]
    assert list(trend["held"]) == ["", ""]
    assert sync.domains() == ["acme.com"]
    with pytest.raises(NotStored, match=r"no joiners stored for acme\.org .*: acme\.com"):
        sync.trend("acme.org")
    with pytest.raises(NotStored, match=r"'joiner' is not a stored report: name one of"):
        sync.report("acme.com", "joiner")


def test_the_scim_request_log_of_a_domain(world):
    sync = Loader()

    requests = sync.scim_requests("globex.com")

    assert list(requests["method"]) == ["POST"] * 4  # 3 users, then the group
    assert list(requests["status"]) == [201] * 4
    assert sync.scim_requests("acme.com").empty  # a Google domain: nothing pushed
    assert sync.scim_requests("globex.com", since="2000-01-01").shape == requests.shape
    assert sync.scim_requests("globex.com", since="2999-01-01").empty
