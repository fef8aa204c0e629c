"""Notifications as an operator sets them up and receives them: `domains set --notify` with
Apprise URLs, a held plan e-mailed to a real SMTP server (aiosmtpd) once, a failed sync
posted to a generic JSON webhook (a real HTTP server), a receiver that is down costing a
try and never the sync, a quarantine and its release e-mailed, and the URLs' secrets never
in clear."""

from __future__ import annotations

import re

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from komeet_sync.analysis.loader import Loader
from komeet_sync.notify.delivery import MOST_ATTEMPTS, deliver_pending
from komeet_sync.store.database import open_database
from tests.support.provisioning import DOMAIN
from tests.support.receivers import free_port, smtp_server, webhook


@pytest.fixture
def mailbox():
    mailbox, controller = smtp_server()
    yield mailbox
    controller.stop()


@pytest.fixture
def hook():
    receiver = webhook()
    yield receiver
    receiver.close()


def test_a_held_plan_is_emailed_once_with_the_command_that_approves_it(
    cli, three_leavers, mailbox, tmp_path
):
    code, out, err = cli("domains", "set", DOMAIN, "--notify", mailbox.url(password="s3cr3t-pw"))
    assert code == 0, err
    assert "Events of acme.com go to mailto://komeet:****@127.0.0.1" in out
    assert "s3cr3t-pw" not in out

    code, out, err = cli("sync", DOMAIN)

    assert code == 3, err
    plan_id = next(word for word in out.split() if word.startswith("plan_"))
    [message] = mailbox.wait(1)
    assert message["To"] == "it@acme.com"
    assert message["Subject"] == (
        f"komeet-sync: {DOMAIN}: plan {plan_id} held (3 deactivations, budget 1)"
    )
    body = message.get_body(("plain",)).get_content()
    assert f"A sync of {DOMAIN} made plan {plan_id} (3 actions)" in body
    assert "Why: 3 deactivations planned, 2 over the budget of 1" in body
    assert f"Approve it:  komeet-sync plans approve {plan_id} --by NAME" in body
    assert f"Review it:   komeet-sync plans show {plan_id}" in body
    assert re.search(rf"Notified: {DOMAIN}: plan {plan_id} held .*: sent to mailto://", err)
    (tmp_path / "received.eml").write_bytes(bytes(message))  # as received, for whoever debugs

    assert cli("sync", DOMAIN)[0] == 3  # the same plan, held again: told once
    assert len(mailbox.wait(2, timeout=1)) == 1

    code, out, _ = cli("status")
    assert code == 3
    assert f"{DOMAIN}: plan {plan_id} held" in out and "[sent to mailto://komeet:****@" in out
    [event] = cli.json("domains", "show", DOMAIN)["recent_events"]
    assert event["kind"] == "plan held" and event["details"]["plan_id"] == plan_id
    assert event["delivered_at"] is not None
    told = Loader().events(DOMAIN)  # as a notebook reads them
    assert told[["kind", "subject"]].values.tolist() == [["plan held", message["Subject"][13:]]]


def test_a_failed_sync_is_posted_to_the_default_webhook_naming_the_setting(
    cli, acme, hook, monkeypatch
):
    _, serve = acme
    serve([])
    monkeypatch.setenv("KOMEET_SYNC_NOTIFY", hook.url("/alerts"))
    monkeypatch.setenv("KOMEET_SCIM_URL", f"http://127.0.0.1:{free_port()}/scim/v2")

    code, _, err = cli("sync", DOMAIN)

    assert code == 1 and "Traceback" not in err
    [post] = hook.wait(1)
    assert post["path"] == "/alerts"
    assert post["title"].startswith(f"komeet-sync: {DOMAIN}: sync failed: ")
    assert "KOMEET_SCIM_URL" in post["message"]  # the setting to fix
    assert f"`komeet-sync sync {DOMAIN}`" in post["message"]
    shown = cli.json("domains", "show", DOMAIN)
    assert shown["notify_from"] == "KOMEET_SYNC_NOTIFY"

    assert cli("sync", DOMAIN)[0] == 1  # the same cause again the same day: told once
    assert len(hook.wait(2, timeout=1)) == 1


def test_a_receiver_that_is_down_costs_a_try_never_the_sync(cli, three_leavers, komeet_env):
    port = free_port()
    cli("domains", "set", DOMAIN, "--notify", f"json://127.0.0.1:{port}/down")

    code, _, err = cli("sync", DOMAIN)

    assert code == 3  # held, as without notifications
    assert "Notified: " in err and "sent to 0 of 1; json://127.0.0.1" in err
    engine = open_database(komeet_env)
    receiver = webhook(port)  # it comes back: the next sender sends the event
    try:
        [delivery] = deliver_pending(engine)
        assert delivery.settled and delivery.outcome.startswith("sent to json://")
        [post] = receiver.wait(1)
        assert "held" in post["title"]
        assert deliver_pending(engine) == []  # sent once
    finally:
        receiver.close()


def test_an_event_is_tried_a_bounded_number_of_times(cli, three_leavers, komeet_env):
    cli("domains", "set", DOMAIN, "--notify", f"json://127.0.0.1:{free_port()}/down")
    cli("sync", DOMAIN)  # the first try
    engine = open_database(komeet_env)
    for _ in range(MOST_ATTEMPTS - 1):
        [delivery] = deliver_pending(engine)
    assert delivery.settled and "sent to 0 of 1" in delivery.outcome
    assert deliver_pending(engine) == []


def test_urls_sealed_under_another_key_are_a_clear_error_and_are_kept(
    cli, three_leavers, monkeypatch
):
    assert cli("domains", "set", DOMAIN, "--notify", "json://127.0.0.1:9/komeet")[0] == 0
    monkeypatch.setenv("KOMEET_SYNC_SECRET_KEY", Fernet.generate_key().decode())
    code, _, err = cli("domains", "show", DOMAIN)
    assert code == 1 and "Traceback" not in err
    assert (
        "sealed under another key than KOMEET_SYNC_SECRET_KEY's: set KOMEET_SYNC_SECRET_KEY to"
        in err
    )
    monkeypatch.setenv("KOMEET_SYNC_SECRET_KEY", "not-a-key")
    code, _, err = cli("domains", "show", DOMAIN)
    assert code == 1 and "KOMEET_SYNC_SECRET_KEY is not a key: give a Fernet key" in err
    monkeypatch.delenv("KOMEET_SYNC_SECRET_KEY")
    assert cli.json("domains", "show", DOMAIN)["notify"] == ["json://127.0.0.1:9/komeet"]


def test_a_key_is_rotated_by_putting_the_new_one_first_then_resealing(
    cli, three_leavers, monkeypatch
):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setenv("KOMEET_SYNC_SECRET_KEY", old)
    assert cli("domains", "set", DOMAIN, "--notify", "json://127.0.0.1:9/komeet")[0] == 0
    monkeypatch.setenv("KOMEET_SYNC_SECRET_KEY", f"{new},{old}")
    assert cli.json("domains", "show", DOMAIN)["notify"] == ["json://127.0.0.1:9/komeet"]

    code, out, err = cli("domains", "reseal")

    assert code == 0, err
    assert "the notification URLs of 1 domain and 0 Google refresh tokens" in out
    monkeypatch.setenv("KOMEET_SYNC_SECRET_KEY", new)  # the old key dropped
    assert cli.json("domains", "show", DOMAIN)["notify"] == ["json://127.0.0.1:9/komeet"]


def test_notification_urls_are_sealed_at_rest_and_masked_everywhere(cli, three_leavers, komeet_env):
    url = "json://hook-user:hunter2-token@127.0.0.1:9/komeet"
    assert cli("domains", "set", DOMAIN, "--notify", url)[0] == 0
    engine = open_database(komeet_env)
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT notify_sealed FROM domain_configs")).scalar()
    assert stored and "hunter2" not in stored and "hook-user" not in stored
    code, out, _ = cli("domains", "show", DOMAIN)
    assert "json://hook-user:****@127.0.0.1:9/komeet" in out and "hunter2" not in out
    _, _, err = cli("sync", DOMAIN)
    assert "hunter2" not in err and "****" in err

    code, out, _ = cli("domains", "set", DOMAIN, "--no-notify")
    assert code == 0 and "go to nowhere (none: set them with" in out


@pytest.mark.parametrize(
    "url", ["slack:/missing-slash", "nonsense://x/y", "json://", "http ://spaces"]
)
def test_a_url_apprise_cannot_send_to_is_refused_in_a_line(cli, acme, url):
    _, serve = acme
    serve([])
    code, out, err = cli("domains", "set", DOMAIN, "--notify", url)
    assert code == 1 and out == ""
    assert "is not a notification URL Apprise can send to: give one like mailto://" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert cli.json("domains", "show", DOMAIN)["notify"] == []  # nothing stored


def test_a_quarantine_and_its_release_are_emailed(cli, failing_plan, mailbox, tmp_path):
    _, plan_id = failing_plan
    cli("domains", "set", DOMAIN, "--notify", mailbox.url())

    code, _, err = cli("apply", plan_id)

    assert code == 1 and "is now QUARANTINED" in err
    [quarantined] = mailbox.wait(1)
    assert quarantined["Subject"] == (
        f"komeet-sync: {DOMAIN} quarantined: 10 of 12 actions failed (83%)"
    )
    body = quarantined.get_body(("plain",)).get_content()
    assert f"komeet-sync domains release {DOMAIN}" in body
    assert "the account is no longer in Komeet" in body  # the commonest cause

    assert cli("domains", "release", DOMAIN)[0] == 0

    [_, released] = mailbox.wait(2)
    assert released["Subject"].startswith(f"komeet-sync: {DOMAIN} released")
    for number, message in enumerate(mailbox.messages):  # as received, for whoever debugs
        (tmp_path / f"received-{number}.eml").write_bytes(bytes(message))
