"""The SQL storage: migrations applied automatically, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
from sqlalchemy import create_engine, inspect, text

from komeet_sync.model.domain_config import DomainConfig
from komeet_sync.store.database import DatabaseUnavailable, open_database
from komeet_sync.store.domains import DomainConflict, DomainStore
from tests.support.console import error_lines


def test_migrations_create_the_schema_once(empty_database_url):
    database_url = empty_database_url
    empty = create_engine(database_url)
    assert inspect(empty).get_table_names() == []  # nothing until it is opened
    empty.dispose()
    engine = open_database(database_url)
    tables = set(inspect(engine).get_table_names())
    assert {"domain_configs", "domain_names", "alembic_version"} <= tables
    with engine.connect() as connection:
        assert connection.execute(text("select version_num from alembic_version")).scalar()
    DomainStore(engine).add(DomainConfig.create("acme.com", "scim"))
    # Opening again applies nothing and keeps the data.
    assert [c.domain for c in DomainStore(open_database(database_url)).list()] == ["acme.com"]


def test_the_database_refuses_a_second_claim_even_between_processes(database_url):
    """Two concurrent adds of the same domain: exactly one wins, the other is told why."""
    engine = open_database(database_url)
    outcomes: list[str] = []

    def add(source: str) -> None:
        try:
            DomainStore(open_database(database_url)).add(DomainConfig.create("acme.com", source))
            outcomes.append("added")
        except DomainConflict as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=add, args=("scim",)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("added") == 1
    assert all("already configured" in o or "meanwhile" in o for o in outcomes if o != "added")
    assert len(DomainStore(engine).list()) == 1


def test_the_default_database_is_sqlite_under_komeet_sync_home(tmp_path):
    env = {"KOMEET_SYNC_HOME": str(tmp_path / "state"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "komeet_sync", "domains", "add", "acme.com", "--source", "scim"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "state" / "komeet_sync.db").is_file()


def test_an_unreachable_database_is_a_clear_error(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("KOMEET_SYNC_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    code, _, err = cli("domains", "list")
    assert code == 1
    assert (
        "cannot open the database KOMEET_SYNC_DATABASE_URL='postgresql://nobody@127.0.0.1:1/none'"
        in err
    )
    assert len(error_lines(err)) == 1 and "Traceback" not in err  # psycopg's two lines joined


def test_a_malformed_database_url_is_a_clear_error():
    with pytest.raises(DatabaseUnavailable, match="the database URL 'not a url' is not a"):
        open_database("not a url")


def test_a_password_is_masked_even_in_a_url_that_does_not_parse():
    with pytest.raises(DatabaseUnavailable) as refused:
        open_database("postgresql://komeet:s3cret@db:port/komeet")
    assert "s3cret" not in str(refused.value) and "komeet:***@db:port" in str(refused.value)


@pytest.mark.postgres
def test_a_postgresql_database_that_does_not_exist_is_one_line(postgres_server_url):
    url = postgres_server_url.rsplit("/", 1)[0] + "/no_such_database"
    with pytest.raises(DatabaseUnavailable) as refused:
        open_database(url)
    message = str(refused.value)
    assert '"no_such_database" does not exist' in message and "\n" not in message
    assert "check that the server runs" in message
