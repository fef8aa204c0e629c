"""scim2-tester's compliance checks against the served endpoint, over real HTTP."""

from __future__ import annotations

import uuid

import httpx2
import pytest
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server, filling
from scim2_tester.checkers import patch_add, patch_replace


@pytest.fixture
def user_names_in_the_domain(monkeypatch):
    """scim2-tester makes userNames of random UUIDs; our endpoint takes only email
    addresses of the domain (and refuses the others with 400 invalidValue), so the tester is
    made to generate such addresses. Every other value is the tester's own."""
    generate = filling.generate_random_value

    def email_user_names(context, path, *args, **kwargs):
        value = generate(context, path, *args, **kwargs)
        if str(path).rsplit(":", 1)[-1] == "userName" and value is not None:
            return f"{uuid.uuid4().hex}@example.com"
        return value

    for module in (filling, patch_add, patch_replace):
        monkeypatch.setattr(module, "generate_random_value", email_user_names)


def test_scim2_tester_finds_no_error(scim, user_names_in_the_domain):
    # The tester sends as fast as it can and does not wait for Retry-After: it is given the
    # highest rate limit (the limit has tests of its own, test_rate_limit.py).
    secret = scim.add_domain("example.com", scim_rate_limit=10_000)
    client = SyncSCIMClient(
        httpx2.Client(
            base_url=f"{scim.url}/scim/example.com/v2",
            headers={"Authorization": f"Bearer {secret}"},
            timeout=30,
        )
    )
    client.discover()

    results = check_server(client)

    failures = [
        (r.status.name, r.resource_type, r.title, r.reason)
        for r in results
        if r.status in (Status.ERROR, Status.CRITICAL)
    ]
    assert not failures
    assert sum(r.status is Status.SUCCESS for r in results) > 20
    counts = {status.name: sum(r.status is status for r in results) for status in Status}
    print("scim2-tester:", counts)
