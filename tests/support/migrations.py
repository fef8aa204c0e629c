"""Taking a database back to an earlier revision, as it was before a migration ran."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Engine

from komeet_sync.store.database import migrations_config


def downgrade(engine: Engine, revision: str) -> None:
    """Apply the downgrades down to ``revision``: opening the database again upgrades it."""
    config = migrations_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
