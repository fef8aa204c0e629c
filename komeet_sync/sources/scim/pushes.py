"""The IdPs' pushes, as the SCIM request log records them (``request_log``): which domains'
IdPs changed what is staged, and when each last did.

A push is an accepted write: a POST, PUT, PATCH or DELETE the endpoint answered with a 2xx.
A read, or a write refused (401, 404, 413...), changes nothing staged.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, select
from sqlalchemy.orm import InstrumentedAttribute

from komeet_sync.model.domain_config import SourceKind
from komeet_sync.store.database import as_utc
from komeet_sync.store.tables import DomainConfigRow, ScimRequestRow

WRITES = ("POST", "PUT", "PATCH", "DELETE")


def _pushed() -> ColumnElement[bool]:
    """A request of the log that changed what is staged: an accepted write."""
    return ScimRequestRow.method.in_(WRITES) & (ScimRequestRow.status < 300)


def last_pushes(engine: Engine) -> dict[str, datetime]:
    """When each SCIM domain's IdP last pushed, for the domains whose IdP ever did."""
    return {domain: as_utc(at) for domain, at in _last_push(engine, ScimRequestRow.at).items()}


def last_push_rows(engine: Engine) -> list[int]:
    """The request log's row of each SCIM domain's last push: retention keeps it whatever
    its age (``runs.retention``), so that ``status`` still says when each IdP last pushed."""
    return sorted(_last_push(engine, ScimRequestRow.id).values())


def _last_push(engine: Engine, column: InstrumentedAttribute[Any]) -> dict[str, Any]:
    """``column`` of each SCIM domain's last push, for the domains whose IdP ever pushed:
    one query, each domain's answer read backwards along the log's (domain, at) index."""
    last = (
        select(column)
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
    return {domain: value for domain, value in rows if value is not None}
