"""A quarantine as an operator meets it: an `apply` whose actions fail quarantines acme.com;
`status` and `domains show` say so with the command that releases it; `sync` and `sync
--person` still plan and report but send nothing (exit 3); `domains release` lifts it (the
next sync then applies: tests/runs/test_quarantine.py)."""

from __future__ import annotations

import json

from komeet_sync.emulators.http_proxy import HttpProxy
from tests.support.provisioning import DOMAIN

OLD_NAME = {"givenName": "Old", "familyName": "Name"}
RELEASE = f"komeet-sync domains release {DOMAIN}"


def test_a_quarantine_is_shown_stops_every_write_and_is_released(
    cli, failing_plan, komeet, monkeypatch
):
    people, plan_id = failing_plan

    code, _, err = cli("apply", plan_id)

    reason = f"10 of 12 actions failed (83%) applying {plan_id}"
    assert code == 1 and "10 action(s) failed" in err
    assert f"{DOMAIN} is now QUARANTINED ({reason})" in err and f"`{RELEASE}`" in err
    code, out, _ = cli("status", "--json")
    [status] = json.loads(out)
    assert code == 1 and status["result"] == "applied_with_failures"
    assert status["quarantine"]["reason"] == reason
    assert status["quarantine"]["release"] == RELEASE
    assert cli.json("domains", "show", DOMAIN)["quarantine"] == status["quarantine"]
    since = status["quarantine"]["since"][:16].replace("T", " ")
    code, out, _ = cli("domains", "show", DOMAIN)
    assert f"{DOMAIN}: QUARANTINED since {since} UTC: {reason}." in out
    assert f"  release it: {RELEASE}" in out

    with HttpProxy(komeet.url) as proxy:
        komeet.env(monkeypatch, proxy.url)
        code, out, err = cli("sync", DOMAIN)
        assert code == 3 and "Reports written to" in out
        assert f"not applied: {DOMAIN} is quarantined since {since} UTC ({reason}); " in err
        code, _, err = cli("sync", DOMAIN, "--person", people[1]["primaryEmail"])
        assert code == 3 and f"not applied: {DOMAIN} is quarantined" in err
        assert {request.method for request in proxy.stats().requests} == {"GET"}
    komeet.env(monkeypatch)
    code, out, _ = cli("status")
    assert code == 3 and "enabled, QUARANTINED" in out and "quarantined" in out
    assert f"{DOMAIN}: QUARANTINED since {since} UTC" in out and RELEASE in out
    code, out, _ = cli("status", "--json")
    assert json.loads(out)[0]["next_step"] == RELEASE

    code, out, _ = cli("domains", "release", DOMAIN)

    assert code == 0
    assert f"Released {DOMAIN} from the quarantine it was in since {since} UTC ({reason})" in out
    code, _, err = cli("domains", "release", DOMAIN)
    assert code == 1 and err.strip() == (
        f"komeet-sync: {DOMAIN} is not quarantined: its syncs write to Komeet "
        f"('komeet-sync domains show {DOMAIN}')"
    )
    code, _, err = cli("domains", "release", "initech.com")
    assert code == 1 and "no configuration for initech.com" in err and len(err.splitlines()) == 1
    assert cli.json("domains", "show", DOMAIN)["quarantine"] is None  # the next sync applies
