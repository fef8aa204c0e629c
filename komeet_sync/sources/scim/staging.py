"""Reading a SCIM domain's staging tables (what its IdP pushed) as a directory snapshot."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from komeet_sync.model.domain_config import DomainConfig
from komeet_sync.model.snapshots import DirectorySnapshot
from komeet_sync.sources.scim import resources as scim_resources
from komeet_sync.store.domains import DomainStore
from komeet_sync.store.tables import GROUP, USER, ScimResourceRow


def read_staging(engine: Engine, config: DomainConfig) -> DirectorySnapshot:
    """The users (deleted ones included, as inactive) and the live groups the IdP pushed to
    ``config``'s domain, with ``config.groups`` selected, read in one pass."""
    started, clock = datetime.now(UTC), time.monotonic()
    domain_id = DomainStore(engine).id_of(config.domain)
    users: list[dict[str, Any]] = []
    groups: list[dict[str, Any]] = []
    deleted: set[str] = set()
    with Session(engine) as session:
        rows = session.execute(
            select(
                ScimResourceRow.id,
                ScimResourceRow.resource_type,
                ScimResourceRow.deleted_at,
                ScimResourceRow.document,
            ).where(ScimResourceRow.domain_id == domain_id)
        )
        for resource_id, resource_type, deleted_at, document in rows:
            if resource_type == USER:
                users.append({**document, "id": resource_id})
                if deleted_at is not None:
                    deleted.add(resource_id)
            elif resource_type == GROUP and deleted_at is None:
                groups.append({**document, "id": resource_id})
    snapshot = scim_resources.snapshot(users, groups, config.groups, deleted=deleted)
    return dataclasses.replace(snapshot, started_at=started, seconds=time.monotonic() - clock)
