"""The IdPs' pushes, as the SCIM request log records them (``request_log``): which domains'
IdPs changed what is staged, and when each last did.

A push is an accepted write: a POST, PUT, PATCH or DELETE the endpoint answered with a 2xx.
A read, or a write refused (401, 404, 413...), changes nothing staged.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, Engine, select

from komeet_sync.model.domain_config import SourceKind
from komeet_sync.store.database import as_utc
from komeet_sync.store.tables import DomainConfigRow, ScimRequestRow

WRITES = ("POST", "PUT", "PATCH", "DELETE")


def _pushed() -> ColumnElement[bool]:
    """A request of the log that changed what is staged: an accepted write."""
    return ScimRequestRow.method.in_(WRITES) & (ScimRequestRow.status < 300)


def last_pushes(engine: Engine) -> dict[str, datetime]:
    """When each SCIM domain's IdP last pushed, for the domains whose IdP ever did: one
    query, each domain's answer read backwards along the log's (domain, at) index."""
    last = (
        select(ScimRequestRow.at)
        .where(ScimRequestRow.domain == DomainConfigRow.domain, _pushed())
        .order_by(ScimRequestRow.at.desc())
        .limit(1)
        .correlate(DomainConfigRow)
        .scalar_subquery()
    )
    query = select(DomainConfigRow.domain, last).where(
        DomainConfigRow.source == SourceKind.SCIM.value
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return {domain: as_utc(at) for domain, at in rows if at is not None}
