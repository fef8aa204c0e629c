"""The OAuth consent of a Google Workspace admin per domain (``google authorize``): its
refresh token sealed, who granted it, when, to which client and for which scopes.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "google_authorizations",
        sa.Column(
            "config_id",
            sa.Integer,
            sa.ForeignKey("domain_configs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("admin_email", sa.String(254), nullable=False),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("scopes", sa.JSON, nullable=False),
        sa.Column("refresh_token_sealed", sa.Text, nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("google_authorizations")
