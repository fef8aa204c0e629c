"""Google's OAuth 2.0 authorization server for installed apps, as the emulator serves it: the
consent page, the authorization-code and refresh-token grants, and revocation.

It follows Google's "OAuth 2.0 for Mobile & Desktop Apps": the authorization endpoint
(``/o/oauth2/auth``) shows the scopes asked for, a field for the account that consents and
Allow / Deny, then redirects to the client's loopback ``redirect_uri`` with ``code`` and
``state``, or ``error=access_denied`` (RFC 6749 §4.1.2); the token endpoint exchanges the
code, checking the client, the redirect and PKCE (RFC 7636, S256 or plain), for an access
token, a refresh token (``access_type=offline``) and an id token naming the account when
``openid`` was asked; a refresh token gets new access tokens until it is revoked
(``/revoke``, or ``expire`` for a test), then ``invalid_grant`` "Token has been expired or
revoked." as Google answers. The id token is unsigned (``alg`` none): the client reads it
straight from the token endpoint (OpenID Connect Core §3.1.3.7).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from komeet_sync.emulators.directory import Directory

AUTHORIZE_PATH = "/o/oauth2/auth"
REVOKE_PATH = "/revoke"
OPENID = "openid"
EMAIL_SCOPES = ("email", "https://www.googleapis.com/auth/userinfo.email")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})
EXPIRED = "Token has been expired or revoked."


class ConsentError(Exception):
    """An OAuth 2.0 error response (RFC 6749 §5.2) of the token or revocation endpoint."""

    def __init__(self, status: int, error: str, description: str) -> None:
        self.status = status
        self.error = error
        self.description = description
        super().__init__(description)


class BadRequest(Exception):
    """An authorization request Google shows an error page for, and never redirects."""


@dataclass(frozen=True)
class Consent:
    """What one account granted one client."""

    client_id: str
    subject: str  # the account's primary email
    scopes: tuple[str, ...]  # as asked for, full URLs


@dataclass(frozen=True)
class _Code:
    consent: Consent
    redirect_uri: str
    challenge: str | None
    challenge_method: str


class ConsentServer:
    """Clients, consents and their tokens; ``issue`` makes an access token (the Directory
    API emulator's, so that its calls are authorised as the account that consented)."""

    def __init__(self, directory: Directory, issue: Any) -> None:
        self.directory = directory
        self.issue = issue  # (client_id, subject, scopes) -> access token
        self._lock = threading.Lock()
        self._clients: dict[str, str] = {}  # client_id -> client_secret
        self._codes: dict[str, _Code] = {}
        self._refresh: dict[str, Consent] = {}

    def register_client(self, base_url: str, name: str = "komeet-sync") -> dict[str, Any]:
        """A new "Desktop app" OAuth client: its client-secrets JSON, as Google Cloud
        console downloads it, with the endpoints this server's."""
        client_id = f"{secrets.randbelow(10**12):012d}-{name}.apps.googleusercontent.com"
        secret = "GOCSPX-" + secrets.token_urlsafe(21)
        with self._lock:
            self._clients[client_id] = secret
        return {
            "installed": {
                "client_id": client_id,
                "project_id": "komeet-emulated",
                "auth_uri": base_url + AUTHORIZE_PATH,
                "token_uri": base_url + "/token",
                "revoke_uri": base_url + REVOKE_PATH,
                "client_secret": secret,
                "redirect_uris": ["http://localhost"],
            }
        }

    # -- the authorization endpoint --

    def page(self, params: dict[str, str], problem: str = "") -> str:
        """The consent page for an authorization request (BadRequest when it is not one)."""
        self._checked(params)
        scopes = params.get("scope", "").split()
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in params.items()
            if k != "email"
        )
        admins = "".join(
            f'<option value="{html.escape(str(u.get("primaryEmail")))}">'
            for u in self.directory.users
            if u.get("isAdmin")
        )
        items = "".join(f"<li>{html.escape(scope)}</li>" for scope in scopes)
        warning = f'<p id="problem" role="alert">{html.escape(problem)}</p>' if problem else ""
        hint = html.escape(params.get("login_hint", ""))
        return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in - Google Accounts</title></head>
<body>
<h1>komeet-sync wants to access your Google Account</h1>
{warning}
<form method="post" action="{AUTHORIZE_PATH}">
{hidden}
<label for="email">Account</label>
<input id="email" name="email" type="email" list="admins" value="{hint}" required>
<datalist id="admins">{admins}</datalist>
<p>This will allow komeet-sync to:</p>
<ul id="scopes">{items}</ul>
<button type="submit" name="decision" value="deny" id="deny" formnovalidate>Deny</button>
<button type="submit" name="decision" value="allow" id="allow">Allow</button>
</form>
</body></html>"""

    def decide(self, form: dict[str, str]) -> tuple[str | None, str]:
        """The consent page's answer: the redirect (with ``code`` or ``error``), or None and
        the problem to show on the page again (an unknown or suspended account)."""
        redirect_uri = self._checked(form)
        answer: dict[str, str] = {}
        if form.get("decision") != "allow":
            answer["error"] = "access_denied"
        else:
            email = form.get("email", "").strip().lower()
            user = self.directory.user(email)
            if user is None or user.get("suspended"):
                return None, f"Couldn't find your Google Account {email}"
            code = "4/emulator-" + secrets.token_urlsafe(24)
            consent = Consent(
                form["client_id"], str(user["primaryEmail"]), tuple(form["scope"].split())
            )
            with self._lock:
                self._codes[code] = _Code(
                    consent,
                    redirect_uri,
                    form.get("code_challenge"),
                    form.get("code_challenge_method", "plain"),
                )
            answer |= {"code": code, "scope": " ".join(consent.scopes)}
        if "state" in form:
            answer["state"] = form["state"]
        separator = "&" if urlsplit(redirect_uri).query else "?"
        return f"{redirect_uri}{separator}{urlencode(answer)}", ""

    def _checked(self, params: dict[str, str]) -> str:
        """The request's redirect URI, once the request is one Google would serve."""
        client_id = params.get("client_id", "")
        if client_id not in self._clients:
            raise BadRequest(f"Error 401: invalid_client. No OAuth client {client_id!r}")
        redirect_uri = params.get("redirect_uri", "")
        parts = urlsplit(redirect_uri)
        if parts.scheme != "http" or parts.hostname not in LOOPBACK_HOSTS:
            raise BadRequest(
                f"Error 400: redirect_uri_mismatch. {redirect_uri!r}: a desktop client's "
                "redirect must be a loopback address"
            )
        if params.get("response_type") != "code":
            raise BadRequest("Error 400: invalid_request. response_type must be code")
        if not params.get("scope", "").split():
            raise BadRequest("Error 400: invalid_request. Missing required parameter: scope")
        return redirect_uri

    # -- the token endpoint --

    def token(self, form: dict[str, str], basic: tuple[str, str] | None) -> dict[str, Any]:
        """The authorization_code and refresh_token grants (RFC 6749 §4.1.3, §6)."""
        client_id, secret = basic or (form.get("client_id", ""), form.get("client_secret", ""))
        if self._clients.get(client_id) is None or not secrets.compare_digest(
            self._clients[client_id], secret
        ):
            raise ConsentError(401, "invalid_client", "The OAuth client was not found.")
        if form.get("grant_type") == "authorization_code":
            return self._exchange(client_id, form)
        with self._lock:
            consent = self._refresh.get(form.get("refresh_token", ""))
        if consent is None or consent.client_id != client_id:
            raise ConsentError(400, "invalid_grant", EXPIRED)
        return self._tokens(consent)

    def _exchange(self, client_id: str, form: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            code = self._codes.pop(form.get("code", ""), None)  # a code is used once
        if code is None or code.consent.client_id != client_id:
            raise ConsentError(400, "invalid_grant", "Malformed auth code.")
        if form.get("redirect_uri") != code.redirect_uri:
            raise ConsentError(400, "redirect_uri_mismatch", "Bad Request")
        if code.challenge is not None:
            verifier = form.get("code_verifier", "")
            if code.challenge_method == "S256":
                digest = hashlib.sha256(verifier.encode()).digest()
                verifier = base64.urlsafe_b64encode(digest).decode().rstrip("=")
            if not secrets.compare_digest(verifier, code.challenge):
                raise ConsentError(400, "invalid_grant", "Invalid code verifier.")
        refresh_token = "1//emulator-" + secrets.token_urlsafe(32)
        with self._lock:
            self._refresh[refresh_token] = code.consent
        answer = self._tokens(code.consent) | {"refresh_token": refresh_token}
        if OPENID in code.consent.scopes:
            answer["id_token"] = _id_token(client_id, code.consent.subject)
        return answer

    def _tokens(self, consent: Consent) -> dict[str, Any]:
        access_token = self.issue(consent.client_id, consent.subject, consent.scopes)
        return {
            "access_token": access_token,
            "expires_in": 3599,
            "scope": " ".join(consent.scopes),
            "token_type": "Bearer",
        }

    def grant(self, client_id: str, subject: str, scopes: tuple[str, ...]) -> str:
        """A refresh token as if ``subject`` had consented on the page: for tests that
        start from a consent given."""
        refresh_token = "1//emulator-" + secrets.token_urlsafe(32)
        with self._lock:
            self._refresh[refresh_token] = Consent(client_id, subject, scopes)
        return refresh_token

    # -- revocation --

    def revoke(self, token: str) -> None:
        """Google's revocation endpoint: a refresh token revoked ends its consent."""
        with self._lock:
            if self._refresh.pop(token, None) is None:
                raise ConsentError(400, "invalid_token", "Token expired or revoked")

    def expire(self, subject: str | None = None) -> int:
        """End the consents of ``subject`` (every one's when None), as Google does when a
        token is revoked from the account's settings or expires; how many ended."""
        with self._lock:
            ended = [
                token
                for token, consent in self._refresh.items()
                if subject is None or consent.subject.lower() == subject.lower()
            ]
            for token in ended:
                del self._refresh[token]
        return len(ended)

    @property
    def consents(self) -> list[Consent]:
        with self._lock:
            return list(self._refresh.values())


def _id_token(client_id: str, email: str) -> str:
    def part(document: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")

    claims = {
        "iss": "https://accounts.google.com",
        "aud": client_id,
        "sub": hashlib.sha256(email.lower().encode()).hexdigest()[:21],
        "email": email,
        "email_verified": True,
        "hd": email.rpartition("@")[2],
    }
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."
