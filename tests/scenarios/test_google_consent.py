"""A Workspace admin authorizes a domain in a real browser (Debian's Chromium, driven by
Playwright): `komeet-sync google authorize` runs the loopback flow with its browser opening
off, the admin opens the printed address, picks their account and clicks Allow on the
emulator's consent page; the command stores the consent sealed and the domain is read with
it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from playwright.sync_api import expect, sync_playwright
from sqlalchemy import create_engine, text

from tests.support.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.support.google_workspace import acme_example, consent_address

ADMIN = "alice.martin@acme.com"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_admin_consents_in_a_browser(cli, workspace, komeet_env, monkeypatch, tmp_path):
    google = workspace(acme_example(ADMIN))
    google.env(monkeypatch)
    google.oauth_env(monkeypatch)
    monkeypatch.delenv("GOOGLE_SERVICE_ACCOUNT_FILE")  # only the consent can read it
    code, _, err = cli("domains", "add", "acme.com", "--source", "google",
                       "--admin-email", ADMIN, "--group", "all@acme.com")  # fmt: skip
    assert code == 0, err
    command = subprocess.Popen(
        [sys.executable, "-m", "komeet_sync", "google", "authorize", "acme.com", "--no-browser"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        printed = ""
        while "/o/oauth2/auth?" not in printed:  # the command prints the address, then waits
            line = command.stdout.readline()
            assert line, command.stderr.read()
            printed += line
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                page.set_default_timeout(30_000)
                page.goto(consent_address(printed))
                expect(page.locator("#scopes")).to_contain_text(
                    "admin.directory.user.readonly", timeout=30_000
                )
                page.fill("#email", ADMIN)
                page.click("#allow")
                # Redirected to the command's loopback server, which got the code.
                expect(page.locator("body")).to_contain_text(
                    "komeet-sync received the consent", timeout=30_000
                )
            finally:
                page.screenshot(path=str(tmp_path / "last-page.png"))
                browser.close()
        out, err = command.communicate(timeout=60)
    finally:
        command.kill()
    assert command.returncode == 0, err
    assert f"acme.com is authorized by {ADMIN} on " in out

    with create_engine(komeet_env).connect() as connection:
        [row] = connection.execute(text("SELECT * FROM google_authorizations")).mappings()
    assert row["admin_email"] == ADMIN and row["refresh_token_sealed"].startswith("gAAAA")
    code, out, err = cli("google", "check", "acme.com")
    assert code == 0, err
    assert f"authorized by {ADMIN} on " in out and "group all@acme.com: 13 users" in out
