"""A SCIM domain's secret: the bearer token its IdP sends (RFC 6750).

256 random bits, shown once when made; only its SHA-256 is stored (the secret is random,
so a slow hash adds nothing), and a presented secret is compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

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


def issue_secret(store: DomainStore, domain: str) -> tuple[DomainConfig, str]:
    """A new secret for a SCIM domain, its hash stored in place of the former one's (which
    stops working at once); the secret itself is returned to be shown once, never kept."""
    secret = new_secret()
    return store.set_scim_secret_hash(domain, hash_secret(secret)), secret
