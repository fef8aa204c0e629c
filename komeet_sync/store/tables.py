"""The SQL schema (SQLAlchemy 2.0). Alembic migrations in ``migrations/`` create it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class DomainConfigRow(Base):
    """One domain configuration (ARCHITECTURE.md, "Configuration: one per domain")."""

    __tablename__ = "domain_configs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain: Mapped[str] = mapped_column(String(253), unique=True)
    source: Mapped[str] = mapped_column(String(16))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    admin_email: Mapped[str | None] = mapped_column(String(254))
    groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    protected: Mapped[list[str]] = mapped_column(JSON, default=list)
    max_deactivations: Mapped[int] = mapped_column(Integer)
    max_deactivation_share: Mapped[float] = mapped_column(Float)
    scim_secret_hash: Mapped[str | None] = mapped_column(String(128))  # never the secret
    # The former secret after a rotation, accepted until ``scim_former_secret_until``.
    scim_former_secret_hash: Mapped[str | None] = mapped_column(String(128))
    scim_former_secret_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Where the domain's events are notified: Apprise URLs, which hold tokens and passwords,
    # sealed (``store.sealed``), never in clear.
    notify_sealed: Mapped[str | None] = mapped_column(Text)
    # Quarantined: no writes to Komeet until released (``domains release``).
    quarantined_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    quarantine_reason: Mapped[str | None] = mapped_column(Text)
    # Requests a second its IdP may send the SCIM endpoint; None: the default.
    scim_rate_limit: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    names: Mapped[list[DomainNameRow]] = relationship(
        back_populates="config", cascade="all, delete-orphan", order_by="DomainNameRow.name"
    )


class DomainNameRow(Base):
    """Every domain name a configuration claims, its own and its aliases: the primary key
    makes a second configuration for any of them impossible, even between two processes."""

    __tablename__ = "domain_names"

    name: Mapped[str] = mapped_column(String(253), primary_key=True)
    config_id: Mapped[int] = mapped_column(
        ForeignKey("domain_configs.id", ondelete="CASCADE"), index=True
    )
    is_alias: Mapped[bool] = mapped_column(Boolean)

    config: Mapped[DomainConfigRow] = relationship(back_populates="names")


class GoogleAuthorizationRow(Base):
    """A Google Workspace admin's OAuth consent for a domain (``google authorize``): the
    refresh token, sealed (``store.sealed``, under ``KOMEET_SYNC_SECRET_KEY`` only), who
    granted it, when, to which OAuth client and for which scopes. At most one per domain."""

    __tablename__ = "google_authorizations"

    config_id: Mapped[int] = mapped_column(
        ForeignKey("domain_configs.id", ondelete="CASCADE"), primary_key=True
    )
    admin_email: Mapped[str] = mapped_column(String(254))
    client_id: Mapped[str] = mapped_column(String(255))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    refresh_token_sealed: Mapped[str] = mapped_column(Text)  # Fernet ciphertext, never clear
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# The resource types an IdP pushes (RFC 7643 §4.1 and §4.2), as ``resource_type`` holds them.
USER = "User"
GROUP = "Group"


class ScimResourceRow(Base):
    """A User or Group an IdP pushed to a domain's SCIM endpoint (the staging table).

    ``document`` is the resource as SCIM JSON without ``meta``, which the columns hold.
    A deleted resource is kept, with ``deleted_at``: a user the IdP deleted is a leaver.
    """

    __tablename__ = "scim_resources"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domain_configs.id", ondelete="CASCADE"))
    resource_type: Mapped[str] = mapped_column(String(32))
    user_name_key: Mapped[str | None] = mapped_column(
        String(254)
    )  # userName as compared: NFC, lower case
    # A digest of the resource's unique values and a user's matching keys (scim_person_keys):
    # an update that keeps them leaves their rows.
    unique_digest: Mapped[str | None] = mapped_column(String(64))
    # Counts the writes; every write checks it (the storage's UPDATE ... WHERE version).
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    document: Mapped[dict] = mapped_column(JSON)


class ScimUniqueValueRow(Base):
    """A value of an attribute whose uniqueness is ``server`` (RFC 7643 §2.1), such as a
    userName: the primary key makes two resources holding it impossible, even when two
    requests race."""

    __tablename__ = "scim_unique_values"

    domain_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    urn: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(String(512), primary_key=True)
    resource_id: Mapped[str] = mapped_column(
        ForeignKey("scim_resources.id", ondelete="CASCADE"), index=True
    )


class ScimMembershipRow(Base):
    """A member of a staged group, as the group's ``members[].value`` names it."""

    __tablename__ = "scim_memberships"

    group_id: Mapped[str] = mapped_column(
        ForeignKey("scim_resources.id", ondelete="CASCADE"), primary_key=True
    )
    # Indexed: the groups a user is in are found from the user, upwards.
    member_id: Mapped[str] = mapped_column(String(255), primary_key=True, index=True)
    domain_id: Mapped[int] = mapped_column(Integer, index=True)


class ScimPersonKeyRow(Base):
    """A key a staged user is known by, as matching compares it (``engine.reconcile.node_keys``:
    namespace "id", "email" or "employee id", and the normalised value), kept in the same
    transaction as the user: an incremental sync finds who holds a key without reading the
    whole staging (ARCHITECTURE.md, "Full and incremental syncs"). A deleted user keeps its
    keys: it is a leaver."""

    __tablename__ = "scim_person_keys"
    __table_args__ = (Index("ix_scim_person_keys_value", "domain_id", "namespace", "value"),)

    resource_id: Mapped[str] = mapped_column(
        ForeignKey("scim_resources.id", ondelete="CASCADE"), primary_key=True
    )
    namespace: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[str] = mapped_column(String(512), primary_key=True)
    domain_id: Mapped[int] = mapped_column(Integer)


# Changes are counted in 64 bits (SQLite's rowid is one already, and only it autoincrements).
SEQ = BigInteger().with_variant(Integer(), "sqlite")


class ScimChangeRow(Base):
    """A staged user an accepted write touched: the user written, or a user who joined or
    left a group written. ``seq`` grows in commit order within a domain, so a consumer that
    has processed up to ``seq`` has seen every earlier change of the domain; ``keys`` are the
    user's keys before the write (JSON ``[[namespace, value], ...]``), so that the people a
    renamed user no longer shares a key with are decided again too."""

    __tablename__ = "scim_changes"
    __table_args__ = (
        Index("ix_scim_changes_domain_seq", "domain_id", "seq"),
        {"sqlite_autoincrement": True},  # a seq is never given twice, even after a purge
    )

    seq: Mapped[int] = mapped_column(SEQ, primary_key=True, autoincrement=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domain_configs.id", ondelete="CASCADE"))
    resource_id: Mapped[str] = mapped_column(String(64))
    accepted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # the commit, UTC
    keys: Mapped[str] = mapped_column(Text)


class SyncCursorRow(Base):
    """How far a consumer (the incremental sync's worker) has processed a domain's changes."""

    __tablename__ = "sync_cursors"

    domain_id: Mapped[int] = mapped_column(
        ForeignKey("domain_configs.id", ondelete="CASCADE"), primary_key=True
    )
    consumer: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(SEQ)


class ScimRequestRow(Base):
    """One request to the SCIM endpoint, its body without secrets (the request log)."""

    __tablename__ = "scim_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    domain: Mapped[str | None] = mapped_column(String(253))
    method: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(String(2048))
    status: Mapped[int] = mapped_column(Integer)
    duration_ms: Mapped[float] = mapped_column(Float)
    body: Mapped[str | None] = mapped_column(Text)
    # A refused request's SCIM error detail: what the IdP was told.
    reason: Mapped[str | None] = mapped_column(Text)


class PlanRow(Base):
    """A provisioning plan as reconciliation made it, with its holds and its approval.

    The id is a digest of the plan's actions (``plan.plan_id``): the same state gives the
    same plan, and an approval names exactly one plan (ARCHITECTURE.md, "Guards").
    """

    __tablename__ = "plans"

    plan_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    domain: Mapped[str] = mapped_column(String(253), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    source: Mapped[str] = mapped_column(String(16))
    snapshot_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    desired: Mapped[int] = mapped_column(Integer)  # the shrink guard's next "last good" count
    counts: Mapped[dict] = mapped_column(JSON)  # actions by kind
    holds: Mapped[list] = mapped_column(JSON)  # guards.Hold.as_dict() of each hold
    reports: Mapped[str | None] = mapped_column(String(1024))  # where its reports were written
    approved_by: Mapped[str | None] = mapped_column(String(254))
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Made by ``sync --dry-run``, perhaps from an export: applied only by a sync that makes it.
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    # The domain's latest plan, made since and before this one was applied in full.
    superseded_by: Mapped[str | None] = mapped_column(String(32))
    superseded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # "domain": a sync of the whole domain; "people": an incremental sync's, of some people.
    scope: Mapped[str] = mapped_column(String(16), default="domain", server_default="domain")
    # Active managed accounts the plan was made against (a whole domain's only): the size
    # an incremental sync's deactivation budget is counted on.
    active_managed: Mapped[int | None] = mapped_column(Integer)


class PlanActionRow(Base):
    """One action of a plan (plan.PLAN_COLUMNS), at its position in the plan."""

    __tablename__ = "plan_actions"

    plan_id: Mapped[str] = mapped_column(
        ForeignKey("plans.plan_id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    action: Mapped[str] = mapped_column(String(16))
    email: Mapped[str | None] = mapped_column(String(254))
    komeet_id: Mapped[str | None] = mapped_column(String(255))
    user_name: Mapped[str | None] = mapped_column(String(254))
    external_id: Mapped[str | None] = mapped_column(String(255))
    given_name: Mapped[str | None] = mapped_column(String(255))
    family_name: Mapped[str | None] = mapped_column(String(255))
    changes: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)


class ApplicationRow(Base):
    """One application of a plan: its ledger rows are written before anything is sent, and
    a resumed apply continues the unfinished application rather than starting another."""

    __tablename__ = "applications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    plan_id: Mapped[str] = mapped_column(
        ForeignKey("plans.plan_id", ondelete="CASCADE"), index=True
    )
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    trigger: Mapped[str] = mapped_column(String(64))  # who or what started it


class LedgerRow(Base):
    """One action of an application: written (pending) before it is sent, then its outcome
    (ARCHITECTURE.md, "Applying a plan")."""

    __tablename__ = "ledger"

    idempotency_key: Mapped[str] = mapped_column(String(96), primary_key=True)
    application_id: Mapped[int] = mapped_column(
        ForeignKey("applications.id", ondelete="CASCADE"), index=True
    )
    plan_id: Mapped[str] = mapped_column(String(32), index=True)
    position: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(16))
    user_name: Mapped[str | None] = mapped_column(String(254))
    status: Mapped[str] = mapped_column(String(16))  # ledger.Status
    outcome: Mapped[str | None] = mapped_column(Text)  # what happened, in words
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # requests sent for it
    retryable: Mapped[bool] = mapped_column(Boolean, default=False)  # a failure worth resuming
    http_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)  # kept on failure only
    komeet_id: Mapped[str | None] = mapped_column(String(255))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SyncFailureRow(Base):
    """A scheduled or launched sync that failed, as the orchestrator reported it: what the
    CLI (``domains show``) and the notebooks show on-call engineers."""

    __tablename__ = "sync_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    domain: Mapped[str | None] = mapped_column(String(253), index=True)
    run_id: Mapped[str] = mapped_column(String(64))
    job: Mapped[str] = mapped_column(String(255))
    message: Mapped[str] = mapped_column(Text)


class DomainLeaseRow(Base):
    """Who writes to a domain's Komeet accounts now, until when: one incremental writer per
    domain at a time, across processes and machines (``store.leases``)."""

    __tablename__ = "domain_leases"

    domain: Mapped[str] = mapped_column(String(253), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EventRow(Base):
    """Something a person should know of (a plan held, a sync failed, a domain quarantined
    or released, SCIM pushes refused, the worker behind), recorded once: ``key`` says which
    occurrence it is (the held plan's id, ...), so the same one is never notified twice.
    ``delivery`` is the outcome of sending it, in words, once tried; ``delivered_at`` is when
    sending it ended (sent, or nowhere to send it)."""

    __tablename__ = "events"
    # The events still to send, read by every evaluation of the notification sensor: a
    # handful among all those ever recorded, found without reading the others.
    __table_args__ = (
        Index(
            "ix_events_undelivered",
            "id",
            postgresql_where=text("delivered_at IS NULL"),
            sqlite_where=text("delivered_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    domain: Mapped[str | None] = mapped_column(String(253), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(255), unique=True)
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    details: Mapped[dict] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # A process sending it holds it until then: two processes never send it both.
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivery: Mapped[str | None] = mapped_column(Text)
