"""Plans of some people (an incremental sync's), the size a domain's budget is counted on,
and leases that keep one writer per domain at a time (docs/incremental.md).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


# Plain ALTER TABLE ADD/DROP COLUMN, never a batch copy of ``plans`` (see 0005).


def upgrade() -> None:
    op.add_column(
        "plans",
        sa.Column("scope", sa.String(16), nullable=False, server_default="domain"),
    )
    op.add_column("plans", sa.Column("active_managed", sa.Integer))
    op.create_table(
        "domain_leases",
        sa.Column("domain", sa.String(253), primary_key=True),
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("domain_leases")
    op.drop_column("plans", "active_managed")
    op.drop_column("plans", "scope")
