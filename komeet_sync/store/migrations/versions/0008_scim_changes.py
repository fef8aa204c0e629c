"""The staged users each accepted SCIM write touched (``scim_changes``), how far each
consumer of them has got (``sync_cursors``), and the matching keys of every staged user
(``scim_person_keys``), so that an incremental sync reads only the people who changed and
those who share a key with them. Group memberships get an index by member, to find a user's
groups from the user.

The keys of the users already staged are filled in here with the rule the endpoint keeps
them by (``model.scim_keys``): the index must hold what the endpoint would have written.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

from komeet_sync.model.scim_keys import indexed, person_keys

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_RESOURCES = sa.table(
    "scim_resources",
    sa.column("id", sa.String),
    sa.column("domain_id", sa.Integer),
    sa.column("resource_type", sa.String),
    sa.column("document", sa.JSON),
)
_KEYS = sa.table(
    "scim_person_keys",
    sa.column("resource_id", sa.String),
    sa.column("namespace", sa.String),
    sa.column("value", sa.String),
    sa.column("domain_id", sa.Integer),
)


def upgrade() -> None:
    op.create_table(
        "scim_person_keys",
        sa.Column(
            "resource_id",
            sa.String(64),
            sa.ForeignKey("scim_resources.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("namespace", sa.String(16), primary_key=True),
        sa.Column("value", sa.String(512), primary_key=True),
        sa.Column("domain_id", sa.Integer, nullable=False),
    )
    op.create_index(
        "ix_scim_person_keys_value", "scim_person_keys", ["domain_id", "namespace", "value"]
    )
    op.create_table(
        "scim_changes",
        sa.Column("seq", SEQ, primary_key=True, autoincrement=True),
        sa.Column(
            "domain_id",
            sa.Integer,
            sa.ForeignKey("domain_configs.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("resource_id", sa.String(64), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("keys", sa.Text, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_scim_changes_domain_seq", "scim_changes", ["domain_id", "seq"])
    op.create_table(
        "sync_cursors",
        sa.Column(
            "domain_id",
            sa.Integer,
            sa.ForeignKey("domain_configs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("consumer", sa.String(64), primary_key=True),
        sa.Column("seq", SEQ, nullable=False),
    )
    op.create_index("ix_scim_memberships_member_id", "scim_memberships", ["member_id"])
    _fill_keys(op.get_bind())


def _fill_keys(connection: sa.Connection) -> None:
    """The keys of every staged user, deleted ones included (leavers keep theirs)."""
    users = connection.execute(
        sa.select(_RESOURCES.c.id, _RESOURCES.c.domain_id, _RESOURCES.c.document)
        .where(_RESOURCES.c.resource_type == "User")
        .execution_options(yield_per=1000)  # a server-side cursor on PostgreSQL
    )
    for batch in users.partitions():
        rows = [
            {
                "resource_id": rid,
                "namespace": namespace,
                "value": indexed(value),
                "domain_id": domain_id,
            }
            for rid, domain_id, document in batch
            for namespace, value in person_keys(rid, document or {})
        ]
        if rows:
            connection.execute(sa.insert(_KEYS), rows)


def downgrade() -> None:
    op.drop_index("ix_scim_memberships_member_id", "scim_memberships")
    op.drop_table("sync_cursors")
    op.drop_table("scim_changes")
    op.drop_table("scim_person_keys")
