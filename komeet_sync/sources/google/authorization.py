"""A domain's authorization by its admin's OAuth consent (``google authorize`` and ``google
revoke``): getting the consent, checking that it reads the directory before it is stored,
and revoking it at Google before it is deleted.

A consent is stored only once it has read the domain (one token request, one
``users.list`` of one user): an account that is not an admin of the Workspace gets 403 from
the Directory API, and its consent is revoked at once rather than kept to fail every sync.
A revocation that cannot reach Google keeps the consent (``forget_only`` deletes it without
Google): a token deleted here while still valid at Google would be forgotten, not revoked.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from komeet_sync.backoff import Backoff
from komeet_sync.model.domain_config import DomainConfig
from komeet_sync.sources.google.credentials import GoogleError, endpoint_from_environment
from komeet_sync.sources.google.oauth import (
    ConsentRefused,
    OAuthClient,
    consent_by_loopback,
    consent_by_paste,
)
from komeet_sync.sources.google.reader import (
    ATTEMPTS_ENV,
    BACKOFF_ENV,
    AuthorisationRefused,
    DirectoryReader,
)
from komeet_sync.store import sealed
from komeet_sync.store.authorizations import AuthorizationStore, GoogleAuthorization

# Where an admin removes a consent Komeet could not revoke.
REMOVE_BY_HAND = (
    "the admin removes it at myaccount.google.com > Security > Third-party apps, or in Google "
    "Admin console > Security > Access and data control > API controls"
)


@dataclass(frozen=True)
class Authorized:
    """The consent stored, and the one it replaced."""

    authorization: GoogleAuthorization
    replaced: GoogleAuthorization | None


@dataclass(frozen=True)
class Revoked:
    """What ``revoke`` did: the consent deleted (None: there was none), and whether Google
    revoked it (False: it was revoked or expired there already; None: not asked)."""

    domain: str
    deleted: GoogleAuthorization | None
    at_google: bool | None

    def describe(self) -> str:
        gone = self.deleted
        if gone is None:
            return (
                f"{self.domain} has no authorization to revoke: its syncs use domain-wide "
                "delegation."
            )
        what = (
            f"the authorization of {self.domain} by {gone.admin_email} "
            f"(granted {gone.granted_at:%Y-%m-%d})"
        )
        if self.at_google is None:
            how = f"Deleted {what} without revoking it at Google: {REMOVE_BY_HAND}."
        elif self.at_google:
            how = f"Revoked at Google and deleted {what}."
        else:
            how = f"Deleted {what}; Google had revoked it already (or it had expired)."
        return f"{how} Its syncs now use domain-wide delegation."

    def as_dict(self) -> dict[str, Any]:
        gone = self.deleted
        return {
            "domain": self.domain,
            "deleted": None
            if gone is None
            else {
                "admin_email": gone.admin_email,
                "granted_at": gone.granted_at.isoformat(),
                "client_id": gone.client_id,
            },
            "revoked_at_google": self.at_google,
        }


def authorize(
    engine: Engine,
    config: DomainConfig,
    client: OAuthClient,
    *,
    prompt: str,
    announce: Callable[[str], None],
    read_line: Callable[[], str] | None = None,
    open_browser: bool = True,
    port: int = 0,
    timeout: float | None = None,
) -> Authorized:
    """Get an admin's consent for ``config``'s domain, check that it reads the directory,
    and store it (replacing the domain's former one). ``prompt`` (its ``{url}`` the consent
    page's address) goes to ``announce``; with ``read_line``, the headless way (the address
    the browser was sent to, pasted back), else the loopback server."""
    sealed.check_keys(require_key=True)
    if read_line is not None:
        consent = consent_by_paste(
            client, config.domain, lambda url: announce(prompt.format(url=url)), read_line
        )
    else:
        consent = consent_by_loopback(
            client, config.domain, prompt, announce, open_browser, port, timeout
        )
    candidate = GoogleAuthorization(
        config.domain,
        consent.admin_email,
        client.client_id,
        consent.scopes,
        datetime.now(UTC),
        sealed.seal(consent.refresh_token, require_key=True),
    )
    reader = DirectoryReader(
        None,
        consent.admin_email,
        endpoint=endpoint_from_environment(),
        backoff=Backoff.from_environment(ATTEMPTS_ENV, BACKOFF_ENV, GoogleError),
        authorization=candidate,
        oauth_client=client,
    )
    try:
        reader.probe(config.domain)
    except AuthorisationRefused as exc:
        with contextlib.suppress(GoogleError):
            client.revoke(consent.refresh_token)
        raise ConsentRefused(
            f"{consent.admin_email} consented, but cannot read {config.domain}'s directory "
            f"({exc}). Nothing was stored, and the consent was revoked: run it again as an "
            f"admin of {config.domain}'s Workspace"
        ) from None
    store = AuthorizationStore(engine)
    replaced = store.get(config.domain)
    stored = store.save(
        config.domain,
        consent.admin_email,
        client.client_id,
        consent.scopes,
        consent.refresh_token,
        candidate.granted_at,
    )
    return Authorized(stored, replaced)


def revoke(engine: Engine, config: DomainConfig, forget_only: bool = False) -> Revoked:
    """Revoke the domain's consent at Google, then delete it; with ``forget_only``, delete
    it without Google. GoogleError (the consent kept) when Google cannot be reached."""
    store = AuthorizationStore(engine)
    found = store.get(config.domain)
    if found is None:
        return Revoked(config.domain, None, None)
    if forget_only:
        return Revoked(config.domain, store.delete(config.domain), None)
    kept = (
        f"the authorization of {config.domain} by {found.admin_email} is kept; run it again "
        "when Google can be reached, or with --forget-only to delete it here only"
    )
    try:
        client = OAuthClient.load()
        at_google = client.revoke(found.refresh_token())
    except (GoogleError, sealed.SealError) as exc:
        raise GoogleError(f"{exc}: {kept}") from None
    return Revoked(config.domain, store.delete(config.domain), at_google)
