"""Plans made by a dry run, and plans superseded by a newer plan of their domain.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


# Plain ALTER TABLE ADD/DROP COLUMN, never a batch copy of the table: on SQLite a copy
# drops ``plans``, and its foreign keys would delete every plan's actions and ledger.


def upgrade() -> None:
    op.add_column(
        "plans", sa.Column("dry_run", sa.Boolean, nullable=False, server_default=sa.false())
    )
    op.add_column("plans", sa.Column("superseded_by", sa.String(32)))
    op.add_column("plans", sa.Column("superseded_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("plans", "superseded_at")
    op.drop_column("plans", "superseded_by")
    op.drop_column("plans", "dry_run")
