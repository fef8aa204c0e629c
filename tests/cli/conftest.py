"""What the command-line tests share: acme.com on the Directory API emulator, configured
through the CLI, and an empty Komeet."""

from __future__ import annotations

import pytest
import requests

from komeet_sync.emulators.directory import Directory
from tests.support.google_workspace import member
from tests.support.komeet_server import SCIM_JSON
from tests.support.provisioning import DOMAIN, GROUP, account_for, person

ADMIN = "admin@acme.com"


@pytest.fixture
def acme(workspace, komeet_env, komeet, monkeypatch, cli):
    """acme.com: 6 people in the selected group, served by the emulator; an empty Komeet."""
    people = [person(0, ADMIN), *(person(i) for i in range(1, 6))]

    def serve(users, *flags: str, **options):
        directory = Directory.from_exports(
            users, {GROUP: [member(user) for user in users]}, admins=[ADMIN]
        )
        workspace(directory).env(monkeypatch)
        arguments = [f"--{key.replace('_', '-')}={value}" for key, value in options.items()]
        code, _, err = cli(
            "domains", "add", DOMAIN, "--source", "google", "--admin-email", ADMIN,
            "--group", GROUP, *flags, *arguments,
        )  # fmt: skip
        assert code == 0, err

    komeet.env(monkeypatch)
    return people, serve


@pytest.fixture
def three_leavers(acme, komeet):
    """acme.com's 6 people in Komeet, and 3 leavers: 3 deactivations, over a budget of 2."""
    people, serve = acme
    for user in people:
        komeet.add(**account_for(user))
    for number in range(50, 53):
        komeet.add(**account_for(person(number)))
    serve(people, max_deactivations=2)
    return people


@pytest.fixture
def failing_plan(acme, komeet, cli):
    """acme.com's plan of 12 updates, 10 of whose accounts are gone from Komeet: applied,
    10 of 12 actions fail and the domain is quarantined. Its people and its plan id."""
    first, serve = acme
    people = [*first, *(person(i) for i in range(6, 12))]
    old_name = {"givenName": "Old", "familyName": "Name"}
    accounts = [komeet.add(**account_for(user, name=old_name)) for user in people]
    serve(people, "--disabled")
    code, out, _ = cli("sync", DOMAIN)  # disabled: the plan of 12 updates is stored
    assert code == 3
    plan_id = next(word for word in out.split() if word.startswith("plan_"))
    for account in accounts[:10]:  # gone from Komeet before the plan is applied
        url = f"{komeet.url}/Users/{account['id']}"
        requests.delete(url, headers=SCIM_JSON, timeout=5).raise_for_status()
    cli("domains", "enable", DOMAIN)
    return people, plan_id
