"""A Google Admin SDK Directory API emulator, served over real HTTP on loopback.

It answers what komeet-sync calls, as Google does: ``users.list`` (by domain or customer,
with a search ``query``), ``users.get``, ``groups.list``, ``groups.get``, ``members.list``,
``members.get`` and ``members.hasMember`` under ``/admin/directory/v1/`` (page tokens, page
size limits, ``fields`` masks, ``includeDerivedMembership``, Google's JSON error bodies), the
OAuth 2.0 token endpoint for the JWT-bearer grant (RFC 7523) that a service account with
domain-wide delegation uses, and an admin's OAuth consent (``consent``: the consent page,
the authorization-code and refresh-token grants, revocation). The real ``google-auth``,
``google-auth-oauthlib`` and ``google-api-python-client`` run against it unchanged: point the
key file's ``token_uri`` at ``{url}/token``, use the client-secrets file ``oauth_client``
writes, and set ``GOOGLE_DIRECTORY_API_ENDPOINT`` to ``{url}``.

For tests and benchmarks it adds latency, fault injection (an error status on chosen
requests) and a request counter, also reachable over HTTP under ``/_emulator/`` when it runs
in another process (``python -m komeet_sync.emulators.directory_api --help``), and a log of
every call with its parameters (``calls``).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from google.auth import jwt

from komeet_sync.emulators import group_search, partial_response, user_search
from komeet_sync.emulators.consent import (
    AUTHORIZE_PATH,
    REVOKE_PATH,
    BadRequest,
    ConsentError,
    ConsentServer,
)
from komeet_sync.emulators.directory import Directory, domain_of
from komeet_sync.emulators.service_account import serialization, service_account_key

GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SCOPE_PREFIX = "https://www.googleapis.com/auth/"
API_PREFIX = "/admin/directory/v1/"

# Scopes that allow each method (Directory API reference, "Authorization scopes").
MEMBER_SCOPES = (
    "admin.directory.group.member.readonly",
    "admin.directory.group.member",
    "admin.directory.group.readonly",
    "admin.directory.group",
)
METHOD_SCOPES = {
    "users.list": ("admin.directory.user.readonly", "admin.directory.user"),
    "users.get": ("admin.directory.user.readonly", "admin.directory.user"),
    "groups.list": ("admin.directory.group.readonly", "admin.directory.group"),
    "groups.get": ("admin.directory.group.readonly", "admin.directory.group"),
    "members.list": MEMBER_SCOPES,
    "members.get": MEMBER_SCOPES,
    "members.hasMember": MEMBER_SCOPES,
}
PAGE_LIMITS = {"users.list": (100, 500), "groups.list": (200, 200), "members.list": (200, 200)}
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
DEFAULT_REASONS = {
    400: ("invalid", "Invalid Input"),
    401: ("authError", "Invalid Credentials"),
    403: ("forbidden", "Not Authorized to access this resource/api"),
    404: ("notFound", "Resource Not Found"),
    429: ("rateLimitExceeded", "Quota exceeded for quota metric 'Queries' of service admin"),
    500: ("backendError", "Backend Error"),
    502: ("backendError", "Bad Gateway"),
    503: ("backendError", "The service is currently unavailable."),
    504: ("backendError", "Deadline exceeded"),
}


# --- faults ----------------------------------------------------------------------------


@dataclass
class Fault:
    """An error answered instead of the real response.

    ``method`` is one of METHOD_SCOPES or ``token``; ``page`` (1 for the first) and
    ``group`` (a ``groupKey``, or the ``userKey`` of ``users.get``) narrow which requests it
    hits; ``times`` is how many it hits (None: every one, for good).
    """

    method: str
    status: int
    page: int | None = None
    group: str | None = None
    times: int | None = 1
    reason: str | None = None
    message: str | None = None
    hits: int = 0

    def matches(self, method: str, page: int | None, group: str | None) -> bool:
        if self.method != method or (self.times is not None and self.hits >= self.times):
            return False
        if self.page is not None and page != self.page:
            return False
        return self.group is None or (group or "").lower() == self.group.lower()


class ApiError(Exception):
    def __init__(self, status: int, message: str | None = None, reason: str | None = None):
        default_reason, default_message = DEFAULT_REASONS.get(status, ("unknown", "Error"))
        self.status = status
        self.reason = reason or default_reason
        self.message = message or default_message
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        """Google's JSON error body (Directory API, "Error responses")."""
        domain = "usageLimits" if "RateLimit" in self.reason else "global"
        return {
            "error": {
                "code": self.status,
                "message": self.message,
                "errors": [{"message": self.message, "domain": domain, "reason": self.reason}],
                "status": STATUS_NAMES.get(self.status, "UNKNOWN"),
            }
        }


class OAuthError(Exception):
    """An OAuth 2.0 error response (RFC 6749 §5.2), as Google's token endpoint sends it."""

    def __init__(self, status: int, error: str, description: str) -> None:
        self.status = status
        self.error = error
        self.description = description
        super().__init__(description)


@dataclass(frozen=True)
class Call:
    """One Directory API request as the emulator received it."""

    method: str
    key: str | None  # the groupKey or userKey of the path
    params: dict[str, str]


# --- the emulator ------------------------------------------------------------------------


@dataclass
class _Grant:
    client_id: str
    subject: str
    scopes: frozenset[str]


@dataclass
class DirectoryEmulator:
    """The Directory API and Google's token endpoint for one directory.

    ``register_service_account`` gives it a service account's key (it verifies the JWT
    signatures with it), ``authorise`` the scopes the customer granted that client for
    domain-wide delegation.
    """

    directory: Directory
    latency: float = 0.0
    host: str = "127.0.0.1"
    port: int = 0
    requests: Counter[str] = field(default_factory=Counter)
    faults: list[Fault] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, tuple[str, str]] = {}  # client_email -> (client_id, public key)
        self._delegations: dict[str, frozenset[str]] = {}  # client_id -> scopes
        self._tokens: dict[str, _Grant] = {}
        self.consent = ConsentServer(self.directory, self._issue)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._in_flight = 0
        self.most_in_flight = 0

    # -- configuration --

    def register_service_account(self, key_info: dict[str, Any]) -> None:
        """Accept JWTs signed by this service-account key (the key file's JSON)."""
        keys = serialization()
        private_key = keys.load_pem_private_key(key_info["private_key"].encode(), None)
        public_pem = private_key.public_key().public_bytes(
            encoding=keys.Encoding.PEM,
            format=keys.PublicFormat.SubjectPublicKeyInfo,
        )
        self._keys[key_info["client_email"]] = (str(key_info["client_id"]), public_pem.decode())

    def authorise(self, client_id: str, scopes: Iterable[str]) -> None:
        """Domain-wide delegation: the scopes the customer's admin granted this client."""
        self._delegations[str(client_id)] = frozenset(_scope_name(s) for s in scopes)

    def oauth_client(self, name: str = "komeet-sync") -> dict[str, Any]:
        """A new "Desktop app" OAuth client's client-secrets JSON, its endpoints this
        emulator's: an admin's consent through it reads the directory as that admin."""
        return self.consent.register_client(self.url, name)

    def fail(self, method: str, status: int, **options: Any) -> Fault:
        fault = Fault(method, status, **options)
        with self._lock:
            self.faults.append(fault)
        return fault

    def reset(self) -> None:
        """Forget the faults and the request counts."""
        with self._lock:
            self.faults.clear()
            self.requests.clear()
            self.calls.clear()
            self.most_in_flight = 0

    # -- serving --

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    def start(self) -> DirectoryEmulator:
        handler = type("Handler", (_Handler,), {"emulator": self})
        self._server = ThreadingHTTPServer((self.host, self.port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="directory-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> DirectoryEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- requests --

    @contextlib.contextmanager
    def in_flight(self) -> Iterator[None]:
        """Track how many requests are being answered at once (``most_in_flight``)."""
        with self._lock:
            self._in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self._in_flight)
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1

    def count(
        self, method: str, key: str | None = None, params: dict[str, str] | None = None
    ) -> None:
        with self._lock:
            self.requests[method] += 1
            self.requests["total"] += 1
            if method != "token":
                self.calls.append(Call(method, key, dict(params or {})))

    def injected(self, method: str, page: int | None = None, group: str | None = None):
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, page, group):
                    fault.hits += 1
                    return fault
        return None

    def token(self, form: dict[str, str]) -> dict[str, Any]:
        """The JWT-bearer grant (RFC 7523 §2.1) as Google answers it for delegation."""
        if form.get("grant_type") != JWT_BEARER:
            raise OAuthError(400, "unsupported_grant_type", "Invalid grant_type.")
        assertion = form.get("assertion", "")
        try:
            unverified = jwt.decode(assertion, verify=False)
        except ValueError:
            raise OAuthError(400, "invalid_grant", "Invalid JWT: malformed assertion.") from None
        issuer = str(unverified.get("iss", ""))
        if issuer not in self._keys:
            raise OAuthError(400, "invalid_grant", "Invalid JWT Signature.")
        client_id, public_key = self._keys[issuer]
        try:
            # google-auth addresses every assertion to Google's token endpoint, whatever the
            # key file's token_uri, and Google checks that audience.
            claims = jwt.decode(assertion, certs=public_key, audience=GOOGLE_TOKEN_AUDIENCE)
        except ValueError as exc:
            raise OAuthError(400, "invalid_grant", f"Invalid JWT: {exc}") from None
        subject = str(claims.get("sub") or "")
        user = self.directory.user(subject) if subject else None
        if user is None or user.get("suspended"):
            raise OAuthError(400, "invalid_grant", "Invalid email or User ID")
        scopes = frozenset(_scope_name(s) for s in str(claims.get("scope", "")).split())
        if not scopes or not scopes <= self._delegations.get(client_id, frozenset()):
            raise OAuthError(
                401,
                "unauthorized_client",
                "Client is unauthorized to retrieve access tokens using this method, or client "
                "not authorized for any of the scopes requested.",
            )
        token = self._issue(client_id, subject, scopes)
        return {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}

    def _issue(self, client_id: str, subject: str, scopes: Iterable[str]) -> str:
        """An access token acting as ``subject`` for ``scopes``."""
        token = "ya29.emulator-" + secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = _Grant(client_id, subject, frozenset(map(_scope_name, scopes)))
        return token

    def api(
        self,
        method: str,
        authorization: str,
        params: dict[str, str],
        key: str | None,
        member: str | None = None,
    ) -> dict[str, Any]:
        """One Directory API call's response body; raises ApiError as Google would."""
        grant = self._tokens.get(authorization.removeprefix("Bearer ").strip())
        if grant is None:
            raise ApiError(401, "Request had invalid authentication credentials.", "authError")
        if not grant.scopes.intersection(METHOD_SCOPES[method]):
            raise ApiError(403, "Request had insufficient authentication scopes.", "forbidden")
        admin = self.directory.user(grant.subject)
        if admin is None or not admin.get("isAdmin"):
            raise ApiError(403)
        if method == "groups.get":
            group = self._group(key)
            return _group_resource(group)
        if method == "users.list":
            return self._list(method, "users", self._users(params), params)
        if method == "users.get":
            user = self.directory.user_by_key(key or "")
            if user is None:
                raise ApiError(404, "Resource Not Found: userKey", "notFound")
            return user
        if method == "groups.list":
            return self._list(method, "groups", self._groups(params), params, _group_resource)
        group = self._group(key)
        if method == "members.get":
            found = self.directory.direct_member(group, member or "")
            if found is None:
                raise ApiError(404, "Resource Not Found: memberKey", "notFound")
            return found
        if method == "members.hasMember":
            return {"kind": "admin#directory#membersHasMember", **self._has(group, member or "")}
        derived = params.get("includeDerivedMembership", "false").lower() == "true"
        return self._list(method, "members", self.directory.members(group, derived), params)

    def _has(self, group: dict[str, Any], key: str) -> dict[str, bool]:
        """Direct or nested membership; a nested one only within one domain, as Google
        documents ``members.hasMember``: across domains it answers Invalid Input."""
        chain = self.directory.chain(group, key)
        if chain is not None and len(chain) > 1:
            found = self.directory.user_by_key(key) or self.directory.group(key) or {}
            address = found.get("primaryEmail") or found.get("email") or key
            if domain_of(address) != domain_of(group.get("email")):
                raise ApiError(
                    400,
                    "Invalid Input: memberKey and groupKey must be in the same domain to check "
                    "a nested membership",
                    "invalid",
                )
        return {"isMember": chain is not None}

    def _group(self, key: str | None) -> dict[str, Any]:
        group = self.directory.group(key or "")
        if group is None:
            raise ApiError(404, "Resource Not Found: groupKey", "notFound")
        return group

    def _groups(self, params: dict[str, str]) -> list[dict[str, Any]]:
        """``groups.list``: the groups of the ``customer`` (every domain of the account) or
        of one ``domain``, in the order of their emails, matching the search ``query``."""
        domain = params.get("domain", "").lower()
        if not domain and not params.get("customer"):
            raise ApiError(400, "Bad Request: give customer or domain", "badRequest")
        groups = self.directory.groups
        if domain:
            groups = [g for g in groups if domain_of(g.get("email")) == domain]
        if params.get("query"):
            try:
                groups = group_search.search(groups, params["query"])
            except user_search.InvalidQuery as exc:
                raise ApiError(400, f"Invalid Input: {exc}", "invalid") from None
        return sorted(groups, key=lambda g: str(g.get("email", "")).lower())

    def _users(self, params: dict[str, str]) -> list[dict[str, Any]]:
        domain = params.get("domain", "").lower()
        customer = params.get("customer")
        if not domain and not customer:
            raise ApiError(400, "Bad Request", "badRequest")
        if domain and domain not in self.directory.domains:
            raise ApiError(400, "Domain not found.", "notFound")
        users = self.directory.users_of(domain) if domain else self.directory.users
        if not params.get("query"):
            return users
        try:
            return user_search.search(users, params["query"])
        except user_search.InvalidQuery as exc:
            raise ApiError(400, f"Invalid Input: {exc}", "invalid") from None

    def _list(
        self,
        method: str,
        name: str,
        items: list[dict[str, Any]],
        params: dict[str, str],
        resource: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """One page of ``items``; ``resource`` makes each item of the page its resource."""
        size, offset, query = _paging(method, params)
        page = items[offset : offset + size]
        if resource is not None:
            page = [resource(item) for item in page]
        body: dict[str, Any] = {"kind": f"admin#directory#{name}", "etag": '"emulator"'}
        if page:
            body[name] = page
        if offset + size < len(items):
            body["nextPageToken"] = _token(offset + size, query)
        return body

    def page_of(self, method: str, params: dict[str, str]) -> int | None:
        """Which page a list request asks for (1 for the first), for fault matching."""
        if method not in PAGE_LIMITS:
            return None
        try:
            size, offset, _ = _paging(method, params)
        except ApiError:
            return None
        return offset // size + 1


def _group_resource(group: dict[str, Any]) -> dict[str, Any]:
    resource = {k: v for k, v in group.items() if k != "members"}
    resource.setdefault("kind", "admin#directory#group")
    resource["directMembersCount"] = str(len(group.get("members", [])))
    return resource


def _paging(method: str, params: dict[str, str]) -> tuple[int, int, str]:
    """A list request's page size, offset and query fingerprint; ApiError as Google
    answers a bad ``maxResults`` or ``pageToken``."""
    default, limit = PAGE_LIMITS[method]
    try:
        size = int(params.get("maxResults", default))
    except ValueError:
        raise ApiError(400, f"Invalid value for maxResults: {params['maxResults']}") from None
    if not 1 <= size <= limit:
        raise ApiError(400, f"Invalid Input: maxResults must be from 1 to {limit}")
    query = _query_fingerprint(method, params)
    return size, _offset(params.get("pageToken"), query), query


def _query_fingerprint(method: str, params: dict[str, str]) -> str:
    kept = sorted((k, v) for k, v in params.items() if k not in ("pageToken", "fields", "alt"))
    return hashlib.sha256(json.dumps([method, kept]).encode()).hexdigest()[:12]


def _token(offset: int, query: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([offset, query]).encode()).decode().rstrip("=")


def _offset(token: str | None, query: str) -> int:
    if not token:
        return 0
    try:
        offset, fingerprint = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, TypeError):
        raise ApiError(400, "Invalid Input: pageToken", "invalid") from None
    if fingerprint != query or not isinstance(offset, int) or offset < 0:
        raise ApiError(400, "Invalid Input: pageToken does not belong to this query", "invalid")
    return offset


def _scope_name(scope: str) -> str:
    return scope.removeprefix(SCOPE_PREFIX)


# --- HTTP ------------------------------------------------------------------------------

_ROUTES = (
    (re.compile(r"users"), "users.list"),
    (re.compile(r"users/(?P<key>[^/]+)"), "users.get"),
    (re.compile(r"groups"), "groups.list"),
    (re.compile(r"groups/(?P<key>[^/]+)"), "groups.get"),
    (re.compile(r"groups/(?P<key>[^/]+)/members"), "members.list"),
    (re.compile(r"groups/(?P<key>[^/]+)/members/(?P<member>[^/]+)"), "members.get"),
    (re.compile(r"groups/(?P<key>[^/]+)/hasMember/(?P<member>[^/]+)"), "members.hasMember"),
)


class _Handler(BaseHTTPRequestHandler):
    emulator: DirectoryEmulator
    protocol_version = "HTTP/1.1"  # keep-alive, as Google's front ends and httplib2 use
    # The headers and the body go out in two writes: with Nagle's algorithm the body waits
    # for the client's delayed ACK of the headers, 40 ms an answer that Google never adds.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, verb: str) -> None:
        parts = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        emulator = self.emulator
        if parts.path.startswith("/_emulator/"):
            self._control(verb, parts.path, body)
            return
        with emulator.in_flight():
            self._answer(verb, parts.path, params, body)

    def _answer(self, verb: str, path: str, params: dict[str, str], body: bytes) -> None:
        emulator = self.emulator
        if emulator.latency:
            time.sleep(emulator.latency)
        if verb == "POST" and path == "/token":
            emulator.count("token")
            form = {k: v[-1] for k, v in parse_qs(body.decode()).items()}
            fault = emulator.injected("token")
            try:
                if fault is not None:
                    raise OAuthError(fault.status, fault.reason or "internal_failure", "injected")
                if form.get("grant_type") in ("authorization_code", "refresh_token"):
                    self._json(200, emulator.consent.token(form, self._basic()))
                else:
                    self._json(200, emulator.token(form))
            except (OAuthError, ConsentError) as exc:
                self._json(exc.status, {"error": exc.error, "error_description": exc.description})
            return
        if path == AUTHORIZE_PATH:
            self._authorize(verb, params, body)
            return
        if verb == "POST" and path == REVOKE_PATH:
            emulator.count("revoke")
            form = {k: v[-1] for k, v in parse_qs(body.decode()).items()} | params
            try:
                emulator.consent.revoke(form.get("token", ""))
                self._json(200, {})
            except ConsentError as exc:
                self._json(exc.status, {"error": exc.error, "error_description": exc.description})
            return
        method, key, member = self._route(verb, path)
        if method is None:
            self._json(404, ApiError(404, f"Not Found: {path}").body())
            return
        emulator.count(method, key, params)
        fault = emulator.injected(method, emulator.page_of(method, params), key)
        try:
            if fault is not None:
                raise ApiError(fault.status, fault.message, fault.reason)
            authorization = self.headers.get("Authorization", "")
            result = emulator.api(method, authorization, params, key, member)
            if params.get("fields"):
                try:
                    selection = partial_response.parse(params["fields"])
                except partial_response.InvalidFields as exc:
                    raise ApiError(
                        400, f"Invalid field selection: {exc}", "invalidParameter"
                    ) from None
                result = partial_response.select(result, selection)
            self._json(200, result)
        except ApiError as exc:
            self._json(exc.status, exc.body())

    def _authorize(self, verb: str, params: dict[str, str], body: bytes) -> None:
        """The consent page (GET), and its answer (POST): a redirect to the client."""
        emulator = self.emulator
        emulator.count("authorize")
        try:
            if verb == "GET":
                self._html(200, emulator.consent.page(params))
                return
            form = {k: v[-1] for k, v in parse_qs(body.decode()).items()}
            location, problem = emulator.consent.decide(form)
            if location is None:
                self._html(200, emulator.consent.page(form, problem))
                return
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()
        except BadRequest as exc:
            self._html(400, f"<!doctype html><title>Error</title><p>{exc}</p>")

    def _basic(self) -> tuple[str, str] | None:
        """The client's id and secret from HTTP Basic authentication (RFC 6749 §2.3.1)."""
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None
        decoded = base64.b64decode(header[6:]).decode()
        client_id, _, secret = decoded.partition(":")
        return unquote(client_id), unquote(secret)

    def _route(self, verb: str, path: str) -> tuple[str | None, str | None, str | None]:
        """The method a path calls, and its ``groupKey``/``userKey`` and ``memberKey``."""
        if verb != "GET" or not path.startswith(API_PREFIX):
            return None, None, None
        rest = path[len(API_PREFIX) :]
        for pattern, method in _ROUTES:
            match = pattern.fullmatch(rest)
            if match:
                key, member = match.groupdict().get("key"), match.groupdict().get("member")
                return method, unquote(key) if key else None, unquote(member) if member else None
        return None, None, None

    def _control(self, verb: str, path: str, body: bytes) -> None:
        emulator = self.emulator
        if verb == "GET" and path == "/_emulator/requests":
            with emulator._lock:
                counts = dict(emulator.requests)
            self._json(200, counts | {"most_in_flight": emulator.most_in_flight})
        elif verb == "POST" and path == "/_emulator/faults":
            options = json.loads(body or b"{}")
            emulator.fail(options.pop("method"), int(options.pop("status")), **options)
            self._json(200, {"faults": len(emulator.faults)})
        elif verb == "POST" and path == "/_emulator/oauth-client":
            self._json(200, emulator.oauth_client())
        elif verb == "POST" and path == "/_emulator/consents":
            grant = json.loads(body or b"{}")
            scopes = tuple(grant.get("scopes") or (SCOPE_PREFIX + s for s in READ_ONLY_SCOPES))
            token = emulator.consent.grant(grant["client_id"], grant["subject"], scopes)
            self._json(200, {"refresh_token": token})
        elif verb == "POST" and path == "/_emulator/expire":
            ended = emulator.consent.expire(json.loads(body or b"{}").get("subject"))
            self._json(200, {"expired": ended})
        elif verb == "POST" and path == "/_emulator/reset":
            emulator.reset()
            self._json(200, {})
        else:
            self._json(404, {"error": f"no control endpoint {verb} {path}"})

    def _html(self, status: int, page: str) -> None:
        payload = page.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _json(self, status: int, document: dict[str, Any]) -> None:
        payload = json.dumps(document, separators=(",", ":")).encode()
        self.send_response(status, HTTPStatus(status).phrase if status in _PHRASES else None)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


_PHRASES = {status.value for status in HTTPStatus}


# --- running it on its own -----------------------------------------------------------------

READ_ONLY_SCOPES = (
    "admin.directory.user.readonly",
    "admin.directory.group.readonly",
    "admin.directory.group.member.readonly",
)


def main(argv: list[str] | None = None) -> int:
    """Serve a directory until interrupted; print one JSON line saying where."""
    import argparse
    import os
    import signal
    from pathlib import Path

    from komeet_sync.emulators.directory_generator import generate_directory

    parser = argparse.ArgumentParser(
        prog="python -m komeet_sync.emulators.directory_api",
        description="Serve a Google Directory API emulator on loopback.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--directory", type=Path, metavar="FILE", help="Directory JSON")
    source.add_argument("--users", type=Path, metavar="FILE", help="a users.list export")
    source.add_argument("--generate", type=int, metavar="USERS", help="generate this many users")
    parser.add_argument("--members", type=Path, metavar="FILE", help="with --users")
    parser.add_argument("--admin", action="append", default=[], help="with --users; repeat")
    parser.add_argument("--domain", default="example.com", help="with --generate")
    parser.add_argument("--groups", type=int, default=10, help="with --generate")
    parser.add_argument("--group-size", type=int, help="with --generate")
    parser.add_argument("--nesting", type=int, default=2, help="with --generate")
    parser.add_argument("--seed", type=int, default=0, help="with --generate")
    parser.add_argument(
        "--other-groups", type=int, default=0, help="with --generate: unselected groups"
    )
    parser.add_argument("--port", type=int, default=0, help="default: any free port")
    parser.add_argument("--latency", type=float, default=0.0, metavar="SECONDS")
    parser.add_argument(
        "--key-out",
        type=Path,
        metavar="FILE",
        required=True,
        help="write a throwaway service-account key here, authorised for the read-only scopes",
    )
    parser.add_argument(
        "--oauth-client-out",
        type=Path,
        metavar="FILE",
        help="write the client-secrets JSON of an OAuth client (Desktop app) here, for "
        "`komeet-sync google authorize` (GOOGLE_OAUTH_CLIENT_FILE)",
    )
    args = parser.parse_args(argv)
    selected: tuple[str, ...] = ()
    admins = list(args.admin)
    if args.generate is not None:
        generated = generate_directory(
            args.generate,
            domain=args.domain,
            groups=args.groups,
            other_groups=args.other_groups,
            group_size=args.group_size,
            nesting=args.nesting,
            seed=args.seed,
        )
        directory, selected, admins = generated.directory, generated.selected, [generated.admin]
    elif args.directory is not None:
        directory = Directory.from_json(json.loads(args.directory.read_text()))
    else:
        if args.members is None:
            parser.error("--users needs --members")
        directory = Directory.from_exports(
            json.loads(args.users.read_text()), json.loads(args.members.read_text()), admins
        )
    emulator = DirectoryEmulator(directory, latency=args.latency, port=args.port).start()
    key = service_account_key(emulator.token_uri)
    emulator.register_service_account(key)
    emulator.authorise(key["client_id"], READ_ONLY_SCOPES)
    args.key_out.write_text(json.dumps(key, indent=2))
    os.chmod(args.key_out, 0o600)
    if args.oauth_client_out is not None:
        args.oauth_client_out.write_text(json.dumps(emulator.oauth_client(), indent=2))
        os.chmod(args.oauth_client_out, 0o600)
    stopped = threading.Event()
    # Before it says it has started: a SIGTERM sent at once stops it cleanly too.
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    print(
        json.dumps(
            {
                "url": emulator.url,
                "token_uri": emulator.token_uri,
                "key_file": str(args.key_out),
                "oauth_client_file": str(args.oauth_client_out or ""),
                "client_id": key["client_id"],
                "admins": admins,
                "selected": list(selected),
                "users": len(directory.users),
            }
        ),
        flush=True,
    )
    with contextlib.suppress(KeyboardInterrupt):
        stopped.wait()
    emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
