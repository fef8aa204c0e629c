"""The Dagster resources check the settings with the core's checks, so a run fails with the
message the CLI prints for the same value."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from komeet_sync.komeet.client import KomeetError
from komeet_sync.settings import SettingError
from komeet_sync.store.database import DatabaseUnavailable
from pipelines.resources import DatabaseResource, KomeetResource


@pytest.mark.parametrize(
    ("url", "token", "timeout", "says"),
    [
        ("not a url", "t", 30.0, "KOMEET_SCIM_URL='not a url' is not an http(s) URL"),
        ("http://[::1/v2", "t", 30.0, "KOMEET_SCIM_URL='http://[::1/v2' is not an http(s) URL"),
        ("http://127.0.0.1:9/v2", "a b", 30.0, "KOMEET_SCIM_TOKEN holds a space"),
        ("http://127.0.0.1:9/v2", "t", 0.0, "is not a number of seconds above 0"),
    ],
)
def test_the_komeet_resource_refuses_what_the_cli_refuses(url, token, timeout, says):
    with pytest.raises(KomeetError) as refused:
        KomeetResource(url=url, token=token, timeout=timeout).client()
    assert says in str(refused.value)


def test_the_database_resource_names_the_variable(monkeypatch):
    monkeypatch.setenv("KOMEET_SYNC_DATABASE_URL", "mysql://komeet:s3cret@db/komeet")
    with pytest.raises(DatabaseUnavailable) as refused:
        DatabaseResource().engine()
    message = str(refused.value)
    assert "KOMEET_SYNC_DATABASE_URL='mysql://komeet:***@db/komeet'" in message
    assert "s3cret" not in message and "postgresql+psycopg://" in message


def test_a_schedule_that_is_not_cron_names_its_variable():
    loading = subprocess.run(
        [sys.executable, "-c", "import pipelines.definitions"],
        env=os.environ | {"KOMEET_SYNC_SCHEDULE": "every hour"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert loading.returncode != 0
    assert "KOMEET_SYNC_SCHEDULE='every hour' is not a cron expression of 5 fields" in (
        loading.stderr
    )


def test_the_approval_link_opens_the_launchpad_of_approve_plan_with_the_plan_filled_in(
    monkeypatch,
):
    from urllib.parse import parse_qs, urlsplit

    import yaml

    from pipelines.approvals import launchpad_link

    monkeypatch.delenv("KOMEET_SYNC_DAGSTER_URL", raising=False)
    link = launchpad_link("plan_0123", "pipelines.definitions")
    parts = urlsplit(link)
    assert parts.path == (
        "/locations/__repository__@pipelines.definitions/jobs/approve_plan/playground/setup"
    )
    config = yaml.safe_load(parse_qs(parts.query)["config"][0])
    assert config == {"ops": {"approve": {"config": {"plan_id": "plan_0123", "approved_by": ""}}}}

    monkeypatch.setenv("KOMEET_SYNC_DAGSTER_URL", "https://dagster.example.com/")
    assert launchpad_link("plan_0123").startswith("https://dagster.example.com/locations/")
    monkeypatch.setenv("KOMEET_SYNC_DAGSTER_URL", "dagster.example.com")
    with pytest.raises(SettingError, match=r"KOMEET_SYNC_DAGSTER_URL='dagster\.example\.com'"):
        launchpad_link("plan_0123")
