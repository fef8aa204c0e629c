"""Storing domain configurations: one per domain, and no domain name claimed twice."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from komeet_sync.model.domain_config import DomainConfig, SourceKind
from komeet_sync.model.emails import normalise_domain
from komeet_sync.store.tables import DomainConfigRow, DomainNameRow


class DomainConflict(ValueError):
    """A configuration that would claim a domain name another one already holds."""


class UnknownDomain(LookupError):
    """No configuration for that domain."""


class DomainStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, config: DomainConfig) -> DomainConfig:
        """Store a new configuration; refuse one whose domain or alias domain is taken."""
        with Session(self.engine) as session:
            for name in config.domains:
                holder = self._holder(session, name)
                if holder is not None:
                    raise DomainConflict(_conflict(name, holder))
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
                created_at=now,
                updated_at=now,
                names=[DomainNameRow(name=config.domain, is_alias=False)]
                + [DomainNameRow(name=alias, is_alias=True) for alias in config.alias_domains],
            )
            session.add(row)
            try:
                session.commit()
            except IntegrityError:  # another process claimed it between our check and commit
                session.rollback()
                taken = [n for n in config.domains if self._holder(session, n) is not None]
                name = taken[0] if taken else config.domain
                holder = self._holder(session, name)
                raise DomainConflict(
                    _conflict(name, holder) if holder else f"{name} was configured meanwhile"
                ) from None
        return config

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

    def set_scim_secret_hash(self, domain: str, secret_hash: str) -> DomainConfig:
        """Replace a SCIM domain's secret (its hash): the former one stops working at once."""
        with Session(self.engine) as session:
            row = self._row(session, domain)
            if row.source != SourceKind.SCIM.value:
                raise UnknownDomain(
                    f"{row.domain} syncs from Google Workspace: it has no SCIM URL or secret"
                )
            row.scim_secret_hash = secret_hash
            row.updated_at = datetime.now(UTC)
            session.commit()
            return _config(row)

    def set_enabled(self, domain: str, enabled: bool) -> DomainConfig:
        with Session(self.engine) as session:
            row = self._row(session, domain)
            row.enabled = enabled
            row.updated_at = datetime.now(UTC)
            session.commit()
            return _config(row)

    def remove(self, domain: str) -> DomainConfig:
        with Session(self.engine) as session:
            row = self._row(session, domain)
            config = _config(row)
            session.delete(row)
            session.commit()
            return config

    def _row(self, session: Session, domain: str) -> DomainConfigRow:
        try:
            name = normalise_domain(domain)
        except ValueError:
            name = str(domain).strip().lower()
        row = session.scalar(select(DomainConfigRow).where(DomainConfigRow.domain == name))
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

    @staticmethod
    def _holder(session: Session, name: str) -> DomainConfigRow | None:
        claim = session.get(DomainNameRow, name)
        return claim.config if claim is not None else None


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
    )
