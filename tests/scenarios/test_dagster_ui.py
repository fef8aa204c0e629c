"""The Dagster UI in a real browser (Debian's Chromium, driven by Playwright), on one
``dg dev -w workspace.yaml`` for the module (its start is most of the time), as the README
says to run it, with the production instance (deploy/dagster.yaml: Dagster's storage on
PostgreSQL, the queued run coordinator): an admin launches a backfill of two domains from
the Materialize dialog; finds a held run among the runs, as succeeded, and approves its plan
from the link in its metadata; and reads every domain's state from the catalog, quarantined
and disabled ones marked by a check. Dagster's embedded default (SQLite) runs under
``dagster dev`` in test_dagster_terminate and under the demo's webserver in test_demo.

The tests share the world and run in the file's order (pytest-xdist's ``--dist loadscope``
keeps a module on one worker); each also passes alone."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from sqlalchemy.engine import make_url

from komeet_sync.store.database import open_database
from komeet_sync.store.domains import DomainStore
from komeet_sync.store.plans import PlanStore
from pipelines.schedules import SCHEDULE_ENV
from tests.support import ROOT
from tests.support.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.support.dagster_server import DagsterDev, start
from tests.support.databases import copy_sqlite
from tests.support.google_workspace import start_workspace
from tests.support.komeet_server import KomeetTenant
from tests.support.provisioning import account_for, person
from tests.support.scim_server import ServedScim, serve, stop
from tests.support.world import build_world

DOMAINS = ["acme.com", "globex.com"]
# KOMEET_SYNC_SCREENSHOTS=1 copies each screenshot here too, to look at them after a run.
SCREENSHOTS_ENV = "KOMEET_SYNC_SCREENSHOTS"
SCREENSHOTS = Path("/tmp/ui-shots")


@dataclass
class World:
    """``dagster dev`` over the world of ``support.world`` (acme.com on Google, globex.com
    over SCIM), and what the tests read and change behind its back: Komeet, and the
    database of komeet-sync."""

    server: DagsterDev
    komeet: KomeetTenant
    scim: ServedScim


@pytest.fixture(scope="module")
def ui(
    tmp_path_factory, sqlite_template, service_account_info, komeet_server, postgres_databases
) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("dagster-ui")
    engine = open_database(copy_sqlite(sqlite_template, folder))
    scim_server, scim = serve(engine)
    komeet = komeet_server.tenant()
    workspaces = []

    def workspace(directory):
        workspaces.append(start_workspace(directory, folder, service_account_info))
        return workspaces[-1]

    try:
        with pytest.MonkeyPatch.context() as monkeypatch:
            build_world(monkeypatch, folder, workspace, komeet, scim, ("globex.com",))
            # The hourly schedule would launch runs of its own when a test spans an hour.
            monkeypatch.setenv(SCHEDULE_ENV, "0 0 1 1 *")
            # The approval links lead to this server, not to a UI the environment names.
            monkeypatch.delenv("KOMEET_SYNC_DAGSTER_URL", raising=False)
            env = {k: v for k, v in os.environ.items() if k.startswith(("KOMEET", "GOOGLE"))}
            home = folder / "dagster_home"
            home.mkdir()
            shutil.copy(ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
            # Dagster's own database, its URL with the driver named as deploy/dagster.yaml
            # asks.
            database = postgres_databases.create(prefix="dagster")
            url = make_url(postgres_databases.url(database)).set(drivername="postgresql+psycopg2")
            env["DAGSTER_PG_URL"] = url.render_as_string(hide_password=False)
            server = start(home, env, command="dg")
            try:
                # `dg dev` served the definitions without a warning, under their module's
                # name.
                log = server.log.read_text().splitlines()
                assert [line for line in log if "warning" in line.lower()] == []
                assert server.location() == "pipelines.definitions"
                # The first visit would show a "Join the Dagster community" dialog, at a
                # moment of its choosing (over a dialog of ours on a loaded machine): marked
                # as seen beforehand, as its Skip button does.
                server.graphql("mutation { setNuxSeen }")
                assert server.graphql("{ shouldShowNux }")["shouldShowNux"] is False
                wait_for_partitions(server, DOMAINS)
                yield World(server, komeet, scim)
            finally:
                server.stop()
                postgres_databases.drop(database)
    finally:
        for started in workspaces:
            started.emulator.stop()
        stop(scim_server)
        scim.endpoint.close()
        engine.dispose()


@pytest.fixture
def page(tmp_path):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        # The UI answers slowly on a loaded machine: a minute for each action and each
        # assertion (Playwright's default for the latter is 5 s), the tests' own longer waits
        # aside.
        page.set_default_timeout(60_000)
        expect.set_options(timeout=60_000)
        try:
            yield page
        finally:
            expect.set_options(timeout=5_000)
            page.screenshot(path=str(tmp_path / "last-page.png"))
            browser.close()


def test_a_backfill_of_two_domains_from_the_materialize_dialog(ui, page: Page):
    page.goto(f"{ui.server.url}/asset-groups")
    expect(page.get_by_text("Global asset lineage")).to_be_visible()
    for group in ("extract", "reports", "provisioning"):  # the graph's three groups
        expect(page.get_by_text(group, exact=True).first).to_be_visible()

    page.get_by_role("button", name=re.compile("Materialize all")).click()
    dialog = page.get_by_role("dialog").filter(has_text="Partition selection")
    expect(dialog).to_be_visible()
    for domain in DOMAINS:
        choose_partition(page, dialog, domain)
    page.keyboard.press("Escape")  # closes the list, not the dialog
    expect(dialog.get_by_text("2 partitions")).to_be_visible()
    dialog.get_by_role("button", name="Launch backfill").click()

    expect(page.get_by_text("Created backfill", exact=False).first).to_be_visible()
    backfill = ui.server.graphql(
        "{ partitionBackfillsOrError(limit: 1) { ... on PartitionBackfills { results { id } } } }"
    )["partitionBackfillsOrError"]["results"][0]["id"]
    page.goto(f"{ui.server.url}/runs/b/{backfill}?tab=runs")  # the backfill's page, its runs
    expect(page.get_by_text("partition: acme.com").first).to_be_visible(timeout=240_000)
    expect(page.get_by_text("partition: globex.com").first).to_be_visible(timeout=240_000)
    expect(page.get_by_text("Success", exact=True)).to_have_count(2, timeout=240_000)
    assert len(ui.komeet.users()) == 9  # acme.com's 6 and globex.com's 3, created


def test_a_held_run_succeeded_and_its_plan_is_approved_from_its_link(ui, page: Page, tmp_path):
    # Three accounts of acme.com whose people are not in its directory: 3 deactivations,
    # over its budget (20% of its active accounts, at least 0).
    for number in range(50, 53):
        ui.komeet.add(**account_for(person(number)))
    # Launched as the UI launches a run of a partition: with no tag of komeet-sync's.
    run_id = ui.server.launch("sync_domain", {"dagster/partition": "acme.com"})
    held = ui.server.finished(run_id)
    assert held["status"] == "SUCCESS" and held["tags"]["komeet/held"] == "true", held
    plan_id = held["tags"]["komeet/plan"]

    # The Runs page, filtered by the tag a held run gets: listed as succeeded, with its
    # plan, its domain's source and switch.
    page.goto(f"{ui.server.url}/runs?q[]=tag:komeet/held=true")
    row = run_row(page, run_id[:8])
    expect(row).to_contain_text("Success")
    for tag in ("komeet/held: true", f"komeet/plan: {plan_id}", "komeet/source: google"):
        expect(row).to_contain_text(tag)
    expect(row).to_contain_text("komeet/enabled: true")
    expect(page.get_by_text("Failure", exact=True)).to_have_count(0)
    screenshot(page, tmp_path, "a-held-run-succeeded")

    # Its page: the results' materialization says held, and links to the approval.
    row.get_by_role("link", name=f"run {run_id[:8]}").click()
    expect(page.get_by_text("RUN_SUCCESS").first).to_be_visible()
    page.get_by_placeholder("Filter…").fill("type:ASSET_MATERIALIZATION step:results")
    page.get_by_text("View full message").click()
    message = page.get_by_role("dialog")
    expect(metadata(message, "status")).to_contain_text("held")
    expect(metadata(message, "plan_id")).to_contain_text(plan_id)
    expect(metadata(message, "approve")).to_contain_text(f"komeet-sync plans approve {plan_id}")
    link = metadata(message, "approve in the UI").get_by_role("link").first
    expect(link).to_be_visible()
    screenshot(page, tmp_path, "b-held-run-approve-link")

    # The link opens approve_plan's launchpad in a new tab, the plan's id filled in.
    with page.context.expect_page() as opened:
        link.click()
    launchpad = opened.value
    launchpad.set_default_timeout(60_000)  # a new page: the fixture's default does not reach it
    editor = launchpad.locator(".CodeMirror")
    expect(editor).to_contain_text(f"plan_id: {plan_id}")
    expect(editor).to_contain_text("approved_by: ''  # your name")
    expect(launchpad.get_by_text("No errors")).to_be_visible()
    screenshot(launchpad, tmp_path, "c-approve-plan-launchpad")
    editor.click()
    launchpad.keyboard.press("Control+A")
    # One line of flow style: the editor indents and closes brackets as one types.
    launchpad.keyboard.insert_text(
        f"{{ops: {{approve: {{config: {{plan_id: {plan_id}, approved_by: Jane Admin}}}}}}}}"
    )
    expect(editor).to_contain_text("approved_by: Jane Admin")
    launchpad.get_by_role("button", name="Launch Run").click()

    launchpad.wait_for_url(re.compile(r"/runs/[0-9a-f-]{36}"))
    expect(launchpad.get_by_text("Success", exact=True).first).to_be_visible(timeout=240_000)
    approval = ui.server.finished(re.findall(r"/runs/([0-9a-f-]{36})", launchpad.url)[0])
    assert (approval["jobName"], approval["status"]) == ("approve_plan", "SUCCESS")
    assert PlanStore(ui.scim.engine).get(plan_id).approved_by == "Jane Admin"

    # The domain's next sync applies the plan it approved.
    applied = ui.server.finished(ui.server.launch("sync_domain", {"dagster/partition": "acme.com"}))
    assert applied["status"] == "SUCCESS" and "komeet/held" not in applied["tags"]
    assert applied["tags"]["komeet/plan"] == plan_id
    assert sum(not account["active"] for account in ui.komeet.users()) == 3
    results = ui.server.latest_metadata("results", "acme.com")
    assert (results["status"], results["plan_id"]) == ("applied", plan_id)
    assert results["run_id"] != run_id


def test_every_domain_at_a_glance_quarantined_and_disabled_ones_marked(ui, page: Page, tmp_path):
    for domain in DOMAINS:  # synced by the tests before, unless this one runs alone
        if ui.server.latest_metadata("results", domain) is None:
            run = ui.server.launch("sync_domain", {"dagster/partition": domain})
            assert ui.server.finished(run)["status"] == "SUCCESS"
    latest = {domain: ui.server.latest_metadata("results", domain) for domain in DOMAINS}
    # Applied, after the test before or alone; held, were the test before stopped short of
    # the approval: what this test reads is the page against the metadata, whichever.
    assert latest["acme.com"]["status"] in ("applied", "held")
    # Its IdP's pushes also launch a sync of globex.com (scim_pushes), the second of which
    # has nothing to do.
    assert latest["globex.com"]["status"] in ("applied", "nothing_to_do")

    # The results asset's partitions: each domain's latest status, as its metadata say.
    page.goto(f"{ui.server.url}/assets/results?view=partitions")
    for domain, source in (("globex.com", "scim"), ("acme.com", "google")):
        page.get_by_text(domain, exact=True).first.click()
        expect(metadata(page, "domain")).to_contain_text(domain)
        expect(metadata(page, "status")).to_contain_text(latest[domain]["status"])
        expect(metadata(page, "source")).to_contain_text(source)
        expect(metadata(page, "plan_id")).to_contain_text(latest[domain]["plan_id"])
        screenshot(page, tmp_path, f"d-results-partition-{domain}")

    # Every sync run says its domain's source and switch, among its tags.
    page.goto(f"{ui.server.url}/runs?q[]=tag:komeet/source=scim")
    # The backfill's run among them: launched by the UI with no tag of komeet-sync's, tagged
    # by its first step.
    page.get_by_text("Show runs within backfills", exact=True).click()  # the switch's label
    expect(page.get_by_role("checkbox", name="Show runs within backfills")).to_be_checked()
    row = run_row(page, "partition: globex.com")
    expect(row).to_contain_text("komeet/source: scim")
    expect(row).to_contain_text("komeet/enabled: true")

    domains = DomainStore(ui.scim.engine)
    domains.quarantine("globex.com", "5 syncs failed in a row")
    domains.set_enabled("acme.com", False)

    # The domain_states sensor (every 30 s) evaluates every_domain_writes: failed, WARN.
    page.goto(f"{ui.server.url}/assets/results?view=checks&checkDetail=every_domain_writes")
    deadline = time.monotonic() + 180
    while True:
        try:
            expect(metadata(page, "quarantined")).to_contain_text("globex.com", timeout=10_000)
            break
        except AssertionError:
            assert time.monotonic() < deadline, "every_domain_writes never named globex.com"
            page.reload()
    expect(metadata(page, "disabled")).to_contain_text("acme.com")
    expect(page.get_by_text("Failed").first).to_be_visible()
    screenshot(page, tmp_path, "e-every-domain-writes-failed")
    metadata(page, "not writing").get_by_text("[Show Markdown]").click()
    table = page.get_by_role("dialog")
    expect(table).to_contain_text("5 syncs failed in a row")
    expect(table).to_contain_text("komeet-sync domains release globex.com")
    expect(table).to_contain_text("komeet-sync domains enable acme.com")
    screenshot(page, tmp_path, "e-every-domain-writes-table")


def run_row(page: Page, text: str) -> Locator:
    """The Runs page's row that holds ``text`` (a run's id, its partition): the innermost
    block with that text and a View link, for the list is a grid of blocks, not a table."""
    view = page.get_by_role("link", name="View", exact=True)
    return page.locator("div").filter(has_text=text).filter(has=view).last


def metadata(scope: Page | Locator, label: str) -> Locator:
    """The row of a metadata table whose label is ``label``."""
    page = scope if isinstance(scope, Page) else scope.page
    return scope.get_by_role("row").filter(has=page.get_by_role("cell", name=label, exact=True))


def screenshot(page: Page, tmp_path: Path, name: str) -> None:
    """A screenshot in the test's folder, and under SCREENSHOTS when asked for."""
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path))
    if os.environ.get(SCREENSHOTS_ENV):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, SCREENSHOTS / path.name)


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


def wait_for_partitions(server: DagsterDev, keys: list[str]) -> None:
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
