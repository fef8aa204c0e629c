"""Domain configurations and the domain names they claim.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "domain_configs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("domain", sa.String(253), nullable=False, unique=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("admin_email", sa.String(254)),
        sa.Column("groups", sa.JSON, nullable=False),
        sa.Column("protected", sa.JSON, nullable=False),
        sa.Column("max_deactivations", sa.Integer, nullable=False),
        sa.Column("max_deactivation_share", sa.Float, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "domain_names",
        sa.Column("name", sa.String(253), primary_key=True),
        sa.Column(
            "config_id",
            sa.Integer,
            sa.ForeignKey("domain_configs.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("is_alias", sa.Boolean, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("domain_names")
    op.drop_table("domain_configs")
