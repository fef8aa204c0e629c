"""SCIM pushes refused above a rate are told of (``sources.scim.refusals``): an IdP whose
requests keep being refused gets one event, with the reasons it was given most often and
what to do, over real HTTP to the endpoint; under the threshold, and for 404s, none."""

from __future__ import annotations

from komeet_sync.sources.scim.refusals import THRESHOLD
from komeet_sync.store.events import EventKind, recent_events
from tests.support.scim_server import USER


def refused_events(scim):
    scim.flush_log()
    return [e for e in recent_events(scim.engine) if e.kind is EventKind.PUSHES_REFUSED]


def test_refusals_above_the_threshold_are_told_once_with_their_top_reasons(scim):
    scim.add_domain("acme.com")
    scim.add_domain("globex.com")
    with scim.client("acme.com", secret="an-old-secret") as stale:
        for _ in range(THRESHOLD - 1):
            assert stale.get("/Users").status_code == 401
    assert refused_events(scim) == []  # under the threshold
    with scim.client("acme.com") as idp:
        taken = {"schemas": [USER], "userName": "ada@acme.com"}
        assert idp.post("/Users", json=taken).status_code == 201
        for _ in range(5):
            assert idp.post("/Users", json=taken).status_code == 409
            assert idp.get("/Users/no-such-id").status_code == 404  # not a refusal
    with scim.client("globex.com") as other:
        assert other.get("/Users").status_code == 200

    [event] = refused_events(scim)

    assert event.domain == "acme.com"
    # Told at the THRESHOLD-th refusal: the first 409.
    assert event.subject.startswith(f"acme.com: {THRESHOLD} SCIM requests refused in 10 ")
    assert "401: the secret is not acme.com's" in event.subject
    assert f"  {THRESHOLD - 1} x 401: the secret is not acme.com's" in event.body
    assert "  1 x 409: " in event.body
    assert "enter the current one in its provisioning settings" in event.body
    assert "`komeet-sync scim rotate-secret acme.com`" in event.body
    assert [reason["status"] for reason in event.details["reasons"]] == [401, 409]

    with scim.client("acme.com", secret="an-old-secret") as stale:
        for _ in range(THRESHOLD):
            stale.get("/Users")
    assert len(refused_events(scim)) == 1  # the same hour: told once
