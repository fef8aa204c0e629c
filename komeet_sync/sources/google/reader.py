"""Reading a Google Workspace domain through the Admin SDK Directory API, as the customer's
admin: by the OAuth consent that admin gave (``google authorize``, stored per domain), when
the domain has one, else as Komeet's service account acting for the domain's admin email
(domain-wide delegation).

The whole directory is read in the fewest requests Google allows (``users.list`` 500 a page,
``members.list`` 200 a page with nested groups flattened by Google), member lists
concurrently while the users page, or nothing is read: a page that still fails after its
retries fails the whole extraction (ARCHITECTURE.md, "Guards": never plan from a partial
read).
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import google_auth_httplib2
import httplib2
from google.auth.exceptions import RefreshError, TransportError
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from sqlalchemy import Engine

from komeet_sync.backoff import Backoff
from komeet_sync.model.domain_config import DomainConfig, SourceKind
from komeet_sync.model.snapshots import DirectorySnapshot
from komeet_sync.progress import Advance
from komeet_sync.sources.google import resources as google_resources
from komeet_sync.sources.google.credentials import (
    ENDPOINT_ENV,
    KEY_FILE_ENV,
    SCOPES,
    GoogleError,
    ServiceAccountKey,
    endpoint_from_environment,
)
from komeet_sync.sources.google.oauth import GrantExpired, OAuthClient
from komeet_sync.store.authorizations import AuthorizationStore, GoogleAuthorization
from komeet_sync.store.sealed import SealError

ATTEMPTS_ENV = "KOMEET_SYNC_GOOGLE_ATTEMPTS"
BACKOFF_ENV = "KOMEET_SYNC_GOOGLE_BACKOFF"

USERS_PAGE = 500  # users.list maxResults limit
MEMBERS_PAGE = 200  # members.list maxResults limit
# Partial responses (Directory API "fields"): exactly what the engine and the reports use.
USER_RESOURCE_FIELDS = (
    "id,primaryEmail,name(givenName,familyName),suspended,archived,aliases,"
    "nonEditableAliases,emails,externalIds,orgUnitPath,creationTime,lastLoginTime"
)
USER_FIELDS = f"nextPageToken,users({USER_RESOURCE_FIELDS})"
MEMBER_FIELDS = "nextPageToken,members(id,email,type)"
COUNT_FIELDS = "nextPageToken,members(type)"
GROUP_FIELDS = "id,email,name"
GROUPS_PAGE = 200  # groups.list maxResults limit
# groups.list returns directMembersCount (a string of digits) with each group: the direct
# members, nested groups counted as one member each.
GROUP_LIST_FIELDS = "nextPageToken,groups(id,email,name,directMembersCount)"
# Google's rate-limit answers: 429, and 403 with one of these reasons (Directory API,
# "Limits and quotas"); 5xx are transient server errors.
RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
NO_RESPONSE = "no response"  # no HTTP answer: refused, reset, timed out, unknown host
GOOGLE_API = "admin.googleapis.com"
DELEGATION_PAGE = (
    "Google Admin console > Security > Access and data control > API controls > "
    "Manage domain-wide delegation"
)


class AuthorisationRefused(GoogleError):
    """Google refused the delegation: the customer's admin console must grant it."""


class ExtractionFailed(GoogleError):
    """A request failed for good: no snapshot was produced."""

    def __init__(
        self, call: str, status: str, detail: str, attempts: int = 1, host: str = ""
    ) -> None:
        self.call = call
        self.status = status
        self.detail = detail
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        advice = (
            f"Check that this machine reaches {host} (DNS, firewall, proxy), then run it again."
            if status == NO_RESPONSE and host
            else "Run it again later; if it keeps failing, check Google Workspace's status."
        )
        super().__init__(
            f"{call} failed{tries}: {status} ({detail}); nothing was read, so no plan was made. "
            + advice
        )


@dataclass(frozen=True)
class GroupCount:
    """A selected group as Google resolved it."""

    group: str
    found: bool
    name: str | None = None
    members: int = 0  # users, direct and nested (derived membership)


@dataclass(frozen=True)
class DomainCheck:
    """What ``komeet-sync google check`` found: counts, and problems in words."""

    domains: tuple[str, ...]  # the domain, then its alias domains
    subject: str
    client_id: str
    users: int | None
    groups: tuple[GroupCount, ...]
    problems: tuple[str, ...]
    requests: int
    credential: str = ""  # how the domain is read, in words (``DirectoryReader.credential``)


def reader_for(
    config: DomainConfig,
    key_file: str | None = None,
    endpoint: str | None = None,
    engine: Engine | None = None,
) -> DirectoryReader:
    """The reader of a Google domain: as the admin whose consent the database (``engine``)
    holds for it, else as its delegated admin. The key file and the endpoint, unless given,
    come from ``GOOGLE_SERVICE_ACCOUNT_FILE`` and ``GOOGLE_DIRECTORY_API_ENDPOINT``, the OAuth
    client from ``GOOGLE_OAUTH_CLIENT_FILE``; the retry settings from
    ``KOMEET_SYNC_GOOGLE_ATTEMPTS`` and ``KOMEET_SYNC_GOOGLE_BACKOFF``."""
    if config.source is not SourceKind.GOOGLE:
        raise GoogleError(f"{config.domain} syncs by SCIM, not from Google Workspace")
    backoff = Backoff.from_environment(ATTEMPTS_ENV, BACKOFF_ENV, GoogleError)
    authorization = AuthorizationStore(engine).get(config.domain) if engine else None
    if authorization is not None:
        try:
            client = OAuthClient.load()
        except GoogleError as exc:
            raise GoogleError(f"{config.domain} is {authorization.describe()}: {exc}") from None
        return DirectoryReader(
            None,
            authorization.admin_email,
            endpoint=endpoint or endpoint_from_environment(),
            backoff=backoff,
            authorization=authorization,
            oauth_client=client,
        )
    if not config.admin_email:
        raise GoogleError(
            f"{config.domain} has no admin email: the delegation needs the super admin to act "
            "as; configure it again with --admin-email"
        )
    return DirectoryReader(
        ServiceAccountKey.load(key_file),
        config.admin_email,
        endpoint=endpoint or endpoint_from_environment(),
        backoff=backoff,
    )


class _RequestCount:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def add(self) -> None:
        with self._lock:
            self.value += 1


class _CountingHttp(httplib2.Http):
    """An ``httplib2.Http`` that counts the requests it sends."""

    def __init__(self, count: _RequestCount, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self._count = count

    def request(self, *args: Any, **kwargs: Any) -> Any:
        self._count.add()
        return super().request(*args, **kwargs)


class _Stopped(Exception):
    """Another part of the extraction failed: stop reading."""


@dataclass
class DirectoryReader:
    """Reads one Google Workspace through the Directory API as one of its admins: with an
    ``authorization`` (an admin's OAuth consent, used through ``oauth_client``, the client it
    was granted to), else with the service account ``key`` by delegation.

    ``workers`` bounds the member lists read at once; each thread has its own ``Http``
    (httplib2 is not thread-safe).
    """

    key: ServiceAccountKey | None
    subject: str  # the customer's admin: who consented, or whom the service account acts as
    endpoint: str | None = None
    backoff: Backoff = field(default_factory=Backoff)
    workers: int = 4
    timeout: float = 60.0
    sleep: Callable[[float], None] = time.sleep
    seed: int | None = None
    authorization: GoogleAuthorization | None = None
    oauth_client: OAuthClient | None = None

    def __post_init__(self) -> None:
        self.credentials = self._credentials()
        self._count = _RequestCount()
        self._local = threading.local()
        self._rng = random.Random(self.seed)
        self._rng_lock = threading.Lock()
        self.service = build(
            "admin",
            "directory_v1",
            http=self._http(),
            static_discovery=True,
            cache_discovery=False,
            client_options={"api_endpoint": self.endpoint} if self.endpoint else None,
        )

    @property
    def requests(self) -> int:
        """HTTP requests sent so far, the token requests and retries included."""
        return self._count.value

    @property
    def client_id(self) -> str:
        return self._client().client_id

    @property
    def credential(self) -> str:
        """How the domain is read, in words: "authorized by admin@acme.com on 2026-12-03
        (OAuth)", or "service account client id 1234 by domain-wide delegation"."""
        if self.authorization is not None:
            return f"{self.authorization.describe()} (OAuth)"
        return f"service account client id {self.client_id} by domain-wide delegation"

    def _client(self) -> ServiceAccountKey | OAuthClient:
        client = self.oauth_client if self.authorization is not None else self.key
        assert client is not None, "a reader needs a service-account key or an OAuth client"
        return client

    def _credentials(self) -> Any:
        authorization, client = self.authorization, self.oauth_client
        if authorization is None:
            assert self.key is not None, "a reader needs a service-account key or a consent"
            return self.key.delegated(self.subject)
        assert client is not None, "a consent is used through the OAuth client it was granted"
        if client.client_id != authorization.client_id:
            raise GoogleError(
                f"{authorization.domain} was authorized for the OAuth client "
                f"{authorization.client_id}, and GOOGLE_OAUTH_CLIENT_FILE={client.path} is "
                f"client {client.client_id}: set it to that client's file, or run "
                f"`komeet-sync google authorize {authorization.domain}` again"
            )
        try:
            return client.credentials(authorization.refresh_token())
        except SealError as exc:
            raise GoogleError(
                f"the authorization of {authorization.domain} cannot be opened: {exc}"
            ) from None

    # -- reading --

    def authenticate(self) -> None:
        """Get an access token for the delegated admin (one token request), retrying when
        the token endpoint cannot be reached or answers a transient error."""
        request = google_auth_httplib2.Request(self._http().http)
        token_uri = self._client().token_uri
        call = f"the token request to {token_uri}"
        status, detail = NO_RESPONSE, ""
        for attempt in range(1, self.backoff.attempts + 1):
            try:
                self.credentials.refresh(request)
                return
            except RefreshError as exc:
                if not getattr(exc, "retryable", False):
                    raise self._refused(exc) from None
                status, detail = "transient error", _first_line(exc)
            except (TransportError, httplib2.HttpLib2Error, OSError) as exc:
                status, detail = NO_RESPONSE, _first_line(exc)
            self._wait(attempt)
        owner = "OAuth client file" if self.authorization is not None else "key file"
        host = f"the {owner}'s token_uri, {token_uri}"
        raise ExtractionFailed(call, status, detail, self.backoff.attempts, host)

    def probe(self, domain: str) -> None:
        """Whether this admin reads ``domain``'s users: one token request and one
        ``users.list`` of one user. Raises AuthorisationRefused or ExtractionFailed."""
        self.authenticate()
        request = self.service.users().list(domain=domain, maxResults=1, fields="users(id)")
        self.execute(request, f"users.list of {domain}")

    def extract(
        self, domains: Sequence[str], groups: Sequence[str], progress: Advance | None = None
    ) -> DirectorySnapshot:
        """Every user whose primary email is in one of ``domains`` (the domain, then its
        alias domains) and the members of each selected group, read whole, with the time
        the read began and the requests it took.

        Raises ExtractionFailed or AuthorisationRefused, and then nothing is returned.
        """
        started, clock = datetime.now(UTC), time.monotonic()
        before = self.requests
        self.authenticate()
        users, _, by_group = self._concurrently(
            domains, groups, self._group_members, progress=progress
        )
        members = {group: listing for group, (_, listing) in by_group.items()}
        return dataclasses.replace(
            google_resources.snapshot(users, members),
            started_at=started,
            seconds=time.monotonic() - clock,
            requests=self.requests - before,
        )

    def check(self, domains: Sequence[str], groups: Sequence[str]) -> DomainCheck:
        """Authenticate, count the users, resolve each selected group and count its members:
        the "launch and verify" step of setting a domain up."""
        before = self.requests
        domain = domains[0]
        problems: list[str] = []
        try:
            self.authenticate()
            users, unknown, by_group = self._concurrently(
                domains, groups, self._group_count, count=True
            )
        except GoogleError as exc:
            return DomainCheck(
                tuple(domains),
                self.subject,
                self.client_id,
                None,
                (),
                (str(exc),),
                self.requests - before,
                self.credential,
            )
        counts = tuple(by_group[group][0] for group in groups)
        for group in counts:
            if not group.found:
                problems.append(
                    f"selected group {group.group} does not exist in Google Workspace: "
                    "correct its email, or remove it from the domain's groups"
                )
            elif group.members == 0:
                problems.append(
                    f"selected group {group.group} has no user members: syncing it would "
                    "deactivate everyone, so the domain would be held"
                )
        for alias in unknown:
            problems.append(
                f"alias domain {alias} is not a domain of this Google Workspace: nobody's "
                "primary email can be in it; remove it from the alias domains if that is wrong"
            )
        if not users:
            problems.append(f"Google Workspace has no user in {domain}")
        return DomainCheck(
            tuple(domains),
            self.subject,
            self.client_id,
            len(users),
            counts,
            tuple(problems),
            self.requests - before,
            self.credential,
        )

    def _concurrently(
        self,
        domains: Sequence[str],
        groups: Sequence[str],
        read_group: Callable[[str, threading.Event], tuple[GroupCount, list | None]],
        count: bool = False,
        progress: Advance | None = None,
    ) -> tuple[list[Any], list[str], dict[str, tuple[GroupCount, list | None]]]:
        """Page the users here while a bounded pool reads the groups; any failure stops
        every reader and is raised."""
        stop = threading.Event()
        pool = ThreadPoolExecutor(
            max_workers=max(1, min(self.workers, len(groups))), thread_name_prefix="members"
        )
        try:
            futures = {group: pool.submit(read_group, group, stop) for group in groups}
            users: list[Any] = []
            unknown: list[str] = []
            for position, domain in enumerate(domains):
                # An alias domain the Workspace does not have holds nobody: not a failure.
                found = self._users(
                    domain, futures, count, missing=position > 0, progress=progress, before=users
                )
                if found is None:
                    unknown.append(domain)
                users.extend(found or [])
            return users, unknown, {group: future.result() for group, future in futures.items()}
        except BaseException:
            stop.set()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _users(
        self,
        domain: str,
        futures: dict[str, Future],
        count: bool,
        missing: bool,
        progress: Advance | None = None,
        before: Sequence[Any] = (),
    ) -> list[Any] | None:
        """The users of one domain, or None when ``missing`` and Google does not know it."""
        users: list[Any] = []
        fields = "nextPageToken,users(id)" if count else USER_FIELDS
        request = self.service.users().list(domain=domain, maxResults=USERS_PAGE, fields=fields)
        page = 1
        while request is not None:
            for future in futures.values():  # a group already failed: stop paging
                if future.done() and future.exception() is not None:
                    raise future.exception()  # type: ignore[misc]
            response = self.execute(
                request, f"users.list page {page} of {domain}", missing=missing and page == 1
            )
            if response is None:
                return None
            users.extend(response.get("users") or [])
            if progress is not None:  # Google gives no total
                progress(len(before) + len(users), None)
            request = self.service.users().list_next(request, response)
            page += 1
        return users

    def list_groups(self, query: str | None = None) -> list[dict[str, Any]]:
        """Every group of the customer's Workspace (``customer=my_customer``: its groups in
        every domain of the account), or those matching the search ``query`` ("Search for
        groups": ``email:PREFIX*``, ``name:PREFIX*``, ``name='...'``), read in one paged
        ``groups.list`` pass of 200 a page, each with ``id``, ``email``, ``name`` and
        ``directMembersCount`` only (``fields``)."""
        options: dict[str, Any] = {"customer": "my_customer", "maxResults": GROUPS_PAGE}
        if query:
            options["query"] = query
        listing = self.service.groups()
        request = listing.list(fields=GROUP_LIST_FIELDS, **options)
        groups: list[dict[str, Any]] = []
        page = 1
        while request is not None:
            response = self.execute(request, f"groups.list page {page}")
            groups.extend(response.get("groups") or [])
            request = listing.list_next(request, response)
            page += 1
        return groups

    def group_members(self, group: str, derived: bool = True) -> list[Any] | None:
        """One group's members as ``extract`` lists a selected group's (``derived``: nested
        groups flattened by Google; else its direct members, nested groups as members of
        type GROUP); None when it does not exist."""
        return self._group(group, threading.Event(), MEMBER_FIELDS, derived)[1]

    def _group_members(self, group: str, stop: threading.Event) -> tuple[GroupCount, list | None]:
        return self._group(group, stop, MEMBER_FIELDS)

    def _group_count(self, group: str, stop: threading.Event) -> tuple[GroupCount, list | None]:
        return self._group(group, stop, COUNT_FIELDS)

    def _group(
        self, group: str, stop: threading.Event, fields: str, derived: bool = True
    ) -> tuple[GroupCount, list | None]:
        """A selected group resolved (``groups.get``) and its members, nested groups
        flattened by Google (``includeDerivedMembership``); None when it does not exist."""
        groups = self.service.groups()
        resolved = self.execute(
            groups.get(groupKey=group, fields=GROUP_FIELDS), f"groups.get {group}", missing=True
        )
        if resolved is None:
            return GroupCount(group, found=False), None
        members: list[Any] = []
        listing = self.service.members()
        request = listing.list(
            groupKey=group, includeDerivedMembership=derived, maxResults=MEMBERS_PAGE, fields=fields
        )
        page = 1
        while request is not None:
            if stop.is_set():
                raise _Stopped
            response = self.execute(request, f"members.list page {page} of {group}", missing=True)
            if response is None:  # deleted while we read it
                return GroupCount(group, found=False), None
            members.extend(response.get("members") or [])
            request = listing.list_next(request, response)
            page += 1
        users = sum(1 for member in members if str(member.get("type", "USER")) != "GROUP")
        return GroupCount(group, True, resolved.get("name"), users), members

    # -- one request --

    def execute(self, request: Any, call: str, missing: bool = False) -> Any:
        """Send ``request`` (made with ``service``) on this thread's Http, retrying what
        Google says is transient; with ``missing``, None when Google answers that what it
        names does not exist. ``call`` names the request in errors."""
        http = self._http()
        status, detail = NO_RESPONSE, ""
        for attempt in range(1, self.backoff.attempts + 1):
            try:
                return request.execute(http=http, num_retries=0)
            except HttpError as exc:
                code = int(exc.resp.status)
                reason, message = _error_of(exc)
                if missing and (code == 404 or (code == 400 and reason == "notFound")):
                    return None
                if not (code == 429 or code >= 500 or reason in RATE_LIMIT_REASONS):
                    raise self._answer(call, code, reason, message) from None
                status, detail = f"HTTP {code} {reason}".rstrip(), message
            except RefreshError as exc:
                raise self._refused(exc) from None
            except (httplib2.HttpLib2Error, OSError) as exc:  # refused, reset, timed out
                status, detail = NO_RESPONSE, _first_line(exc) or type(exc).__name__
            self._wait(attempt)
        host = f"{ENDPOINT_ENV}'s {self.endpoint}" if self.endpoint else GOOGLE_API
        raise ExtractionFailed(call, status, detail, self.backoff.attempts, host)

    def _wait(self, attempt: int) -> None:
        """The backoff before the next attempt, if there is one."""
        if attempt < self.backoff.attempts:
            with self._rng_lock:
                wait = self.backoff.delay(attempt, self._rng)
            self.sleep(wait)

    def _http(self) -> google_auth_httplib2.AuthorizedHttp:
        http = getattr(self._local, "http", None)
        if http is None:
            http = google_auth_httplib2.AuthorizedHttp(
                self.credentials, http=_CountingHttp(self._count, self.timeout)
            )
            self._local.http = http
        return http

    # -- explaining a refusal --

    def _grant_advice(self) -> str:
        if self.authorization is not None:
            return f"Run `komeet-sync google authorize {self.authorization.domain}` again"
        return (
            f"In the {DELEGATION_PAGE}, the customer must authorise client id "
            f"{self.client_id} for the scopes {','.join(SCOPES)}"
        )

    def _refused(self, exc: RefreshError) -> GoogleError:
        detail = _first_line(exc)
        if self.authorization is not None:
            return self._consent_refused(detail)
        if "invalid_grant" in detail and "email" in detail.lower():
            return AuthorisationRefused(
                f"Google does not know {self.subject} as an active user ({detail}): set the "
                "domain's admin email to an active super admin of the customer's Workspace"
            )
        if "unauthorized_client" in detail or "access_denied" in detail:
            return AuthorisationRefused(
                f"Google refused to let Komeet's service account act as {self.subject} "
                f"({detail}). {self._grant_advice()}."
            )
        return AuthorisationRefused(
            f"Google refused a token for {self.subject} ({detail}). {self._grant_advice()}, "
            f"and {KEY_FILE_ENV} must be that service account's current key."
        )

    def _consent_refused(self, detail: str) -> GoogleError:
        """The stored consent refused by Google's token endpoint, in one line."""
        assert self.authorization is not None
        domain, admin = self.authorization.domain, self.authorization.admin_email
        again = f"run `komeet-sync google authorize {domain}` again"
        if "invalid_grant" in detail:
            return GrantExpired(
                f"the authorization of {domain} by {admin} was revoked or expired at Google: "
                + again
            )
        return AuthorisationRefused(
            f"Google refused a token for the authorization of {domain} by {admin} "
            f"({detail}): {again}"
        )

    def _answer(self, call: str, code: int, reason: str, message: str) -> GoogleError:
        if code == 403 and "scope" in message.lower():
            return AuthorisationRefused(
                f"{call}: Google answered {code} {message}. {self._grant_advice()}."
            )
        if code in (401, 403) and self.authorization is not None:
            domain = self.authorization.domain
            return AuthorisationRefused(
                f"{call}: Google answered {code} {message}: {self.subject}, who authorized "
                f"{domain}, must be an admin of its Workspace; run `komeet-sync google "
                f"authorize {domain}` as one"
            )
        if code in (401, 403):
            return AuthorisationRefused(
                f"{call}: Google answered {code} {message}: {self.subject} must be a super "
                "admin of the customer's Workspace; set the domain's admin email to one"
            )
        if code == 400 and reason == "notFound" and call.startswith("users.list"):
            return ExtractionFailed(
                call, f"HTTP {code} {reason}", f"{message}: is the domain in this Workspace?"
            )
        return ExtractionFailed(call, f"HTTP {code} {reason}".rstrip(), message)


def _error_of(exc: HttpError) -> tuple[str, str]:
    """The reason and message of Google's JSON error body (Directory API, "Error
    responses"), e.g. ``("rateLimitExceeded", "Quota exceeded ...")``."""
    details = exc.error_details if isinstance(exc.error_details, list) else []
    reason = next(
        (str(d["reason"]) for d in details if isinstance(d, dict) and d.get("reason")), ""
    )
    message = str(exc.reason or "") or str(exc.resp.reason or "")
    return reason, message


def _first_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:  # "Connection refused", not errno 111
        return exc.strerror
    text = str(exc.args[0]) if exc.args else str(exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__
