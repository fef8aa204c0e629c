from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from komeet_sync.cli import main
from tests.support.databases import PostgresDatabases, copy_sqlite, migrated_sqlite
from tests.support.postgres_server import PostgresServer
from tests.support.redis_server import RedisServer


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    configured = os.environ.get("KOMEET_SYNC_TEST_POSTGRES_URL")
    if configured:
        yield configured
        return
    server = PostgresServer()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis server of the session's own (the Celery broker), as a URL."""
    server = RedisServer()
    try:
        yield server.start()
    finally:
        server.stop()


DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A SQLite file migrated to the head, once per session (per xdist worker)."""
    return migrated_sqlite(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture
def sqlite_url(sqlite_template, tmp_path) -> str:
    """A fresh SQLite database migrated to the head (a copy of the session's), for the tests
    that run on the embedded default only."""
    return copy_sqlite(sqlite_template, tmp_path)


@pytest.fixture(scope="session")
def postgres_databases(postgres_server_url) -> Iterator[PostgresDatabases]:
    databases = PostgresDatabases(postgres_server_url)
    yield databases
    databases.close()


@pytest.fixture(scope="session")
def postgres_template(postgres_databases) -> Iterator[str]:
    """A PostgreSQL database migrated to the head, once per session (per xdist worker: its
    name is its own), that each test's database copies."""
    name = postgres_databases.migrated_template()
    yield name
    postgres_databases.drop(name)


@pytest.fixture(params=DATABASES)
def database_url(request, tmp_path) -> Iterator[str]:
    """A fresh database migrated to the head: a copy of the session's SQLite file, or a new
    PostgreSQL database made from the session's template."""
    if request.param == "sqlite":
        yield copy_sqlite(request.getfixturevalue("sqlite_template"), tmp_path)
        return
    databases = request.getfixturevalue("postgres_databases")
    with databases.database(template=request.getfixturevalue("postgres_template")) as url:
        yield url


@pytest.fixture(params=DATABASES)
def empty_database_url(request, tmp_path) -> Iterator[str]:
    """A fresh, empty database (no table, no revision), for the tests of the migrations:
    a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'komeet_sync.db'}"
        return
    with request.getfixturevalue("postgres_databases").database() as url:
        yield url


@pytest.fixture
def komeet_env(monkeypatch, tmp_path, database_url) -> str:
    """The CLI's environment pointed at a fresh database."""
    monkeypatch.setenv("KOMEET_SYNC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KOMEET_SYNC_DATABASE_URL", database_url)
    return database_url


class Cli:
    """Runs `komeet-sync` in this process, as a user would type it."""

    def __init__(self, capsys) -> None:
        self.capsys = capsys

    def __call__(self, *args: str) -> tuple[int, str, str]:
        code = main([str(arg) for arg in args])
        captured = self.capsys.readouterr()
        return code, captured.out, captured.err

    def json(self, *args: str):
        code, out, err = self(*args, "--json")
        assert code == 0, err
        return json.loads(out)


@pytest.fixture
def cli(capsys) -> Cli:
    return Cli(capsys)


@pytest.fixture(scope="session")
def service_account_info() -> dict:
    """A throwaway RSA service-account key, made once: generating one takes a while."""
    from komeet_sync.emulators.service_account import service_account_key

    return service_account_key("http://127.0.0.1:9/token")


@pytest.fixture
def workspace(tmp_path, service_account_info):
    """Start a Google Workspace emulator for a directory; stopped after the test."""
    from tests.support.google_workspace import start_workspace

    started = []

    def start(directory, **options):
        found = start_workspace(directory, tmp_path, service_account_info, **options)
        started.append(found)
        return found

    yield start
    for found in started:
        found.emulator.stop()


@pytest.fixture
def scim(database_url):
    """The SCIM endpoint on loopback over a fresh database (SQLite, then PostgreSQL)."""
    from komeet_sync.store.database import open_database
    from tests.support.scim_server import serve, stop

    engine = open_database(database_url)
    server, served = serve(engine)
    yield served
    stop(server)
    served.endpoint.close()
    engine.dispose()


@pytest.fixture(scope="session")
def komeet_server():
    """The Komeet stand-in: scim2-server announcing Bulk and filters (its defaults)."""
    from tests.support.komeet_server import start

    server = start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def plain_komeet_server(tmp_path_factory):
    """A Komeet stand-in that announces neither Bulk nor filters."""
    from tests.support.komeet_server import PLAIN_CONFIG, start

    server = start(config=PLAIN_CONFIG, tmp=tmp_path_factory.mktemp("plain-komeet"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def small_bulk_komeet_server(tmp_path_factory):
    """A Komeet stand-in whose Bulk requests carry at most 10 operations."""
    from tests.support.komeet_server import SMALL_BULK_CONFIG, start

    server = start(config=SMALL_BULK_CONFIG, tmp=tmp_path_factory.mktemp("small-bulk-komeet"))
    yield server
    server.stop()


@pytest.fixture
def komeet(komeet_server):
    """A fresh, empty Komeet (a tenant of the stand-in of its own)."""
    return komeet_server.tenant()


@pytest.fixture
def world(monkeypatch, tmp_path, workspace, komeet, scim):
    """The world of ``support.world`` (acme.com on Google, globex.com pushed over SCIM, an
    empty Komeet) and an ephemeral Dagster instance with both domains' partitions."""
    import dagster as dg

    from pipelines.partitions import domains
    from tests.support.world import build_world

    people = build_world(monkeypatch, tmp_path, workspace, komeet, scim)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(domains.name, ["acme.com", "globex.com"])
    return instance, people, scim


# The slowest modules first, the slowest of all at the top (their time in a CI run, quiet
# machine): `make test` hands whole modules to its workers (pytest-xdist, --dist loadscope
# --no-loadscope-reorder: xdist's own order puts the modules with the most tests first, the
# scenarios' few long ones last), each taking the next module when it is done, and a long
# module started last would finish alone.
SLOWEST = (
    "tests/scenarios/test_demo.py",  # 340 s: two demos, the notebooks
    "tests/scenarios/test_dagster_ui.py",  # 200 s: dg dev on PostgreSQL, Chromium
    "tests/sources/scim/test_serving.py",  # 170 s: scim serve's processes
    "tests/komeet/test_apply_crash.py",  # 95 s: applies killed and resumed
    "tests/scenarios/test_celery.py",  # 95 s: Redis and two Celery workers
    "tests/scenarios/test_dagster_terminate.py",  # 90 s: dagster dev, a slow Komeet
    "tests/cli/test_console.py",  # 75 s: terminals and signals
    "tests/cli/test_scim.py",  # 70 s
    "tests/pipelines/test_assets.py",
    "tests/sources/scim/test_storage.py",  # 216 tests on both databases
    "tests/engine/test_reconcile_properties.py",
    "tests/runs/test_explain.py",
    "tests/komeet/test_key_reads.py",
    "tests/sources/scim/test_hostile.py",
    "tests/scenarios/",
    "tests/runs/test_incremental.py",
    "tests/sources/scim/test_fuzz.py",
    "tests/sources/scim/test_quirks.py",
)


def slowness(item: pytest.Item) -> int:
    """The rank of the item's module among SLOWEST; after them all when it is not there."""
    return next(
        (rank for rank, prefix in enumerate(SLOWEST) if item.nodeid.startswith(prefix)),
        len(SLOWEST),
    )


# Command-line modules tested on the embedded default (SQLite) only: they parse and print what
# the layers below return, and those layers are tested on both databases (store/,
# sources/scim/, runs/, pipelines/, the scenarios), as are the `sync` and `scim` commands.
# KOMEET_SYNC_TEST_EVERY_DATABASE=1 runs these on PostgreSQL too.
SQLITE_ONLY = tuple(
    f"tests/cli/test_{name}.py"
    for name in (
        "domains",
        "errors",
        "explain",
        "google",
        "notifications",
        "plans",
        "prune",
        "quarantine",
        "status",
        "sync_person",
    )
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=slowness)  # stable: each module's tests keep their order
    if os.environ.get("KOMEET_SYNC_TEST_EVERY_DATABASE"):
        return
    on_postgres = [
        item
        for item in items
        if item.nodeid.startswith(SQLITE_ONLY)
        and getattr(item, "callspec", None) is not None
        and item.callspec.params.get("database_url") == "postgresql"
    ]
    if on_postgres:
        config.hook.pytest_deselected(items=on_postgres)
        dropped = set(map(id, on_postgres))
        items[:] = [item for item in items if id(item) not in dropped]
