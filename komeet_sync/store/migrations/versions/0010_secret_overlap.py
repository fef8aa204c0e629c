"""A SCIM domain's former secret, kept working until a moment after a rotation (``scim
rotate-secret --overlap``), so that the IdP is not cut off before its admin enters the new
one. Only its hash, as for the current secret.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("domain_configs", sa.Column("scim_former_secret_hash", sa.String(128)))
    op.add_column(
        "domain_configs", sa.Column("scim_former_secret_until", sa.DateTime(timezone=True))
    )


def downgrade() -> None:
    op.drop_column("domain_configs", "scim_former_secret_until")
    op.drop_column("domain_configs", "scim_former_secret_hash")
