"""Opening the database: the embedded SQLite by default, any SQLAlchemy URL otherwise.

Every command that needs the database opens it here, and the Alembic migrations are
applied first, so a new or an older database is brought to the current schema.
"""

from __future__ import annotations

import re
import threading
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from weakref import WeakKeyDictionary

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from komeet_sync import settings

MIGRATIONS = Path(__file__).parent / "migrations"


class DatabaseUnavailable(RuntimeError):
    """The configured database cannot be opened; the message says which and why."""


SUPPORTED = (
    "komeet-sync keeps its state in SQLite (sqlite:///path/to/file.db) or PostgreSQL "
    "(postgresql+psycopg://user:password@host/dbname)"
)
DRIVERS = {"sqlite": ("pysqlite",), "postgresql": ("psycopg", "psycopg2")}
CONNECT_TIMEOUT = 10  # seconds, unless the URL says (?connect_timeout=N)


def open_database(url: str | None = None) -> Engine:
    """An engine on the database at ``url`` (default: settings), migrated to the head.

    DatabaseUnavailable, in one line naming the setting, the URL with its password masked
    and what to do, when the URL is not one, names a database other than SQLite or
    PostgreSQL, or the database cannot be created, reached or read."""
    variable = None if url else _variable()
    url = url or settings.database_url()
    try:
        parsed = make_url(url)
        parsed.port  # noqa: B018 - a port that is not a number raises ValueError here
    except (ArgumentError, ValueError):
        raise DatabaseUnavailable(
            f"{_named(variable, masked(url))} is not a database URL; {SUPPORTED}"
        ) from None
    shown = parsed.render_as_string(hide_password=True)
    backend, _, driver = parsed.drivername.partition("+")
    if backend not in DRIVERS or driver not in ("", *DRIVERS[backend]):
        raise DatabaseUnavailable(
            f"{_named(variable, shown)} names a database komeet-sync does not support; {SUPPORTED}"
        )
    if backend == "sqlite" and parsed.database not in (None, "", ":memory:"):
        folder = Path(parsed.database).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseUnavailable(
                _unwritable(variable, shown, _folder_problem(folder, exc))
            ) from None
    connect_args = {}
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        if "connect_timeout" not in parsed.query:  # a server that never answers: 10 s, not 2 min
            connect_args["connect_timeout"] = CONNECT_TIMEOUT
    engine = create_engine(parsed, connect_args=connect_args)
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        migrate(engine)
    except DBAPIError as exc:
        engine.dispose()
        reason = " ".join(str(exc.orig).split())  # psycopg's message spans lines
        if backend == "sqlite":
            reason = f"{parsed.database}: {reason}"
            raise DatabaseUnavailable(_unwritable(variable, shown, reason)) from None
        raise DatabaseUnavailable(
            f"cannot open the database {_named(variable, shown)}: {reason}; check that the "
            "server runs and this machine reaches it, and the user, password and database name"
        ) from None
    return engine


def masked(url: str) -> str:
    """``url`` with the password of its ``user:password@`` part replaced by ``***``, even
    when the rest does not parse."""
    return re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", url)


def _variable() -> str:
    """The variable that chose the database."""
    return settings.DATABASE_URL_ENV if settings.database_url_configured() else settings.HOME_ENV


def _named(variable: str | None, url: str) -> str:
    if variable == settings.DATABASE_URL_ENV:
        return f"{variable}={url!r}"
    return f"the database URL {url!r}"


def _folder_problem(folder: Path, exc: OSError) -> str:
    if isinstance(exc, FileExistsError):
        return f"{folder} is a file, not a folder"
    if isinstance(exc, NotADirectoryError):
        return f"{folder} is under a file, not a folder"
    return f"{folder} cannot be made ({exc.strerror})"


def _unwritable(variable: str | None, shown: str, reason: str) -> str:
    """A SQLite database that cannot be created, opened or read, and the fix."""
    if variable == settings.HOME_ENV:
        return (
            f"{settings.home_setting()} cannot hold the database: {reason}; set "
            f"{settings.HOME_ENV} to a folder this process may create and write (default "
            f"./{settings.DEFAULT_HOME}), or {settings.DATABASE_URL_ENV} to another database"
        )
    return (
        f"cannot open the SQLite database {_named(variable, shown)}: {reason}; give the path "
        "of a komeet-sync database, or of a new file in a folder this process may write"
    )


def migrate(engine: Engine) -> None:
    """Apply the migrations the database has not had yet."""
    with engine.begin() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
        if current == _head():
            return
        config = migrations_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def migrations_config() -> Config:
    """Alembic's configuration for the migrations of komeet_sync/store/migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@cache
def _head() -> str | None:
    """The newest migration, read once per process: reading it parses every migration file,
    and a database already at the head (nearly every open) needs nothing else."""
    return ScriptDirectory.from_config(migrations_config()).get_current_head()


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
