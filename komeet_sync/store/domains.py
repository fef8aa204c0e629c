"""Storing domain configurations: one per domain, and no domain name claimed twice.

A configuration is added, changed in place (``update``: its id, SCIM secret, staged data and
quarantine stay), quarantined and released (``quarantine``, ``release``), and removed with
everything the database holds for its domain (``remove``, which counts what it deletes; the
results of its syncs are files, and are kept).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, Engine, Select, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from komeet_sync.model.domain_config import DomainChange, DomainConfig, Quarantine, SourceKind
from komeet_sync.model.domain_names import InvalidDomain, normalise_domain
from komeet_sync.store import sealed
from komeet_sync.store.database import as_utc, write_lock
from komeet_sync.store.tables import (
    GROUP,
    USER,
    ApplicationRow,
    DomainConfigRow,
    DomainNameRow,
    GoogleAuthorizationRow,
    LedgerRow,
    PlanActionRow,
    PlanRow,
    ScimMembershipRow,
    ScimRequestRow,
    ScimResourceRow,
    ScimUniqueValueRow,
    SyncFailureRow,
)

if TYPE_CHECKING:
    from komeet_sync.store.results import ResultStore


class DomainConflict(ValueError):
    """A configuration that would claim a domain name another one already holds."""


class UnknownDomain(LookupError):
    """No configuration for that domain."""


class NotQuarantined(ValueError):
    """A release of a domain that is not quarantined."""


@dataclass(frozen=True)
class Removal:
    """What removing a domain's configuration deletes from the database, counted in the
    transaction that deletes it (or, before, in one that only counts), and what it keeps.

    Deleted: the configuration and its alias domains; for a SCIM domain, the users and
    groups its IdP pushed (deleted ones too: they are the leavers of the next sync), their
    memberships, and its secret; for every domain, its plans with their actions, approvals
    and ledger, its recorded sync failures and its lines of the SCIM request log; for a
    Google domain, its admin's OAuth consent (``google revoke`` revokes it at Google first).
    Kept: the results of its syncs in the result store, which are files an operator may
    still read.
    """

    config: DomainConfig
    staged_users: int
    staged_groups: int
    scim_secret: bool
    plans: int
    ledger_entries: int
    failures: int
    requests_logged: int
    syncs_kept: int
    syncs_folder: str | None  # where they are, when there is a result store

    def as_dict(self) -> dict[str, object]:
        return {
            "deleted": {
                "staged_users": self.staged_users,
                "staged_groups": self.staged_groups,
                "scim_secret": self.scim_secret,
                "plans": self.plans,
                "ledger_entries": self.ledger_entries,
                "failures": self.failures,
                "requests_logged": self.requests_logged,
            },
            "kept": {"syncs": self.syncs_kept, "folder": self.syncs_folder},
        }


class DomainStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, config: DomainConfig) -> DomainConfig:
        """Store a new configuration; refuse one whose domain or alias domain is taken."""
        with Session(self.engine) as session:
            self._refuse_taken(session, config.domains)
            now = datetime.now(UTC)
            row = DomainConfigRow(
                domain=config.domain,
                source=config.source.value,
                enabled=config.enabled,
                admin_email=config.admin_email,
                groups=list(config.groups),
                protected=list(config.protected),
                max_deactivations=config.max_deactivations,
                max_deactivation_share=config.max_deactivation_share,
                scim_rate_limit=config.scim_rate_limit,
                created_at=now,
                updated_at=now,
                names=[DomainNameRow(name=config.domain, is_alias=False)]
                + [DomainNameRow(name=alias, is_alias=True) for alias in config.alias_domains],
            )
            session.add(row)
            self._commit_claims(session, config.domains)
        return config

    def update(self, domain: str, change: DomainChange) -> tuple[DomainConfig, DomainConfig]:
        """Change a configuration in place, in one transaction: the configuration before and
        after. The change is checked as a new configuration is (``DomainConfig.changed``), and
        an alias domain another configuration holds is refused as ``add`` refuses it. The
        row stays, so its SCIM secret and staged users and groups stay with it."""
        with write_lock(self.engine), Session(self.engine) as session:
            row = self._row(session, domain, for_update=True)
            before = _config(row)
            after = before.changed(change)
            self._refuse_taken(session, after.domains, owner=row)
            row.groups = list(after.groups)
            row.protected = list(after.protected)
            row.admin_email = after.admin_email
            row.max_deactivations = after.max_deactivations
            row.max_deactivation_share = after.max_deactivation_share
            row.scim_rate_limit = after.scim_rate_limit
            wanted = set(after.alias_domains)
            row.names = [n for n in row.names if not n.is_alias or n.name in wanted]
            held = {n.name for n in row.names}
            row.names += [
                DomainNameRow(name=alias, is_alias=True)
                for alias in after.alias_domains
                if alias not in held
            ]
            row.updated_at = datetime.now(UTC)  # the SCIM endpoint reads it again
            self._commit_claims(session, after.domains)
            return before, _config(row)  # as stored: alias domains in the order they are read

    def get(self, domain: str) -> DomainConfig:
        with Session(self.engine) as session:
            return _config(self._row(session, domain))

    def list(self) -> list[DomainConfig]:
        with Session(self.engine) as session:
            rows = session.scalars(
                select(DomainConfigRow)
                .options(selectinload(DomainConfigRow.names))
                .order_by(DomainConfigRow.domain)
            )
            return [_config(row) for row in rows]

    def id_of(self, domain: str) -> int:
        """The configuration's row id, which the SCIM staging tables refer to."""
        with Session(self.engine) as session:
            return self._row(session, domain).id

    def set_scim_secret_hash(
        self, domain: str, secret_hash: str, *, former_until: datetime | None = None
    ) -> DomainConfig:
        """Replace a SCIM domain's secret (its hash). The one it replaces keeps working until
        ``former_until`` (an overlap: the IdP is not cut off before its admin enters the new
        one), or stops at once when that is None; a secret replaced before stops then."""
        with Session(self.engine) as session:
            row = self._row(session, domain)
            if row.source != SourceKind.SCIM.value:
                raise UnknownDomain(
                    f"{row.domain} syncs from Google Workspace: it has no SCIM URL or secret"
                )
            keep = former_until is not None and row.scim_secret_hash is not None
            row.scim_former_secret_hash = row.scim_secret_hash if keep else None
            row.scim_former_secret_until = former_until if keep else None
            row.scim_secret_hash = secret_hash
            row.updated_at = datetime.now(UTC)
            session.commit()
            return _config(row)

    def secret_overlaps(self, now: datetime | None = None) -> dict[str, datetime]:
        """The SCIM domains whose former secret still works, each with the moment it stops."""
        now = now or datetime.now(UTC)
        with Session(self.engine) as session:
            rows = session.execute(
                select(DomainConfigRow.domain, DomainConfigRow.scim_former_secret_until)
                .where(DomainConfigRow.scim_former_secret_until.is_not(None))
                .order_by(DomainConfigRow.domain)
            ).all()
        overlaps = {domain: as_utc(until) for domain, until in rows if until is not None}
        return {domain: until for domain, until in overlaps.items() if until > now}

    def set_notify_urls(self, domain: str, urls: tuple[str, ...]) -> None:
        """Where the domain's events are notified (Apprise URLs, sealed: they hold tokens
        and passwords); ``()``: nowhere of its own (the default, ``KOMEET_SYNC_NOTIFY``)."""
        with Session(self.engine) as session:
            row = self._row(session, domain)
            row.notify_sealed = sealed.seal(json.dumps(list(urls))) if urls else None
            session.commit()

    def notify_urls(self, domain: str) -> tuple[str, ...]:
        """The domain's own notification URLs, unsealed; SealError when this machine's key
        is not the one they were sealed with."""
        with Session(self.engine) as session:
            token = session.execute(
                select(DomainConfigRow.notify_sealed).where(DomainConfigRow.domain == domain)
            ).scalar_one_or_none()
        return tuple(json.loads(sealed.unseal(token))) if token else ()

    def reseal_notify_urls(self) -> int:
        """Seal every domain's notification URLs again under the first of the keys (the
        second step of a key rotation, ``store.sealed``); how many were under another."""
        changed = 0
        with write_lock(self.engine), Session(self.engine) as session:
            rows = session.scalars(
                select(DomainConfigRow).where(DomainConfigRow.notify_sealed.is_not(None))
            )
            for row in rows:
                token = sealed.reseal(row.notify_sealed or "")
                if token is not None:
                    row.notify_sealed = token
                    changed += 1
            session.commit()
        return changed

    def set_enabled(self, domain: str, enabled: bool) -> DomainConfig:
        with Session(self.engine) as session:
            row = self._row(session, domain)
            row.enabled = enabled
            row.updated_at = datetime.now(UTC)
            session.commit()
            return _config(row)

    def quarantine(self, domain: str, reason: str, at: datetime | None = None) -> Quarantine | None:
        """Quarantine the domain for ``reason`` (``Quarantine``): nothing is written to Komeet
        for it until ``release``. None when it is quarantined already: the first quarantine,
        its time and its reason stand (two runs failing at once quarantine it once)."""
        with write_lock(self.engine), Session(self.engine) as session:
            row = self._row(session, domain, for_update=True)
            if row.quarantined_at is not None:
                return None
            row.quarantined_at = at or datetime.now(UTC)
            row.quarantine_reason = reason
            session.commit()
            return _quarantine(row)

    def release(self, domain: str) -> Quarantine:
        """Lift the domain's quarantine; the quarantine lifted. NotQuarantined when it is not
        quarantined."""
        with write_lock(self.engine), Session(self.engine) as session:
            row = self._row(session, domain, for_update=True)
            lifted = _quarantine(row)
            if lifted is None:
                raise NotQuarantined(
                    f"{row.domain} is not quarantined: its syncs write to Komeet "
                    f"('komeet-sync domains show {row.domain}')"
                )
            row.quarantined_at = None
            row.quarantine_reason = None
            session.commit()
            return lifted

    def removal(self, domain: str, results: ResultStore | None = None) -> Removal:
        """What ``remove`` would delete and keep, counted now (to ask before removing)."""
        with Session(self.engine) as session:
            return _removal(session, self._row(session, domain), results)

    def remove(self, domain: str, results: ResultStore | None = None) -> Removal:
        """Delete a configuration and everything the database holds for its domain, in one
        transaction; what was deleted, counted in it (see ``Removal``)."""
        with write_lock(self.engine), Session(self.engine) as session:
            row = self._row(session, domain, for_update=True)
            removal = _removal(session, row, results)
            plans = _plans_of(row)
            applications = select(ApplicationRow.id).where(ApplicationRow.plan_id.in_(plans))
            # Children first, each said outright rather than left to ON DELETE CASCADE, so
            # that what is deleted is what was counted, whatever the database enforces.
            for statement in (
                delete(LedgerRow).where(LedgerRow.application_id.in_(applications)),
                delete(ApplicationRow).where(ApplicationRow.plan_id.in_(plans)),
                delete(PlanActionRow).where(PlanActionRow.plan_id.in_(plans)),
                delete(PlanRow).where(PlanRow.domain == row.domain),
                delete(SyncFailureRow).where(SyncFailureRow.domain == row.domain),
                delete(ScimRequestRow).where(ScimRequestRow.domain == row.domain),
                delete(ScimUniqueValueRow).where(ScimUniqueValueRow.domain_id == row.id),
                delete(ScimMembershipRow).where(ScimMembershipRow.domain_id == row.id),
                delete(ScimResourceRow).where(ScimResourceRow.domain_id == row.id),
                delete(GoogleAuthorizationRow).where(GoogleAuthorizationRow.config_id == row.id),
            ):
                session.execute(statement.execution_options(synchronize_session=False))
            session.delete(row)  # and its names
            session.commit()
            return removal

    def _row(self, session: Session, domain: str, for_update: bool = False) -> DomainConfigRow:
        try:
            name = normalise_domain(domain)
        except InvalidDomain as exc:
            raise UnknownDomain(str(exc)) from None
        query = select(DomainConfigRow).where(DomainConfigRow.domain == name)
        row = session.scalar(query.with_for_update() if for_update else query)
        if row is None:
            holder = self._holder(session, name)
            if holder is not None:
                raise UnknownDomain(
                    f"{name} is an alias domain of {holder.domain}; use {holder.domain}"
                )
            known = session.scalars(select(DomainConfigRow.domain).order_by("domain")).all()
            hint = f"configured: {', '.join(known)}" if known else "no domain is configured yet"
            raise UnknownDomain(
                f"no configuration for {name} ({hint}); add one with "
                f"'komeet-sync domains add {name} --source google|scim ...'"
            )
        return row

    def _refuse_taken(
        self, session: Session, names: Iterable[str], owner: DomainConfigRow | None = None
    ) -> None:
        """Raise DomainConflict when a configuration other than ``owner`` holds a name."""
        for name in names:
            holder = self._holder(session, name)
            if holder is not None and holder is not owner:
                raise DomainConflict(_conflict(name, holder))

    def _commit_claims(self, session: Session, names: tuple[str, ...]) -> None:
        """Commit; when another process claimed one of ``names`` between our check and our
        commit (the primary key of ``domain_names`` refuses it), say which and who holds it."""
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            taken = [n for n in names if self._holder(session, n) is not None]
            name = taken[0] if taken else names[0]
            holder = self._holder(session, name)
            raise DomainConflict(
                _conflict(name, holder) if holder else f"{name} was configured meanwhile"
            ) from None

    @staticmethod
    def _holder(session: Session, name: str) -> DomainConfigRow | None:
        claim = session.get(DomainNameRow, name)
        return claim.config if claim is not None else None


def _plans_of(row: DomainConfigRow) -> Select[str]:
    return select(PlanRow.plan_id).where(PlanRow.domain == row.domain)


def _removal(session: Session, row: DomainConfigRow, results: ResultStore | None) -> Removal:
    plans = _plans_of(row)

    def count(table: type, *where: ColumnElement[bool]) -> int:
        return int(session.scalar(select(func.count()).select_from(table).where(*where)) or 0)

    applications = select(ApplicationRow.id).where(ApplicationRow.plan_id.in_(plans))
    syncs = results.syncs(row.domain) if results is not None else []
    return Removal(
        config=_config(row),
        staged_users=count(
            ScimResourceRow,
            ScimResourceRow.domain_id == row.id,
            ScimResourceRow.resource_type == USER,
        ),
        staged_groups=count(
            ScimResourceRow,
            ScimResourceRow.domain_id == row.id,
            ScimResourceRow.resource_type == GROUP,
        ),
        scim_secret=row.scim_secret_hash is not None,
        plans=count(PlanRow, PlanRow.domain == row.domain),
        ledger_entries=count(LedgerRow, LedgerRow.application_id.in_(applications)),
        failures=count(SyncFailureRow, SyncFailureRow.domain == row.domain),
        requests_logged=count(ScimRequestRow, ScimRequestRow.domain == row.domain),
        syncs_kept=len(syncs),
        syncs_folder=str(results.root / row.domain) if results is not None else None,
    )


def _conflict(name: str, holder: DomainConfigRow) -> str:
    as_what = "its domain" if holder.domain == name else "an alias domain"
    return (
        f"{name} is already configured: the {holder.source} configuration of {holder.domain} "
        f"holds it as {as_what}. One configuration per domain: change or remove that one "
        f"('komeet-sync domains show {holder.domain}')"
    )


def _config(row: DomainConfigRow) -> DomainConfig:
    return DomainConfig(
        domain=row.domain,
        source=SourceKind(row.source),
        groups=tuple(row.groups),
        alias_domains=tuple(n.name for n in row.names if n.is_alias),
        protected=tuple(row.protected),
        admin_email=row.admin_email,
        enabled=row.enabled,
        max_deactivations=row.max_deactivations,
        max_deactivation_share=row.max_deactivation_share,
        quarantine=_quarantine(row),
        scim_rate_limit=row.scim_rate_limit,
    )


def _quarantine(row: DomainConfigRow) -> Quarantine | None:
    if row.quarantined_at is None:
        return None
    return Quarantine(row.domain, as_utc(row.quarantined_at), row.quarantine_reason or "")
