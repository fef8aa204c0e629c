"""Opening the database: the embedded SQLite by default, any SQLAlchemy URL otherwise.

Every command that needs the database opens it here, and the Alembic migrations are
applied first, so a new or an older database is brought to the current schema.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from weakref import WeakKeyDictionary

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from komeet_sync import settings

MIGRATIONS = Path(__file__).parent / "migrations"


class DatabaseUnavailable(RuntimeError):
    """The configured database cannot be opened; the message says which and why."""


def open_database(url: str | None = None) -> Engine:
    """An engine on the database at ``url`` (default: settings), migrated to the head."""
    url = url or settings.database_url()
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseUnavailable(
            f"KOMEET_SYNC_DATABASE_URL {url!r} is not a database URL; use for example "
            "postgresql+psycopg://user@host/dbname"
        ) from None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    engine = create_engine(parsed)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        migrate(engine)
    except OperationalError as exc:
        raise DatabaseUnavailable(
            f"cannot open the database {parsed.render_as_string(hide_password=True)}: {exc.orig}"
        ) from None
    return engine


def migrate(engine: Engine) -> None:
    """Apply the migrations the database has not had yet."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    with engine.begin() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
        if current == head:
            return
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def _sqlite_pragmas(connection, _record) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    # Readers do not wait for the writer (the SCIM endpoint serves both at once), and a
    # commit syncs the log, not the database: still durable across a process crash.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


_WRITE_LOCKS: WeakKeyDictionary[Engine, threading.Lock] = WeakKeyDictionary()
_WRITE_LOCKS_GUARD = threading.Lock()


def write_lock(engine: Engine) -> AbstractContextManager[object]:
    """Hold it around a write transaction. SQLite has one writer at a time: threads that
    queue here instead of in SQLite's busy handler (which sleeps up to 100 ms between
    tries) keep the SCIM endpoint's latency low. PostgreSQL needs none."""
    if engine.dialect.name != "sqlite":
        return nullcontext()
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(engine, threading.Lock())


def as_utc(moment: datetime) -> datetime:
    """A time read back from the database: SQLite gives naive datetimes, stored in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
