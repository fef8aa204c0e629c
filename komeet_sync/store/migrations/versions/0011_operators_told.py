"""What operators are told and what protects them (docs: README, "Operators are told"):
the events a person is notified of, each once; the notification URLs of a domain (sealed,
never in clear); a domain's quarantine; its SCIM endpoint's request rate limit; why the
endpoint refused a request, kept with it in the request log.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("domain", sa.String(253), index=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("key", sa.String(255), nullable=False, unique=True),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("claimed_until", sa.DateTime(timezone=True)),
        sa.Column("delivered_at", sa.DateTime(timezone=True)),
        sa.Column("delivery", sa.Text),
    )
    op.add_column("scim_requests", sa.Column("reason", sa.Text))
    op.add_column("domain_configs", sa.Column("notify_sealed", sa.Text))
    op.add_column("domain_configs", sa.Column("quarantined_at", sa.DateTime(timezone=True)))
    op.add_column("domain_configs", sa.Column("quarantine_reason", sa.Text))
    op.add_column("domain_configs", sa.Column("scim_rate_limit", sa.Integer))


def downgrade() -> None:
    op.drop_column("domain_configs", "scim_rate_limit")
    op.drop_column("domain_configs", "quarantine_reason")
    op.drop_column("domain_configs", "quarantined_at")
    op.drop_column("domain_configs", "notify_sealed")
    op.drop_column("scim_requests", "reason")
    op.drop_table("events")
