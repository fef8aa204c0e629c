"""A SCIM domain's secret: the bearer token its IdP sends (RFC 6750).

256 random bits, shown once when made; only its SHA-256 is stored (the secret is random,
so a slow hash adds nothing), and a presented secret is compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta

from komeet_sync.model.domain_config import DomainConfig
from komeet_sync.store.domains import DomainStore

PREFIX = "sha256:"


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return PREFIX + hashlib.sha256(secret.encode()).hexdigest()


def matches(secret: str | None, stored_hash: str | None) -> bool:
    """Whether ``secret`` is the one whose hash is stored; False when either is missing."""
    if not secret or not stored_hash:
        return False
    return hmac.compare_digest(hash_secret(secret).encode(), stored_hash.encode())


def accepted(
    secret: str | None,
    stored_hash: str | None,
    former_hash: str | None = None,
    former_until: datetime | None = None,
    now: datetime | None = None,
) -> bool:
    """Whether ``secret`` is the domain's: its current one, or the one it replaced while the
    rotation's overlap lasts (until ``former_until``). Both are compared, whichever matches,
    so that the time taken does not tell which."""
    current = matches(secret, stored_hash)
    former = matches(secret, former_hash)
    in_overlap = former_until is not None and (now or datetime.now(UTC)) < former_until
    return current or (former and in_overlap)


def issue_secret(
    store: DomainStore, domain: str, overlap: timedelta = timedelta(0)
) -> tuple[DomainConfig, str]:
    """A new secret for a SCIM domain, its hash stored in place of the former one's; the
    former one keeps working for ``overlap`` (none: it stops at once). The secret itself is
    returned to be shown once, never kept."""
    secret = new_secret()
    until = datetime.now(UTC) + overlap if overlap > timedelta(0) else None
    return store.set_scim_secret_hash(domain, hash_secret(secret), former_until=until), secret
