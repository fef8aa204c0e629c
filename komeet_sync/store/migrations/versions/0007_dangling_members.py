"""A check, not a change: count the staged group memberships that name no resource of the
group's domain (an id never staged, or another domain's resource), which the endpoint
refused only from this revision on.

They are kept: deleting a membership is deciding who leaves a group, and that is the IdP's
or a person's call. The count, by domain, is logged as a warning naming the command that
lists them (``komeet-sync scim check``). Nothing is written, so the downgrade does nothing.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

import logging

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

log = logging.getLogger("komeet_sync.migrations")

# The check as of this revision, frozen here: a migration must not follow later changes.
_DANGLING = sa.text(
    """
    SELECT d.domain, COUNT(*)
    FROM scim_memberships m
    JOIN scim_resources g ON g.id = m.group_id
    JOIN domain_configs d ON d.id = g.domain_id
    LEFT JOIN scim_resources r ON r.id = m.member_id
    WHERE r.id IS NULL OR r.domain_id <> g.domain_id
    GROUP BY d.domain
    ORDER BY d.domain
    """
)


def upgrade() -> None:
    counts = op.get_bind().execute(_DANGLING).all()
    if not counts:
        return
    total = sum(count for _, count in counts)
    by_domain = ", ".join(f"{domain} {count}" for domain, count in counts)
    log.warning(
        "%d staged group membership%s name no resource of the group's domain (%s). They are "
        "kept, and no longer accepted from an IdP; 'komeet-sync scim check' lists them.",
        total,
        "" if total == 1 else "s",
        by_domain,
    )


def downgrade() -> None:
    """Nothing was written."""
