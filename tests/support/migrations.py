"""Taking a database back to an earlier revision, as it was before a migration ran."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from komeet_sync.store.database import MIGRATIONS


def downgrade(engine: Engine, revision: str) -> None:
    """Apply the downgrades down to ``revision``: opening the database again upgrades it."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
