"""Databases for the tests, made from a template migrated once per session: migrating a
new database through every migration costs about a second, copying a migrated one a
fraction of that."""

from __future__ import annotations

import shutil
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

from komeet_sync.store.database import open_database


def migrated_sqlite(folder: Path) -> Path:
    """A SQLite file in ``folder`` migrated to the head, its write-ahead log folded into it
    and closed, so that a copy of the file alone is the whole database."""
    path = folder / "komeet_sync.db"
    engine = open_database(f"sqlite:///{path}")
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


def copy_sqlite(template: Path, folder: Path) -> str:
    """The URL of a copy of ``template`` in ``folder``."""
    path = folder / "komeet_sync.db"
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


class PostgresDatabases:
    """New databases on the PostgreSQL server at ``server_url``, empty or copied from a
    template (CREATE DATABASE ... TEMPLATE, which refuses a template anyone is connected to:
    the template's engine is disposed once it is migrated, and this worker's tests make
    their copies one at a time)."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
        self.copying = threading.Lock()

    def url(self, name: str) -> str:
        return self.server_url.rsplit("/", 1)[0] + "/" + name

    def create(self, prefix: str = "t", template: str | None = None) -> str:
        """The name of a new database, empty or a copy of ``template``."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        statement = f'CREATE DATABASE "{name}"'
        if template:
            statement += f' TEMPLATE "{template}"'
        with self.copying, self.admin.connect() as connection:
            connection.execute(text(statement))
        return name

    def drop(self, name: str) -> None:
        with self.admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))

    @contextmanager
    def database(self, template: str | None = None) -> Iterator[str]:
        """The URL of a new database, dropped on leaving."""
        name = self.create(template=template)
        try:
            yield self.url(name)
        finally:
            self.drop(name)

    def migrated_template(self) -> str:
        """The name of a new database migrated to the head, no longer connected to."""
        name = self.create(prefix="template")
        open_database(self.url(name)).dispose()
        return name

    def close(self) -> None:
        self.admin.dispose()
