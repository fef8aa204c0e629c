"""Komeet's SCIM 2.0 API (RFC 7644), as the sync reads and writes it.

The client discovers what the target supports (``/ServiceProviderConfig``, RFC 7644 §4),
lists a domain's accounts in pages (§3.4.2.4), searches one ``userName`` (§3.4.2.2),
creates (§3.3) and patches (§3.5.2) users, and sends Bulk requests (§3.7). There is no
method that deletes: a leaver is deactivated with ``PATCH active false`` (ARCHITECTURE.md,
"Situations"), and ``send`` refuses the DELETE verb outright.

Transient failures are retried with capped exponential backoff and full jitter: 429
(waiting at least its ``Retry-After``), 5xx, timeouts and dropped connections. A create is
not retried here, because a POST whose answer was lost may have been applied: the caller
searches before it posts again (see ``apply``).
"""

from __future__ import annotations

import json
import math
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import msgspec
import requests
from requests.adapters import HTTPAdapter
from scim2_models import ServiceProviderConfig

from komeet_sync.backoff import Backoff
from komeet_sync.komeet.parallel import in_parallel
from komeet_sync.model.collector import collector_paused
from komeet_sync.model.domain_names import check_domain
from komeet_sync.model.json_values import json_kind
from komeet_sync.progress import Advance
from komeet_sync.settings import is_http_url

URL_ENV = "KOMEET_SCIM_URL"
TOKEN_ENV = "KOMEET_SCIM_TOKEN"
TIMEOUT_ENV = "KOMEET_SYNC_KOMEET_TIMEOUT"
ATTEMPTS_ENV = "KOMEET_SYNC_KOMEET_ATTEMPTS"
BACKOFF_ENV = "KOMEET_SYNC_KOMEET_BACKOFF"

SCIM_JSON = "application/scim+json"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
# What the engine reads of an account (komeet.accounts), and nothing more.
USER_ATTRIBUTES = ",".join(
    [
        "userName",
        "externalId",
        "name",
        "active",
        "emails",
        f"{ENTERPRISE_SCHEMA}:employeeNumber",
    ]
)
# Accounts asked for per list request, or the target's filter.maxResults if smaller. A
# request can cost the target a pass over all the domain's accounts (scim2-server filters
# and sorts them all for each page: benchmarks/RESULTS.md), so pages are as large as it
# allows, within responses of about 340 KB.
PAGE_SIZE = 1000
# A Retry-After longer than this is not waited for: the action is recorded as failed and a
# later apply resumes it.
RETRY_AFTER_CAP = 300.0
BODY_KEPT = 4000  # characters of a response body kept for the ledger
# How urllib3 and the resolver say a host name is unknown, on Linux, macOS and Windows.
DNS_FAILURES = (
    "NameResolutionError",
    "Name or service not known",
    "nodename nor servname",
    "getaddrinfo failed",
    "Temporary failure in name resolution",
)
READ_METHODS = frozenset({"GET"})
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT"})  # never DELETE


class KomeetError(Exception):
    """Komeet cannot be used as configured; the message says what to fix."""


class KomeetRefused(KomeetError):
    """Komeet refused the token (401) or the operation's rights (403): every further request
    would be refused too, so the apply stops and can be resumed once fixed."""


_DECODER = msgspec.json.Decoder()


@dataclass(frozen=True)
class Capabilities:
    """What the target announces in its ServiceProviderConfig (RFC 7643 §5)."""

    filter: bool
    max_results: int | None
    patch: bool
    bulk: bool
    max_operations: int
    max_payload_size: int
    # Pages can be asked for at any startIndex, so all of them at once (see ``of``).
    index_paging: bool = False

    @classmethod
    def of(cls, config: ServiceProviderConfig) -> Capabilities:
        """``index_paging``: the target's ``pagination.index`` where it announces its
        pagination (RFC 9865 §4), else whether it announces filtering, whose ``maxResults``
        bounds its pages; a target that announces neither is read one page after another."""
        bulk = config.bulk
        filter_ = config.filter
        filtering = bool(filter_ and filter_.supported)
        pagination = config.pagination
        return cls(
            filter=filtering,
            max_results=(filter_.max_results if filter_ else None) or None,
            patch=bool(config.patch and config.patch.supported),
            bulk=bool(bulk and bulk.supported and (bulk.max_operations or 0) > 0),
            max_operations=int(bulk.max_operations or 0) if bulk else 0,
            max_payload_size=int(bulk.max_payload_size or 0) if bulk else 0,
            index_paging=bool(pagination.index) if pagination is not None else filtering,
        )


@dataclass(frozen=True)
class Reply:
    """Komeet's answer to one request, after the retries: ``status`` is None when no answer
    came (timeout, dropped connection)."""

    status: int | None
    body: str
    attempts: int
    error: str = ""  # why there was no answer, in words
    retry_after: float | None = None  # seconds, from the Retry-After header
    timed_out: bool = False  # no answer within the client's timeout

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def transient(self) -> bool:
        return self.status is None or self.status == 429 or self.status >= 500

    def document(self) -> dict[str, Any]:
        """The body's JSON object ({} when there is none): decoded by msgspec, which gives
        the values json gives for every document it takes, in half the time of a page of
        1,000 accounts; by json when msgspec refuses it."""
        if not self.body:
            return {}
        try:
            value = _DECODER.decode(self.body)
        except msgspec.DecodeError:
            try:
                value = json.loads(self.body)
            except ValueError:
                return {}
        return value if isinstance(value, dict) else {}

    def describe(self) -> str:
        """The answer in words, for a ledger row or a message."""
        if self.status is None:
            return f"no answer from Komeet ({self.error})"
        document = self.document()
        detail = document.get("detail") or self.body[:200].strip() or "no body"
        kind = f" {document['scimType']}" if document.get("scimType") else ""
        return f"Komeet answered {self.status}{kind}: {detail}"

    def kept_body(self) -> str | None:
        return self.body[:BODY_KEPT] if self.body else None


@dataclass(frozen=True)
class ListPage:
    """One page of Komeet's accounts, a SCIM ListResponse (RFC 7644 §3.4.2): the accounts it
    holds, and what it says of itself."""

    total: int  # totalResults: the accounts of the whole listing
    resources: list[dict[str, Any]]
    items_per_page: Any  # itemsPerPage, as given (None: left out)
    start_index: Any  # startIndex, as given (None: left out)

    @classmethod
    def of(cls, document: dict[str, Any], start: int) -> ListPage:
        """The page Komeet answered at ``start``; KomeetError when it is not a ListResponse
        (no count in totalResults, Resources not a list)."""
        total = document.get("totalResults")
        resources = document.get("Resources", [])
        if not _is_count(total) or not isinstance(resources, list):
            what = (
                f"totalResults is {json_kind(total)}, not a count"
                if not _is_count(total)
                else f"Resources is {json_kind(resources)}, not a list"
            )
            raise KomeetError(
                f"Komeet's answer to the list of accounts at startIndex {start} is not a SCIM "
                f"ListResponse (RFC 7644 §3.4.2): {what}; nothing was planned. Check {URL_ENV}"
            )
        assert isinstance(total, int)
        return cls(total, resources, document.get("itemsPerPage"), document.get("startIndex"))

    def check(self, start: int, total: int, due: int, *, first: bool = False) -> None:
        """KomeetError unless this is the page asked for at ``start`` (RFC 7644 §3.4.2.4):
        its ``startIndex`` echoed (a first page may leave it out), the listing's ``total``
        (another means accounts came or went during the read, so the pages shifted), and
        the ``due`` accounts, as many as its ``itemsPerPage`` says. A first page sets the
        target's page size: it may hold more or fewer than asked for, but not none, and not
        more than the listing."""
        held = len(self.resources)
        echoed = _is_count(self.start_index) and self.start_index == start
        if not echoed and not (first and self.start_index is None):
            raise KomeetError(
                f"Komeet answered the page of accounts at startIndex {start} with startIndex "
                f"{json_kind(self.start_index)}: it does not page by startIndex as RFC 7644 "
                "§3.4.2.4 says; nothing was planned. Report it to Komeet's operators"
            )
        if self.total != total:
            raise KomeetError(
                f"Komeet's accounts changed during the read: {total:,} at the first page, "
                f"{self.total:,} at startIndex {start}, so its pages shifted; nothing was "
                "planned. Sync again"
            )
        if self.items_per_page is not None and self.items_per_page != held:
            raise KomeetError(
                f"Komeet's page of accounts at startIndex {start} says itemsPerPage "
                f"{json_kind(self.items_per_page)} but holds {held:,}; nothing was planned. "
                "Report it to Komeet's operators"
            )
        fewest, most = (min(1, total), total) if first else (due, due)
        if held > most:
            raise KomeetError(
                f"Komeet's page of accounts at startIndex {start} holds {held:,}, more than "
                f"the {most:,} due; nothing was planned. Report it to Komeet's operators"
            )
        if held < fewest:
            raise KomeetError(_stopped_short(held, start, due, total))


def _stopped_short(held: int, start: int, due: int, total: int) -> str:
    """A page that holds fewer accounts than due, in words."""
    found = f"{held:,} of the {due:,} accounts due" if held else "an empty page"
    # A partial read must never be planned from (ARCHITECTURE.md, "Guards").
    return (
        f"Komeet's account list stopped short: {found} at startIndex {start} of {total:,} "
        "accounts; nothing was planned. Check the target's paging (filter.maxResults in its "
        "ServiceProviderConfig)"
    )


def _is_count(value: Any) -> bool:
    return type(value) is int and value >= 0


@dataclass
class KomeetClient:
    """A client of Komeet's SCIM API at ``url`` (the base, ending in ``/v2`` or wherever
    ``/Users`` is), authenticated with a bearer token."""

    url: str
    token: str = field(repr=False)
    timeout: float = 30.0
    backoff: Backoff = field(default_factory=Backoff)
    sleep: Callable[[float], None] = time.sleep
    seed: int | None = None
    page_size: int = PAGE_SIZE  # accounts asked for per list request (see PAGE_SIZE)
    # Set when the operator stops an apply or a read: no retry is sent after it, and a wait for one
    # ends at once (the request in flight still gets its answer).
    stopping: threading.Event = field(default_factory=threading.Event, repr=False)

    def __post_init__(self) -> None:
        self.url = self.url.rstrip("/")
        self._local = threading.local()
        self._rng = random.Random(self.seed)
        self._rng_lock = threading.Lock()
        self._capabilities: Capabilities | None = None
        self._requests = 0
        self._count_lock = threading.Lock()
        self._in_flight = 0
        self._busy_since = 0.0
        self._waited = 0.0

    @classmethod
    def from_environment(cls) -> KomeetClient:
        """``KOMEET_SCIM_URL`` and ``KOMEET_SCIM_TOKEN``; ``KOMEET_SYNC_KOMEET_TIMEOUT``
        (seconds, default 30), ``KOMEET_SYNC_KOMEET_ATTEMPTS`` and
        ``KOMEET_SYNC_KOMEET_BACKOFF`` tune the retries."""
        return cls.checked(
            os.environ.get(URL_ENV, ""),
            os.environ.get(TOKEN_ENV, ""),
            os.environ.get(TIMEOUT_ENV, "").strip() or 30.0,
        )

    @classmethod
    def checked(cls, url: str, token: str, timeout: str | float) -> KomeetClient:
        """A client of ``url`` with ``token``, retrying as ``KOMEET_SYNC_KOMEET_ATTEMPTS``
        and ``KOMEET_SYNC_KOMEET_BACKOFF`` say; a value that cannot work raises KomeetError
        naming its variable (the CLI and the Dagster resource read the same ones)."""
        url, token = url.strip(), token.strip()
        if not url:
            raise KomeetError(
                f"{URL_ENV} is not set: give the base URL of Komeet's SCIM API, like "
                "https://api.komeet.example/scim/v2"
            )
        if not is_http_url(url):
            raise KomeetError(
                f"{URL_ENV}={url!r} is not an http(s) URL; give the base URL of Komeet's "
                "SCIM API, like https://api.komeet.example/scim/v2"
            )
        if not token:
            raise KomeetError(
                f"{TOKEN_ENV} is not set: give the bearer token Komeet issued for the sync"
            )
        if not all("!" <= character <= "~" for character in token):  # RFC 6750 §2.1
            raise KomeetError(
                f"{TOKEN_ENV} holds a space, a line break or a character outside ASCII, which "
                "no bearer token has: give the token exactly as Komeet issued it"
            )
        try:
            seconds = float(timeout)
        except ValueError:
            seconds = math.nan
        if not (math.isfinite(seconds) and seconds > 0):
            raise KomeetError(
                f"{TIMEOUT_ENV}={timeout!r} is not a number of seconds above 0, like 30"
            )
        backoff = Backoff.from_environment(ATTEMPTS_ENV, BACKOFF_ENV, KomeetError)
        return cls(url, token, timeout=seconds, backoff=backoff)

    @property
    def requests_sent(self) -> int:
        return self._requests

    @property
    def seconds_waited(self) -> float:
        """Wall time so far with at least one request awaiting Komeet's answer: of a
        sync's time, what Komeet (and the way to it) took, however many were in flight."""
        with self._count_lock:
            ongoing = time.monotonic() - self._busy_since if self._in_flight else 0.0
            return self._waited + ongoing

    # Discovery and reading ------------------------------------------------------------

    def capabilities(self) -> Capabilities:
        """The target's ServiceProviderConfig, read once."""
        if self._capabilities is None:
            reply = self.send("GET", "/ServiceProviderConfig")
            if reply.status is None:
                raise KomeetError(
                    f"cannot reach Komeet at {self.url}: {reply.error}; check {URL_ENV}, and "
                    "that this machine reaches that host (DNS, firewall, proxy)"
                    + (f", or raise {TIMEOUT_ENV}" if reply.timed_out else "")
                )
            if not reply.ok:
                raise KomeetError(
                    f"cannot read {self.url}/ServiceProviderConfig: {reply.describe()}; check "
                    f"{URL_ENV}"
                )
            try:
                config = ServiceProviderConfig.model_validate(reply.document())
            except ValueError as exc:
                raise KomeetError(
                    f"{self.url}/ServiceProviderConfig is not a SCIM ServiceProviderConfig "
                    f"({str(exc).splitlines()[0]}); check {URL_ENV}"
                ) from None
            self._capabilities = Capabilities.of(config)
        return self._capabilities

    def list_users(
        self,
        domains: Sequence[str],
        progress: Advance | None = None,
        concurrency: int = 1,
    ) -> list[dict[str, Any]]:
        """The accounts whose userName is in ``domains``: filtered by the target when it
        supports filters (the engine keeps only the domain's accounts either way), in pages
        of ``startIndex`` and ``count`` (RFC 7644 §3.4.2.4), ``progress`` told after each.

        Where the target announces index paging (``Capabilities.index_paging``), the first
        page's ``totalResults`` says where every other page starts, and they are asked for
        ``concurrency`` at a time (``stopping`` stops them at once). Each must then be the
        page asked for (``ListPage.check``). Elsewhere each page is asked for after the
        previous one, while ``totalResults`` says more are due. Either way the pages come
        back in order, as Komeet listed them: an account that a change during the read
        moved across a page's edge is listed twice, and the engine reports it.

        A page that fails or stops short raises KomeetError: nothing is planned from a
        partial read (ARCHITECTURE.md, "Guards")."""
        capabilities = self.capabilities()
        params: dict[str, Any] = {"attributes": USER_ATTRIBUTES, "count": self._page_size()}
        if capabilities.filter and domains:
            params["filter"] = in_domains(domains)
        with collector_paused():  # a page decoded is 1,000 accounts of dicts and lists
            if capabilities.index_paging:
                return self._pages_at_once(params, progress, concurrency)
            return self._pages_one_by_one(params, progress)

    def find_users(self, scim_filter: str) -> list[dict[str, Any]]:
        """The accounts matching ``scim_filter`` (RFC 7644 §3.4.2.2; build its values with
        ``quote``), every page of them, each after the previous one: a search by key finds
        a few accounts, seldom more than a page. A page that fails or stops short raises
        KomeetError, as ``list_users`` does; so does a target that does not filter."""
        params = {
            "filter": self._checked_filter(scim_filter),
            "attributes": USER_ATTRIBUTES,
            "count": self._page_size(),
        }
        with collector_paused():
            return self._pages_one_by_one(params, None, f"filter {scim_filter}")

    def count_users(self, scim_filter: str) -> int:
        """How many accounts match ``scim_filter``: the ``totalResults`` of a search that
        asks for none (``count=0``, RFC 7644 §3.4.2.4), so that a common value is counted
        without reading its holders."""
        params = {"filter": self._checked_filter(scim_filter), "count": 0}
        document = self._list_page(params, 1, f"filter {scim_filter}")
        return ListPage.of(document, 1).total

    def _checked_filter(self, scim_filter: str) -> str:
        if not self.capabilities().filter:
            raise KomeetError(
                f"Komeet at {self.url} does not announce filtering in its "
                "ServiceProviderConfig (RFC 7644 §3.4.2.2): its accounts can only be read "
                "whole"
            )
        return scim_filter

    def _page_size(self) -> int:
        """Accounts asked for per request: PAGE_SIZE, or the target's filter.maxResults if
        smaller."""
        return min(self.page_size, self.capabilities().max_results or self.page_size)

    def _pages_at_once(
        self, params: dict[str, Any], progress: Advance | None, concurrency: int
    ) -> list[dict[str, Any]]:
        """The first page, then every other page asked for at once (``list_users``)."""
        first = ListPage.of(self._list_page(params, 1), 1)
        first.check(1, first.total, min(params["count"], first.total), first=True)
        size, total = len(first.resources), first.total
        if progress is not None:
            progress(size, total)
        # The target's own page size, which may be below the count asked for.
        starts = list(range(1 + size, total + 1, size)) if size else []
        pages: dict[int, list[dict[str, Any]]] = {}
        accounts_read = [size]
        read_lock = threading.Lock()

        def read(start: int) -> None:
            page = ListPage.of(self._list_page(params | {"count": size}, start), start)
            page.check(start, total, min(size, total - start + 1))
            with read_lock:
                pages[start] = page.resources
                accounts_read[0] += len(page.resources)
                if progress is not None:  # under the lock, so that the count only grows
                    progress(accounts_read[0], total)

        in_parallel(read, starts, concurrency, self.stopping, name="komeet-read", drain=False)
        if len(pages) < len(starts):  # stopped before every page was asked for
            raise KomeetError(
                f"the read of Komeet's accounts was stopped with {len(pages) + 1} of its "
                f"{len(starts) + 1} pages read; nothing was planned"
            )
        return first.resources + [account for start in starts for account in pages[start]]

    def _pages_one_by_one(
        self, params: dict[str, Any], progress: Advance | None, searched: str = ""
    ) -> list[dict[str, Any]]:
        """Each page after the previous one: of ``list_users`` for a target that does not
        announce index paging, of ``find_users`` (``searched`` names its filter)."""
        users: list[dict[str, Any]] = []
        start = 1
        while True:
            page = self._list_page(params, start, searched)
            resources = page.get("Resources") or []
            users.extend(resources)
            total = int(page.get("totalResults") or 0)
            if not resources and start <= total:
                raise KomeetError(_stopped_short(0, start, 1, total))
            start += len(resources)
            if progress is not None:
                progress(len(users), total)
            if start > total:
                return users

    def _list_page(self, params: dict[str, Any], start: int, searched: str = "") -> dict[str, Any]:
        """The page of Komeet's accounts at ``start``, as Komeet answered it; a search's
        failure names what it searched."""
        reply = self.send("GET", "/Users", params=params | {"startIndex": start})
        if not reply.ok:
            # Pages asked for at once wait behind each other where Komeet answers one at a
            # time: a timeout may only say that.
            slow = (
                f". Raise {TIMEOUT_ENV} (now {self.timeout:g} s), or read fewer pages at once "
                "(--concurrency)"
                if reply.timed_out
                else ""
            )
            what = (
                f"searching Komeet's accounts by {searched}"
                if searched
                else "listing Komeet's accounts"
            )
            raise KomeetError(
                f"{what} failed at startIndex {start}: {reply.describe()}; nothing was "
                f"planned{slow}"
            )
        return reply.document()

    def find_user(self, user_name: str) -> tuple[Reply, dict[str, Any] | None]:
        """The account holding ``user_name`` (``filter=userName eq``; userName is
        case-insensitive, RFC 7643 §4.1.1), if any."""
        reply = self.send(
            "GET",
            "/Users",
            params={"filter": f"userName eq {quote(user_name)}", "attributes": USER_ATTRIBUTES},
        )
        if not reply.ok:
            return reply, None
        resources = reply.document().get("Resources") or []
        return reply, (resources[0] if resources else None)

    # Writing --------------------------------------------------------------------------

    def create_user(self, user: dict[str, Any]) -> Reply:
        """POST one user, once: a lost answer may hide an applied create."""
        return self.send("POST", "/Users", json_body=user, retry=False)

    def patch_user(self, komeet_id: str, operations: list[dict[str, Any]]) -> Reply:
        """PATCH an account with ``replace`` operations: sending them twice changes nothing
        more, so they are retried."""
        body = {"schemas": [PATCH_SCHEMA], "Operations": operations}
        return self.send("PATCH", f"/Users/{komeet_id}", json_body=body)

    def bulk(self, operations: list[dict[str, Any]]) -> Reply:
        """POST one Bulk request (RFC 7644 §3.7), once: it may carry creates."""
        body = {"schemas": [BULK_SCHEMA], "Operations": operations}
        return self.send("POST", "/Bulk", json_body=body, retry=False)

    # Transport ------------------------------------------------------------------------

    def send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        retry: bool = True,
    ) -> Reply:
        """One request, retried while the failure is transient (when ``retry``)."""
        if method not in READ_METHODS | WRITE_METHODS:
            raise ValueError(f"{method} is never sent to Komeet: leavers are deactivated")
        data = None if json_body is None else json.dumps(json_body).encode()
        attempts = self.backoff.attempts if retry else 1
        reply = Reply(None, "", 0, "not sent")
        for attempt in range(1, attempts + 1):
            reply = self._once(method, path, params, data, attempt)
            if reply.status in (401, 403):
                raise KomeetRefused(
                    f"Komeet refused the request {method} {path} with {reply.status} "
                    f"({reply.describe()}): check {TOKEN_ENV} and the rights Komeet gave it"
                )
            if not reply.transient or attempt == attempts:
                return reply
            wait = self.wait_before_retry(reply, attempt)
            if wait is None or not self.pause(wait):
                return reply
        return reply

    def pause(self, seconds: float) -> bool:
        """Wait ``seconds`` before a retry; False when the apply is being stopped, and
        then no retry is sent."""
        if self.stopping.is_set():
            return False
        if self.sleep is time.sleep:
            return not self.stopping.wait(seconds)
        self.sleep(seconds)
        return not self.stopping.is_set()

    def wait_before_retry(self, reply: Reply, retry: int) -> float | None:
        """Seconds to wait before retry ``retry``: the backoff's jittered wait, and at least
        the ``Retry-After`` of a 429 or 503 (RFC 9110 §10.2.3); None when that is too long."""
        with self._rng_lock:
            wait = self.backoff.delay(retry, self._rng)
        asked = reply.retry_after
        if asked is not None:
            if asked > RETRY_AFTER_CAP:
                return None
            wait = max(wait, asked)
        return wait

    def _once(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None,
        data: bytes | None,
        attempt: int,
    ) -> Reply:
        with self._count_lock:
            self._requests += 1
            if not self._in_flight:
                self._busy_since = time.monotonic()
            self._in_flight += 1
        try:
            response = self._session().request(
                method,
                f"{self.url}{path}",
                params=params,
                data=data,
                timeout=(min(10.0, self.timeout), self.timeout),
            )
        except requests.Timeout:
            return Reply(None, "", attempt, f"no answer within {self.timeout:g} s", timed_out=True)
        except requests.ConnectionError as exc:
            return Reply(None, "", attempt, f"connection failed: {_reason(exc)}")
        finally:
            with self._count_lock:
                self._in_flight -= 1
                if not self._in_flight:
                    self._waited += time.monotonic() - self._busy_since
        return Reply(
            response.status_code,
            # SCIM speaks JSON, in UTF-8 (RFC 7644 §3.1, RFC 8259 §8.1): decoded as such, not
            # as ``response.text`` would after guessing the charset of the whole body.
            response.content.decode("utf-8", errors="replace"),
            attempt,
            retry_after=retry_after(response.headers.get("Retry-After")),
        )

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=1))
            session.mount("https://", HTTPAdapter(pool_connections=1, pool_maxsize=1))
            session.headers.update(
                {
                    "Authorization": f"Bearer {self.token}",
                    "Content-Type": SCIM_JSON,
                    "Accept": SCIM_JSON,
                }
            )
            # The proxies and the CA bundle the environment gives for Komeet's URL (HTTPS_PROXY,
            # NO_PROXY, REQUESTS_CA_BUNDLE), read once rather than before every request.
            settings = session.merge_environment_settings(self.url, {}, None, None, None)
            session.proxies.update(settings["proxies"])
            session.verify = settings["verify"]
            session.cert = settings["cert"]
            session.trust_env = False  # and no ~/.netrc login in place of the bearer token
            self._local.session = session
        return session


def retry_after(value: str | None) -> float | None:
    """A ``Retry-After`` header in seconds: a number, or an HTTP date (RFC 9110 §10.2.3)."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def quote(value: str) -> str:
    """A filter's string literal (RFC 7644 §3.4.2.2: JSON string syntax): quotes,
    backslashes and control characters escaped, and every character outside ASCII as a
    ``\\u`` escape, so that no value ends the literal or changes the filter."""
    return json.dumps(value)


def in_domains(domains: Iterable[str]) -> str:
    """A filter of the accounts whose userName is in ``domains`` (``userName ew``; Komeet
    compares userNames case-insensitively, RFC 7643 §4.1.1), each internationalised domain
    in both its forms: a userName is stored as it was written, punycode or Unicode
    (``model.domain_names``)."""
    return " or ".join(
        f"userName ew {quote(f'@{form}')}" for domain in domains for form in domain_forms(domain)
    )


def domain_forms(domain: str) -> list[str]:
    """A domain as it may be written in a userName: as given, and in its ASCII and Unicode
    forms where it has them."""
    checked = check_domain(domain)
    return list(dict.fromkeys(form for form in (domain, checked.ascii, checked.unicode) if form))


def _reason(exc: Exception) -> str:
    """Why a connection failed, in a few words instead of urllib3's paragraph."""
    text = str(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS failed: " + (
            "the certificate is not trusted"
            if "CERTIFICATE_VERIFY_FAILED" in text
            else text.splitlines()[0][:120]
        )
    if isinstance(exc, requests.exceptions.ProxyError):
        return "the proxy (HTTPS_PROXY, HTTP_PROXY) failed"
    if any(marker in text for marker in DNS_FAILURES):
        return "the host name does not resolve (DNS)"
    for marker in ("RemoteDisconnected", "Connection refused", "Connection reset", "timed out"):
        if marker in text:
            return marker
    return text.splitlines()[0][:200] if text else type(exc).__name__


def user_resource(
    user_name: str, external_id: str, given_name: str | None, family_name: str | None
) -> dict[str, Any]:
    """A new account: active, its externalId the person's stable id, its email the
    userName (ARCHITECTURE.md, "Situations": joiner)."""
    name = {
        key: value
        for key, value in (("givenName", given_name), ("familyName", family_name))
        if value
    }
    resource: dict[str, Any] = {
        "schemas": [USER_SCHEMA],
        "userName": user_name,
        "externalId": external_id,
        "active": True,
        "emails": [{"value": user_name, "type": "work", "primary": True}],
    }
    if name:
        resource["name"] = name
    return resource


def replace_operations(values: Iterable[tuple[str, Any]]) -> list[dict[str, Any]]:
    """PATCH ``replace`` operations (RFC 7644 §3.5.2.3) for the values that are given."""
    return [
        {"op": "replace", "path": path, "value": value}
        for path, value in values
        if value is not None and value != ""
    ]
