"""Where komeet-sync keeps its state, from the environment.

``KOMEET_SYNC_HOME`` (default ``./.komeet_sync/``) holds the embedded SQLite database and every
sync's results (``syncs/``); ``KOMEET_SYNC_DATABASE_URL`` selects another database
(PostgreSQL: ``postgresql+psycopg://user@host/dbname``); ``KOMEET_SYNC_RESULTS`` another
place for the results (a folder, or an fsspec URL such as ``s3://bucket/komeet``);
``KOMEET_SYNC_PUBLIC_URL`` is the address IdPs reach the SCIM endpoint at (default
``http://127.0.0.1:8000``); ``KOMEET_SYNC_NOTIFY`` the notification URLs of domains that have
none of their own (``komeet_sync.notify``); ``KOMEET_SYNC_SECRET_KEY`` the keys that seal the
secrets komeet-sync keeps to use again (``store.sealed``); ``KOMEET_SYNC_RETENTION_DAYS`` how
many days the SCIM request log and past syncs' results are kept (default 90,
``runs.retention``); ``KOMEET_SYNC_EXECUTOR`` where a Dagster run's steps execute
(``in_process``, the default, or ``celery``: on Celery workers, reached through the broker
``KOMEET_SYNC_CELERY_BROKER``; docs/scaling.md); ``KOMEET_SYNC_DAGSTER_URL`` where admins open
the Dagster UI, for the links of its metadata (unset: paths on the UI's own host).

A value that cannot be used is refused where it is used, with one line naming the variable,
its value and what to set instead: SettingError here, the store's own errors for the
database and the results.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

HOME_ENV = "KOMEET_SYNC_HOME"
DATABASE_URL_ENV = "KOMEET_SYNC_DATABASE_URL"
RESULTS_ENV = "KOMEET_SYNC_RESULTS"
PUBLIC_URL_ENV = "KOMEET_SYNC_PUBLIC_URL"
NOTIFY_ENV = "KOMEET_SYNC_NOTIFY"
SECRET_KEY_ENV = "KOMEET_SYNC_SECRET_KEY"
RETENTION_ENV = "KOMEET_SYNC_RETENTION_DAYS"
EXECUTOR_ENV = "KOMEET_SYNC_EXECUTOR"
CELERY_BROKER_ENV = "KOMEET_SYNC_CELERY_BROKER"
DAGSTER_URL_ENV = "KOMEET_SYNC_DAGSTER_URL"
DEFAULT_HOME = ".komeet_sync"
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"
DEFAULT_RETENTION_DAYS = 90
IN_PROCESS = "in_process"
CELERY = "celery"
EXECUTORS = (IN_PROCESS, CELERY)
MAX_RETENTION_DAYS = 36_500  # a century: further back than any date a cutoff can name


class SettingError(ValueError):
    """An environment variable holds a value komeet-sync cannot use; the message names the
    variable, the value and what to set."""


def home() -> Path:
    return Path(os.environ.get(HOME_ENV) or DEFAULT_HOME).expanduser()


def home_setting() -> str:
    """``KOMEET_SYNC_HOME`` and its value, as a message names them."""
    return f"{HOME_ENV} (now {str(home())!r})"


def database_url() -> str:
    configured = os.environ.get(DATABASE_URL_ENV)
    if configured:
        return configured
    return f"sqlite:///{(home() / 'komeet_sync.db').resolve()}"


def database_url_configured() -> bool:
    return bool(os.environ.get(DATABASE_URL_ENV))


def results_url(state: Path | None = None) -> str:
    """Where every sync's results are stored (``store.results``): ``KOMEET_SYNC_RESULTS``,
    else ``syncs/`` in ``state`` (default ``KOMEET_SYNC_HOME``). A folder is made absolute,
    so that a plan's reports are found from any working directory."""
    configured = os.environ.get(RESULTS_ENV)
    if configured and "://" in configured:
        return configured
    return str(
        (Path(configured).expanduser() if configured else (state or home()) / "syncs").resolve()
    )


def results_setting() -> str:
    """The variables that place the results, as a message says to set them."""
    return RESULTS_ENV if os.environ.get(RESULTS_ENV) else f"{home_setting()} or {RESULTS_ENV}"


def public_url() -> str:
    """``KOMEET_SYNC_PUBLIC_URL``: where IdPs reach the SCIM endpoint, an absolute http(s)
    URL; SettingError otherwise."""
    value = (os.environ.get(PUBLIC_URL_ENV) or DEFAULT_PUBLIC_URL).strip()
    if not is_http_url(value):
        raise SettingError(
            f"{PUBLIC_URL_ENV}={value!r} is not an absolute http(s) URL; set it to the address "
            "Entra ID or Okta reach this machine's SCIM endpoint at, like "
            f"https://sync.example.com (default {DEFAULT_PUBLIC_URL})"
        )
    return value.rstrip("/")


def dagster_url() -> str:
    """``KOMEET_SYNC_DAGSTER_URL``: where admins open the Dagster UI, an absolute http(s)
    URL, or "" when unset (links are then paths on the UI's own host); SettingError
    otherwise."""
    value = (os.environ.get(DAGSTER_URL_ENV) or "").strip()
    if value and not is_http_url(value):
        raise SettingError(
            f"{DAGSTER_URL_ENV}={value!r} is not an absolute http(s) URL; set it to the address "
            "admins open the Dagster UI at, like https://dagster.example.com, or unset it"
        )
    return value.rstrip("/")


def retention_days() -> int:
    """``KOMEET_SYNC_RETENTION_DAYS``: how many days the SCIM request log and past syncs'
    results are kept, a whole number from 1 to 36,500 (default 90); SettingError otherwise."""
    value = (os.environ.get(RETENTION_ENV) or "").strip()
    if not value:
        return DEFAULT_RETENTION_DAYS
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_RETENTION_DAYS:
        raise SettingError(
            f"{RETENTION_ENV}={value!r} is not a whole number of days from 1 to "
            f"{MAX_RETENTION_DAYS:,}; set it to how many days the SCIM request log and past "
            f"syncs' results are kept, like 30, or unset it to keep them "
            f"{DEFAULT_RETENTION_DAYS} days"
        )
    return int(value)


def retention_setting() -> str:
    """``KOMEET_SYNC_RETENTION_DAYS`` and where its value came from, as a message names it."""
    value = (os.environ.get(RETENTION_ENV) or "").strip()
    return f"{RETENTION_ENV}={value}" if value else f"{RETENTION_ENV} unset: the default"


def is_http_url(value: str) -> bool:
    """An absolute http or https URL with a host (and a valid port, if any), no space,
    no query and no fragment: the rule for every base URL komeet-sync is given."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and not any(character.isspace() for character in value)
        and not parts.query
        and not parts.fragment
    )


def default_notify_urls() -> tuple[str, ...]:
    """``KOMEET_SYNC_NOTIFY``: notification URLs separated by spaces or commas (checked
    where they are used, ``komeet_sync.notify``)."""
    value = os.environ.get(NOTIFY_ENV) or ""
    return tuple(url for url in value.replace(",", " ").split() if url)


def secret_keys() -> tuple[str, ...]:
    """``KOMEET_SYNC_SECRET_KEY``: the keys it holds, separated by commas, newest first
    (checked where they are used, ``store.sealed``); none when it is not set."""
    value = os.environ.get(SECRET_KEY_ENV) or ""
    return tuple(key.strip() for key in value.split(",") if key.strip())


def executor() -> str:
    """``KOMEET_SYNC_EXECUTOR``: ``in_process`` (the default: a run's steps one after the
    other in the run's process) or ``celery`` (each step on a Celery worker); SettingError
    otherwise."""
    value = (os.environ.get(EXECUTOR_ENV) or IN_PROCESS).strip().lower()
    if value not in EXECUTORS:
        raise SettingError(
            f"{EXECUTOR_ENV}={value!r} is not an executor komeet-sync knows; set it to "
            f"{CELERY} to run steps on Celery workers, or unset it to run them in the run's "
            f"process ({IN_PROCESS}, the default)"
        )
    return value


def celery_broker() -> str:
    """``KOMEET_SYNC_CELERY_BROKER``: the Redis URL of the Celery broker that runs and
    workers share (``redis://`` or ``rediss://``), also their result backend; SettingError
    when it is unset or not a Redis URL."""
    value = (os.environ.get(CELERY_BROKER_ENV) or "").strip()
    scheme = value.partition("://")[0] if "://" in value else ""
    if scheme not in ("redis", "rediss") or any(c.isspace() for c in value):
        # Only the scheme is shown: the rest of a broker URL may hold its password.
        detail = f"its scheme is {scheme!r}" if scheme else "it has no scheme"
        shown = f" is not a Redis URL ({detail})" if value else " is not set"
        raise SettingError(
            f"{CELERY_BROKER_ENV}{shown}; {EXECUTOR_ENV}={CELERY} needs the broker that the "
            "runs and the Celery workers share: set it to its Redis URL, like "
            "redis://broker.internal:6379/0"
        )
    return value
