"""The SQL schema (SQLAlchemy 2.0). Alembic migrations in ``migrations/`` create it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String
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
