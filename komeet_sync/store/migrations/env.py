"""Alembic environment: runs on the connection ``database.migrate`` hands over, or on
``KOMEET_SYNC_DATABASE_URL`` when run from the alembic command line."""

from alembic import context
from sqlalchemy import create_engine

from komeet_sync import settings
from komeet_sync.store.tables import Base

connection = context.config.attributes.get("connection")


def run(conn) -> None:
    context.configure(connection=conn, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    run(connection)
else:
    with create_engine(settings.database_url()).begin() as conn:
        run(conn)
