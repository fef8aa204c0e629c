"""Staged users' ``user_name_key`` in the form uniqueness and filters compare a userName in.

The key was the userName case-folded, without Unicode normalisation, so a user created in
NFD (``e\u0301x@...``) was not found by a ``userName eq`` filter in NFC while its unique
value refused the NFC form. The key is now the SCIM comparison form (Unicode NFC, lower
case, a SHA-256 beyond 254 characters: ``sources.scim.storage._comparison_text`` under the
default policy). Only keys that can differ are rewritten: non-ASCII ones, and ones cut at
254 characters.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

import hashlib
import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_RESOURCES = sa.table(
    "scim_resources",
    sa.column("id", sa.String),
    sa.column("resource_type", sa.String),
    sa.column("user_name_key", sa.String),
    sa.column("document", sa.JSON),
)


def _key(user_name: str) -> str:
    # The rule as of this revision, frozen here: a migration must not follow later changes.
    text = unicodedata.normalize("NFC", unicodedata.normalize("NFC", user_name).lower())
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest() if len(text) > 254 else text


def upgrade() -> None:
    connection = op.get_bind()
    keys = connection.execute(
        sa.select(_RESOURCES.c.id, _RESOURCES.c.user_name_key).where(
            _RESOURCES.c.resource_type == "User", _RESOURCES.c.user_name_key.is_not(None)
        )
    ).all()
    stale = [rid for rid, key in keys if not key.isascii() or len(key) >= 254]
    for start in range(0, len(stale), 500):
        rows = connection.execute(
            sa.select(_RESOURCES.c.id, _RESOURCES.c.document).where(
                _RESOURCES.c.id.in_(stale[start : start + 500])
            )
        ).all()
        for rid, document in rows:
            user_name = (document or {}).get("userName")
            if isinstance(user_name, str) and user_name:
                connection.execute(
                    sa.update(_RESOURCES)
                    .where(_RESOURCES.c.id == rid)
                    .values(user_name_key=_key(user_name))
                )


def downgrade() -> None:
    """The old keys are not restored: the new ones find the same users and more."""
