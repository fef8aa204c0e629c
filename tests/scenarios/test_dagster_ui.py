"""The Dagster UI in a real browser (Debian's Chromium, driven by Playwright): an admin opens
the asset graph, launches a backfill of two domains from the Materialize dialog, and sees
both runs succeed."""

from __future__ import annotations

import os
import re
import time

import pytest
from playwright.sync_api import Page, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.support.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.support.dagster_server import start
from tests.support.world import build_world


@pytest.fixture
def ui(monkeypatch, tmp_path, workspace, komeet, scim):
    build_world(monkeypatch, tmp_path, workspace, komeet, scim, ("globex.com",))
    env = {key: value for key, value in os.environ.items() if key.startswith(("KOMEET", "GOOGLE"))}
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    server = start(home, env)
    yield server
    server.stop()


@pytest.fixture
def page(tmp_path):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(60_000)
        try:
            yield page
        finally:
            page.screenshot(path=str(tmp_path / "last-page.png"))
            browser.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_backfill_of_two_domains_from_the_materialize_dialog(ui, page: Page, komeet):
    wait_for_partitions(ui, ["acme.com", "globex.com"])

    # The first visit would show a "Join the Dagster community" dialog, at a moment of its
    # choosing (over the materialize dialog on a loaded machine): marked as seen beforehand,
    # as its Skip button does.
    ui.graphql("mutation { setNuxSeen }")
    assert ui.graphql("{ shouldShowNux }")["shouldShowNux"] is False
    page.goto(f"{ui.url}/asset-groups")
    expect(page.get_by_text("Global asset lineage")).to_be_visible()
    for group in ("extract", "reports", "provisioning"):  # the graph's three groups
        expect(page.get_by_text(group, exact=True).first).to_be_visible()

    page.get_by_role("button", name=re.compile("Materialize all")).click()
    dialog = page.get_by_role("dialog").filter(has_text="Partition selection")
    expect(dialog).to_be_visible(timeout=60_000)  # the UI answers slowly on a loaded machine
    for domain in ("acme.com", "globex.com"):
        choose_partition(page, dialog, domain)
    page.keyboard.press("Escape")  # closes the list, not the dialog
    expect(dialog.get_by_text("2 partitions")).to_be_visible()
    dialog.get_by_role("button", name="Launch backfill").click()

    expect(page.get_by_text("Created backfill", exact=False).first).to_be_visible()
    backfill = ui.graphql(
        "{ partitionBackfillsOrError(limit: 1) { ... on PartitionBackfills { results { id } } } }"
    )["partitionBackfillsOrError"]["results"][0]["id"]
    page.goto(f"{ui.url}/runs/b/{backfill}?tab=runs")  # the backfill's page, its runs
    expect(page.get_by_text("partition: acme.com").first).to_be_visible(timeout=240_000)
    expect(page.get_by_text("partition: globex.com").first).to_be_visible(timeout=240_000)
    expect(page.get_by_text("Success", exact=True)).to_have_count(2, timeout=240_000)
    assert len(komeet.users()) == 9  # acme.com's 6 and globex.com's 3, created


def choose_partition(page: Page, dialog, domain: str) -> None:
    """Tick a domain in the partition selector's list, opening the list if it is closed."""
    option = page.get_by_text(domain, exact=True).filter(visible=True).first
    for _ in range(5):
        if not option.is_visible():
            dialog.locator("[aria-haspopup=dialog]").first.click()
        try:
            option.click(timeout=10_000)
            return
        except PlaywrightTimeout:
            continue
    raise AssertionError(f"{domain} never showed in the partition selector")


def wait_for_partitions(server, keys: list[str]) -> None:
    """The domain_partitions sensor adds the configured domains within its interval."""
    deadline = time.monotonic() + 120
    while True:
        partitions = server.graphql(
            '{ assetNodes(assetKeys: [{path: ["joiners"]}]) { partitionKeys } }'
        )["assetNodes"][0]["partitionKeys"]
        if set(keys) <= set(partitions):
            return
        assert time.monotonic() < deadline, f"partitions {partitions}, not {keys}"
        time.sleep(1)
