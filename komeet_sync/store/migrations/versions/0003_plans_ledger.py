"""Plans, their approvals, their applications and the ledger of every action sent to
Komeet.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plans",
        sa.Column("plan_id", sa.String(32), primary_key=True),
        sa.Column("domain", sa.String(253), nullable=False, index=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("snapshot_at", sa.DateTime(timezone=True)),
        sa.Column("desired", sa.Integer, nullable=False),
        sa.Column("counts", sa.JSON, nullable=False),
        sa.Column("holds", sa.JSON, nullable=False),
        sa.Column("reports", sa.String(1024)),
        sa.Column("approved_by", sa.String(254)),
        sa.Column("approved_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "plan_actions",
        sa.Column(
            "plan_id",
            sa.String(32),
            sa.ForeignKey("plans.plan_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("email", sa.String(254)),
        sa.Column("komeet_id", sa.String(255)),
        sa.Column("user_name", sa.String(254)),
        sa.Column("external_id", sa.String(255)),
        sa.Column("given_name", sa.String(255)),
        sa.Column("family_name", sa.String(255)),
        sa.Column("changes", sa.Text),
        sa.Column("reason", sa.Text),
    )
    op.create_table(
        "applications",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "plan_id",
            sa.String(32),
            sa.ForeignKey("plans.plan_id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("trigger", sa.String(64), nullable=False),
    )
    op.create_table(
        "ledger",
        sa.Column("idempotency_key", sa.String(96), primary_key=True),
        sa.Column(
            "application_id",
            sa.Integer,
            sa.ForeignKey("applications.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("plan_id", sa.String(32), nullable=False, index=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("user_name", sa.String(254)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("outcome", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("retryable", sa.Boolean, nullable=False),
        sa.Column("http_status", sa.Integer),
        sa.Column("response_body", sa.Text),
        sa.Column("komeet_id", sa.String(255)),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("ledger")
    op.drop_table("applications")
    op.drop_table("plan_actions")
    op.drop_table("plans")
