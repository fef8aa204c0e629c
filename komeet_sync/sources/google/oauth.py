"""A Google Workspace admin's OAuth 2.0 consent: Komeet reads the domain's directory as that
admin, for the read-only Directory scopes, instead of by domain-wide delegation.

The flow is Google's for installed apps ("OAuth 2.0 for Mobile & Desktop Apps"), run by
``google-auth-oauthlib`` with PKCE: the admin's browser opens the consent page, then Google
redirects it to a loopback address with the code. On a machine with a browser, a server on
127.0.0.1 receives that redirect (``consent_by_loopback``). On a headless one, Google's
out-of-band flow being gone, the admin opens the printed address on any machine, consents,
and pastes back the address the browser was sent to, which fails to load there
(``consent_by_paste``). Either way the admin's address comes from the id token (``openid
email``), and Google must grant every scope asked for.

The OAuth client is Komeet's "Desktop app" client: its client-secrets JSON, as Google Cloud
console downloads it, is ``GOOGLE_OAUTH_CLIENT_FILE``; its ``auth_uri`` and ``token_uri`` (and
``revoke_uri``, else Google's) say where the flow goes, the emulator's in tests and the demo.
Tokens never appear in a repr, a message or a log.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from google.auth import jwt
from google.oauth2.credentials import Credentials

from komeet_sync.sources.google.credentials import (
    SCOPES,
    ClientFile,
    GoogleError,
    read_client_file,
)

CLIENT_FILE_ENV = "GOOGLE_OAUTH_CLIENT_FILE"
GOOGLE_REVOKE_URI = "https://oauth2.googleapis.com/revoke"
# Who consents: the id token's ``email`` claim (OpenID Connect Core §5.4).
IDENTITY_SCOPES = ("openid", "https://www.googleapis.com/auth/userinfo.email")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# Libraries of the flow whose debug lines hold the code, the client secret or the tokens.
SECRET_LOGGERS = ("requests_oauthlib", "oauthlib", "google_auth_oauthlib")
CONSOLE_PAGE = "Google Cloud console > APIs & Services > Credentials"


class ClientFileError(GoogleError):
    """The OAuth client's file is missing or is not a client-secrets file."""


class ConsentRefused(GoogleError):
    """The admin denied the consent, or it cannot be used; nothing was stored."""


class GrantExpired(GoogleError):
    """Google answers that the stored consent was revoked or expired (``invalid_grant``)."""


@dataclass(frozen=True)
class OAuthClient(ClientFile):
    """Komeet's OAuth client for installed apps (``info``: the "installed" object of its
    client-secrets file). Its secret never appears in a repr."""

    @classmethod
    def load(cls, path: str | Path | None = None) -> OAuthClient:
        """The client-secrets file at ``path``, else at ``GOOGLE_OAUTH_CLIENT_FILE``."""
        where = str(path or os.environ.get(CLIENT_FILE_ENV) or "")
        advice = f"download the JSON of Komeet's OAuth client of type Desktop app ({CONSOLE_PAGE})"
        if not where:
            raise ClientFileError(
                f"set {CLIENT_FILE_ENV} to the client-secrets file of Komeet's OAuth client: "
                + advice
            )
        document = read_client_file(
            CLIENT_FILE_ENV, where, "a client-secrets file", advice, ClientFileError
        )
        info = document.get("installed") if isinstance(document, dict) else None
        required = ("client_id", "client_secret", "auth_uri", "token_uri")
        if not isinstance(info, dict) or not all(info.get(name) for name in required):
            raise ClientFileError(
                f"{CLIENT_FILE_ENV}={where} is not the client-secrets file of a Desktop app "
                f'client (an "installed" object with {", ".join(required)}); {advice}'
            )
        return cls(where, info)

    @property
    def revoke_uri(self) -> str:
        return str(self.info.get("revoke_uri") or GOOGLE_REVOKE_URI)

    def credentials(self, refresh_token: str) -> Credentials:
        """Credentials that get access tokens with a consent's refresh token."""
        return Credentials(
            token=None,
            refresh_token=refresh_token,
            token_uri=self.token_uri,
            client_id=self.client_id,
            client_secret=str(self.info["client_secret"]),
            scopes=list(SCOPES),
        )

    def revoke(self, refresh_token: str, timeout: float = 30.0) -> bool:
        """Revoke a consent at Google (its revocation endpoint); False when Google says it
        was revoked or expired already. GoogleError when Google cannot be reached or
        answers otherwise."""
        try:
            response = requests.post(
                self.revoke_uri,
                data={"token": refresh_token},
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                timeout=timeout,
            )
        except requests.RequestException as exc:
            raise GoogleError(
                f"Google's revocation endpoint {self.revoke_uri} cannot be reached "
                f"({type(exc).__name__})"
            ) from None
        if response.ok:
            return True
        if response.status_code == 400 and _error_code(response) in ("invalid_token", ""):
            return False
        raise GoogleError(
            f"Google's revocation endpoint {self.revoke_uri} answered {response.status_code} "
            f"{_error_code(response)}".rstrip()
        )

    def flow(self) -> Any:
        """google-auth-oauthlib's flow for the Directory scopes and the admin's address."""
        from google_auth_oauthlib.flow import InstalledAppFlow

        return InstalledAppFlow.from_client_config(
            {"installed": self.info}, scopes=[*SCOPES, *IDENTITY_SCOPES]
        )


@dataclass(frozen=True)
class Consent:
    """What a consent gave: who granted it, the scopes, and the refresh token."""

    admin_email: str
    scopes: tuple[str, ...]
    refresh_token: str = field(repr=False)


def consent_by_loopback(
    client: OAuthClient,
    domain: str,
    prompt: str,
    announce: Callable[[str], None],
    open_browser: bool = True,
    port: int = 0,
    timeout: float | None = None,
) -> Consent:
    """The consent through a server on 127.0.0.1 that receives Google's redirect. The
    address to open goes to ``announce`` (in ``prompt``, whose ``{url}`` is replaced by
    it), and is opened in a browser unless not ``open_browser``; None ``timeout``: wait as
    long as it takes."""
    flow = client.flow()
    # run_local_server prints the prompt on stdout: it goes to ``announce`` instead.
    with _oauthlib_rules(client), contextlib.redirect_stdout(_Lines(announce)):
        try:
            flow.run_local_server(
                host="127.0.0.1",
                port=port,
                open_browser=open_browser,
                authorization_prompt_message=prompt,
                success_message="komeet-sync received the consent; you may close this tab.",
                timeout_seconds=timeout,
                prompt="consent",
                hd=domain,
            )
        except Exception as exc:  # oauthlib's and the local server's, in words
            raise _refused(exc) from None
    return _consent(client, flow)


def consent_by_paste(
    client: OAuthClient,
    domain: str,
    announce: Callable[[str], None],
    read_line: Callable[[], str],
) -> Consent:
    """The consent on a headless machine: ``announce`` is given the address to open on any
    machine with a browser; ``read_line`` returns the address the browser was redirected to
    after the consent (a loopback address that fails to load there), pasted back."""
    flow = client.flow()
    # Nothing listens there: the page fails to load, and its address holds the code.
    flow.redirect_uri = f"http://127.0.0.1:{49152 + secrets.randbelow(16383)}/"
    with _oauthlib_rules(client):
        url, _ = flow.authorization_url(prompt="consent", hd=domain)
        announce(url)
        pasted = read_line().strip()
        parts = urlsplit(pasted)
        if parts.scheme not in ("http", "https") or not parts.query:
            raise ConsentRefused(
                "paste the whole address the browser showed after the consent (it begins with "
                f"{flow.redirect_uri} and holds code=...); run the command again"
            )
        try:
            # oauthlib takes only https; the loopback redirect is http, as Google prescribes.
            flow.fetch_token(authorization_response="https" + pasted[len(parts.scheme) :])
        except Exception as exc:
            raise _refused(exc) from None
    return _consent(client, flow)


class _Lines(io.TextIOBase):
    """A text stream that hands what is written to ``announce``, a whole write at a time."""

    def __init__(self, announce: Callable[[str], None]) -> None:
        self.announce = announce

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if text.strip():
            self.announce(text.rstrip("\n"))
        return len(text)


def _consent(client: OAuthClient, flow: Any) -> Consent:
    token = flow.oauth2session.token or {}
    granted = token.get("scope") or []
    granted = tuple(granted.split() if isinstance(granted, str) else granted)
    refresh_token = str(token.get("refresh_token") or "")
    admin = _admin_email(str(token.get("id_token") or ""))
    missing = [scope for scope in SCOPES if scope not in granted]
    if missing or not refresh_token or not admin:
        if refresh_token:
            with contextlib.suppress(GoogleError):
                client.revoke(refresh_token)
        what = (
            f"did not grant {', '.join(s.rsplit('/', 1)[-1] for s in missing)}: run the "
            "command again and tick every box of the consent page"
            if missing
            else "gave no refresh token and address; run the command again"
        )
        raise ConsentRefused(f"the consent {what}. Nothing was stored.")
    return Consent(admin, tuple(s for s in granted if s in SCOPES), refresh_token)


def _admin_email(id_token: str) -> str:
    """The consenting account's address, from the id token the token endpoint sent over
    TLS (OpenID Connect Core §3.1.3.7: its signature need not be checked then)."""
    if not id_token:
        return ""
    try:
        claims = jwt.decode(id_token, verify=False)
    except (ValueError, TypeError):
        return ""
    return str(claims.get("email") or "").lower()


def _refused(exc: Exception) -> GoogleError:
    """An error of the flow, in one line."""
    from oauthlib.oauth2.rfc6749.errors import AccessDeniedError, OAuth2Error

    if isinstance(exc, AccessDeniedError):
        return ConsentRefused("the admin denied the consent (access_denied). Nothing was stored.")
    if isinstance(exc, OAuth2Error):
        detail = f"{exc.error}: {exc.description}" if exc.description else exc.error
        return ConsentRefused(f"Google refused the consent ({detail}). Nothing was stored.")
    if isinstance(exc, requests.RequestException):
        return GoogleError(
            f"Google's token endpoint cannot be reached ({type(exc).__name__}). Nothing was stored."
        )
    if type(exc).__name__ == "WSGITimeoutError":
        return ConsentRefused("no consent came back in time. Nothing was stored.")
    return ConsentRefused(f"the consent failed ({type(exc).__name__}). Nothing was stored.")


@contextlib.contextmanager
def _oauthlib_rules(client: OAuthClient) -> Iterator[None]:
    """oauthlib's checks, relaxed where Google's flow needs it: a granted scope list that
    differs from the one asked for is checked here (``_consent``), not raised as a Warning;
    plain http only towards a loopback token endpoint (the emulator). Their debug logs,
    which hold the code, the client secret and the tokens, are silenced meanwhile."""
    relaxed = {"OAUTHLIB_RELAX_TOKEN_SCOPE": "1"}
    if urlsplit(client.token_uri).hostname in LOOPBACK_HOSTS:
        relaxed["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
    before = {name: os.environ.get(name) for name in relaxed}
    loggers = [logging.getLogger(name) for name in SECRET_LOGGERS]
    levels = [logger.level for logger in loggers]
    os.environ.update(relaxed)
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _error_code(response: requests.Response) -> str:
    with contextlib.suppress(ValueError, AttributeError):
        return str(response.json().get("error") or "")
    return ""


def scope_names(scopes: Sequence[str]) -> str:
    """Scopes by their last part: "admin.directory.user.readonly, ..."."""
    return ", ".join(scope.rsplit("/", 1)[-1] for scope in scopes)
