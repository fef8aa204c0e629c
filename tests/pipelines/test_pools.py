import shutil
import uuid
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import create_engine, make_url, text

from pipelines.pools import POOLS, prepare_pools
from pipelines.resources import DatabaseResource
from pipelines.sensors import domain_partitions

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def production_instance(tmp_path, monkeypatch, postgres_server_url):
    """A Dagster instance of deploy/dagster.yaml on a new PostgreSQL database."""
    name = f"dagster_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(postgres_server_url).set(drivername="postgresql+psycopg2", database=name)
    monkeypatch.setenv("DAGSTER_PG_URL", url.render_as_string(hide_password=False))
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield instance
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.mark.postgres
def test_the_domains_sensor_makes_the_pools_before_any_run_claims_them(
    production_instance, komeet_env
):
    storage = production_instance.event_log_storage
    assert not set(POOLS) & storage.get_concurrency_keys()

    with dg.build_sensor_context(
        instance=production_instance, resources={"database": DatabaseResource()}
    ) as context:
        domain_partitions(context)

    for pool in POOLS:
        assert pool in storage.get_concurrency_keys()
        assert storage.get_concurrency_info(pool).slot_count == 4  # deploy/dagster.yaml's
    prepare_pools(production_instance)  # the next ticks leave them as they are
    assert storage.get_concurrency_info(POOLS[0]).slot_count == 4
