"""SCIM staging: the resources IdPs push, their unique values, group memberships, the
request log, and each SCIM domain's secret (as a hash).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("domain_configs") as batch:
        batch.add_column(sa.Column("scim_secret_hash", sa.String(128)))
    op.create_table(
        "scim_resources",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "domain_id",
            sa.Integer,
            sa.ForeignKey("domain_configs.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("resource_type", sa.String(32), nullable=False),
        sa.Column("user_name_key", sa.String(254)),
        sa.Column("unique_digest", sa.String(64)),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True)),
        sa.Column("document", sa.JSON, nullable=False),
    )
    op.create_index(
        "ix_scim_resources_domain_type", "scim_resources", ["domain_id", "resource_type"]
    )
    op.create_index("ix_scim_resources_user_name", "scim_resources", ["domain_id", "user_name_key"])
    op.create_table(
        "scim_unique_values",
        sa.Column("domain_id", sa.Integer, primary_key=True),
        sa.Column("urn", sa.String(255), primary_key=True),
        sa.Column("value", sa.String(512), primary_key=True),
        sa.Column(
            "resource_id",
            sa.String(64),
            sa.ForeignKey("scim_resources.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
    )
    op.create_table(
        "scim_memberships",
        sa.Column(
            "group_id",
            sa.String(64),
            sa.ForeignKey("scim_resources.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("member_id", sa.String(255), primary_key=True),
        sa.Column("domain_id", sa.Integer, nullable=False, index=True),
    )
    op.create_table(
        "scim_requests",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("domain", sa.String(253)),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("path", sa.String(2048), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("duration_ms", sa.Float, nullable=False),
        sa.Column("body", sa.Text),
    )
    op.create_index("ix_scim_requests_domain_at", "scim_requests", ["domain", "at"])


def downgrade() -> None:
    op.drop_table("scim_requests")
    op.drop_table("scim_memberships")
    op.drop_table("scim_unique_values")
    op.drop_table("scim_resources")
    with op.batch_alter_table("domain_configs") as batch:
        batch.drop_column("scim_secret_hash")
