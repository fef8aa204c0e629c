"""The OAuth consents of Google Workspace admins, one per domain (``google authorize``): the
refresh token that lets Komeet read the domain's directory as the admin who granted it.

The token is stored only sealed under ``KOMEET_SYNC_SECRET_KEY`` (``store.sealed`` with
``require_key``: refused without it), and opened only to ask Google for an access token: it
is never in a repr, a message or a log. A domain whose configuration is removed loses its
consent with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from komeet_sync.store import sealed
from komeet_sync.store.database import as_utc, write_lock
from komeet_sync.store.tables import DomainConfigRow, GoogleAuthorizationRow


@dataclass(frozen=True)
class GoogleAuthorization:
    """A domain's stored consent. ``refresh_token()`` opens the sealed token; nothing else
    shows it."""

    domain: str
    admin_email: str  # who granted it
    client_id: str  # the OAuth client it was granted to: only that client may use it
    scopes: tuple[str, ...]
    granted_at: datetime
    sealed_token: str = field(repr=False)

    def refresh_token(self) -> str:
        """The refresh token in clear, to send to Google's token endpoint only; MissingKey
        without ``KOMEET_SYNC_SECRET_KEY``, SealError when none of its keys sealed it."""
        return sealed.unseal(self.sealed_token, require_key=True)

    def describe(self) -> str:
        """Whose consent, and since when: "authorized by admin@acme.com on 2026-12-03"."""
        return f"authorized by {self.admin_email} on {self.granted_at:%Y-%m-%d}"


class AuthorizationStore:
    """The consents in the database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def save(
        self,
        domain: str,
        admin_email: str,
        client_id: str,
        scopes: Sequence[str],
        refresh_token: str,
        granted_at: datetime | None = None,
    ) -> GoogleAuthorization:
        """Store ``domain``'s consent, replacing the one it had; MissingKey (nothing stored)
        without ``KOMEET_SYNC_SECRET_KEY``."""
        token = sealed.seal(refresh_token, require_key=True)
        granted_at = granted_at or datetime.now(UTC)
        with write_lock(self.engine), Session(self.engine) as session:
            config_id = self._config_id(session, domain)
            row = session.get(GoogleAuthorizationRow, config_id) or GoogleAuthorizationRow(
                config_id=config_id
            )
            row.admin_email = admin_email
            row.client_id = client_id
            row.scopes = list(scopes)
            row.refresh_token_sealed = token
            row.granted_at = granted_at
            session.add(row)
            session.commit()
        return GoogleAuthorization(domain, admin_email, client_id, tuple(scopes), granted_at, token)

    def get(self, domain: str) -> GoogleAuthorization | None:
        """``domain``'s consent, its token still sealed; None when it has none."""
        with Session(self.engine) as session:
            found = session.execute(
                select(GoogleAuthorizationRow, DomainConfigRow.domain)
                .join(DomainConfigRow, DomainConfigRow.id == GoogleAuthorizationRow.config_id)
                .where(DomainConfigRow.domain == domain)
            ).first()
        if found is None:
            return None
        row, name = found
        return GoogleAuthorization(
            name,
            row.admin_email,
            row.client_id,
            tuple(row.scopes),
            as_utc(row.granted_at),
            row.refresh_token_sealed,
        )

    def delete(self, domain: str) -> GoogleAuthorization | None:
        """Forget ``domain``'s consent; the one deleted, or None when it had none."""
        with write_lock(self.engine), Session(self.engine) as session:
            found = self.get(domain)
            if found is not None:
                session.execute(
                    delete(GoogleAuthorizationRow).where(
                        GoogleAuthorizationRow.config_id == self._config_id(session, domain)
                    )
                )
                session.commit()
        return found

    def reseal(self) -> int:
        """Seal every stored token again under the first of ``KOMEET_SYNC_SECRET_KEY``'s
        keys (the second step of a key rotation); how many were sealed under another."""
        changed = 0
        with write_lock(self.engine), Session(self.engine) as session:
            for row in session.scalars(select(GoogleAuthorizationRow)):
                token = sealed.reseal(row.refresh_token_sealed, require_key=True)
                if token is not None:
                    row.refresh_token_sealed = token
                    changed += 1
            session.commit()
        return changed

    def _config_id(self, session: Session, domain: str) -> int:
        config_id = session.scalar(
            select(DomainConfigRow.id).where(DomainConfigRow.domain == domain)
        )
        if config_id is None:
            raise LookupError(f"{domain} is not configured")
        return config_id
