"""The SCIM endpoint Entra ID and Okta push to: one URL and one secret per domain.

``/scim/{domain}/v2/...`` serves that domain's staging tables with scim2-server (RFC 7644).
The domain in the URL may be written in any form of its name (``model.domain_names``):
Unicode, percent-encoded in UTF-8 (RFC 3986 §2.1; the server decodes it) or punycode, in
any case; each reaches the one tenant of the stored name. Then come three checks: the
domain is configured for SCIM (else 404), the bearer secret is that domain's (else 401: a
secret reaches only its own domain's URL), and its sync is enabled (else 403); then the
request takes one from the domain's rate limit (else 429, ``rate_limit``), before anything
in its body is looked at; once a domain has been served, a request over its limit with the
same secret is answered before any query. A body over 1 MiB is refused with 413 before it
is read whole. Every request is logged (time, domain, method, path, status, duration, body
without secrets), refusals included.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
from pydantic import ValidationError
from scim2_models import (
    AuthenticationScheme,
    Bulk,
    External,
    InvalidValueException,
    NoTargetException,
    PatchOp,
    Reference,
    Resource,
    ResourceType,
    ResponseParameters,
    SCIMException,
    ScimProvider,
    SearchRequest,
)
from scim2_server.applications.asgi import ASGIApplication
from scim2_server.conditions import Conditions
from scim2_server.handler import AsyncScimHandler
from scim2_server.requests import ScimRequest
from scim2_server.service import ScimService
from scim2_server.storage import AsyncScimStorage, SearchPage, search_page
from scim2_server.utils import (
    load_default_resource_types,
    load_default_schemas,
    load_default_service_provider_config,
)
from sqlalchemy import Engine, bindparam, select

from komeet_sync.model.domain_config import DomainConfig, SourceKind
from komeet_sync.model.domain_names import display_domain, domain_key
from komeet_sync.sources.scim import limits, quirks, secret
from komeet_sync.sources.scim.rate_limit import (
    RateLimit,
    RateLimiter,
    default_per_second,
    rate_limit,
)
from komeet_sync.sources.scim.request_log import RequestLog, redacted, storable
from komeet_sync.sources.scim.storage import StagingStorage
from komeet_sync.store.database import as_utc
from komeet_sync.store.domains import DomainStore, UnknownDomain
from komeet_sync.store.tables import DomainConfigRow

MAX_BODY = 1 << 20  # 1 MiB
REASON_READ = 16 << 10  # an error answer's first 16 KiB are read for its detail
REASON_KEPT = 500
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
_ACCESS = select(
    DomainConfigRow.id,
    DomainConfigRow.updated_at,
    DomainConfigRow.scim_secret_hash,
    DomainConfigRow.scim_former_secret_hash,
    DomainConfigRow.scim_former_secret_until,
).where(DomainConfigRow.domain == bindparam("domain"))
_ROUTE = re.compile(r"^/scim/(?P<domain>[^/]+)(?P<rest>/.*)?$")
_FILTERED_PATH = re.compile(
    r'^(?P<attribute>[\w:.]+)\[(?P<key>\w+) eq "(?P<match>[^"]*)"\]\.(?P<field>\w+)$'
)
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
_MEMBERS_PATH = re.compile(rf"^(?:{GROUP_SCHEMA}:)?members$", re.IGNORECASE)
_MEMBER_PATH = re.compile(
    rf'^(?:{GROUP_SCHEMA}:)?members\[value eq "(?P<value>[^"\\]*)"\]$', re.IGNORECASE
)
# Whether the PATCH being served asked for no attributes back (its answer is then 204).
_ANSWERED_BARE: ContextVar[bool] = ContextVar("answered_bare", default=False)

Scope = dict[str, Any]
_Secrets = tuple[str | None, str | None, datetime | None]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

log = logging.getLogger("komeet_sync.scim")


@functools.cache
def staging_provider() -> ScimProvider:
    """What the endpoint announces (RFC 7643 §5): RFC 7643's User (with the enterprise
    extension) and Group; PATCH, filters, sorting, ETags and bearer tokens; no bulk.

    Built once per process (its models take a fifth of a second to make) and only read:
    every endpoint and every domain's storage share it."""
    config = load_default_service_provider_config().model_copy(
        update={
            "bulk": Bulk(supported=False, max_operations=0, max_payload_size=0),
            "authentication_schemes": [
                AuthenticationScheme(
                    type=AuthenticationScheme.Type.oauthbearertoken,
                    name="bearer_token",
                    description="The domain's secret, as an HTTP Bearer Token",
                    spec_uri=Reference[External]("https://datatracker.ietf.org/doc/html/rfc6750"),
                )
            ],
        }
    )
    return ScimProvider.from_discovery(
        load_default_schemas().values(), load_default_resource_types().values(), config=config
    )


def _worded(exc: SCIMException) -> SCIMException:
    """A SCIM error whose detail is a validation library's text, in SCIM's words
    (``in_scim_words``); any other error as it is."""
    if not isinstance(exc.__cause__, ValidationError):
        return exc
    error = exc.to_error()
    return SCIMException.from_error(
        error.model_copy(update={"detail": in_scim_words(exc.__cause__)})
    )


class StagingService(ScimService):
    """scim2-server's service, reading requests as IdPs write them (``idp_requests``)."""

    def read_body(self, model: Any, body: bytes, content_type: str | None, scim_ctx: Any) -> Any:
        """scim2-server's reading of a body, its errors in SCIM's words (``in_scim_words``)."""
        try:
            return super().read_body(model, body, content_type, scim_ctx)
        except SCIMException as exc:
            raise _worded(exc) from None

    def read_search(self, resource_types: list[ResourceType], payload: Any) -> tuple[Any, Any]:
        """scim2-server's reading of a search (a POST to ``.search``, or a GET's query), its
        errors in SCIM's words: a body of ``null`` or ``[]`` is "expected a JSON object"."""
        try:
            return super().read_search(resource_types, payload)
        except SCIMException as exc:
            raise _worded(exc) from None

    def read_creation(
        self, resource_type: ResourceType, body: bytes, content_type: str | None
    ) -> Resource[Any]:
        mended = self._mend(resource_type, body, content_type, quirks.resource)
        return super().read_creation(resource_type, mended, content_type)

    def read_replacement(
        self, resource_type: ResourceType, body: bytes, content_type: str | None
    ) -> Resource[Any]:
        mended = self._mend(resource_type, body, content_type, quirks.resource)
        return super().read_replacement(resource_type, mended, content_type)

    def read_patch(
        self, resource_type: ResourceType, body: bytes, content_type: str | None
    ) -> PatchOp[Any]:
        mended = self._mend(resource_type, body, content_type, quirks.patch)
        return super().read_patch(resource_type, mended, content_type)

    def apply_patch(
        self, current: Resource[Any], patch_op: PatchOp[Any], conditions: Any
    ) -> Resource[Any] | None:
        """Apply the operations one by one. An ``add`` or ``replace`` on a filtered path
        that matches no value (``emails[type eq "work"].value`` on a user without a work
        email) creates that value, as Entra ID expects."""
        self.check_preconditions(current, "PATCH", conditions)
        try:
            return self._patched(current, patch_op)
        except ValidationError as exc:
            raise InvalidValueException(detail=_patch_error(exc, patch_op)) from None
        except InvalidValueException as exc:  # scim2-models words it with pydantic's text
            if isinstance(exc.__cause__, ValidationError):
                detail = _patch_error(exc.__cause__, patch_op)
                raise InvalidValueException(detail=detail) from None
            raise

    def _patched(self, current: Resource[Any], patch_op: PatchOp[Any]) -> Resource[Any] | None:
        operations = patch_op.operations or []
        if not any(_FILTERED_PATH.match(str(o.path)) for o in operations if o.path):
            return current if patch_op.patch(current) else None
        # ``current`` is the storage's copy, made for this request: an operation that fails
        # leaves it half patched, but then nothing is written.
        patched = current
        changed = False
        for operation in operations:
            try:
                changed |= bool(type(patch_op)(Operations=[operation]).patch(patched))
            except NoTargetException:
                found = _FILTERED_PATH.match(str(operation.path))
                if found is None or str(operation.op) not in ("add", "replace"):
                    raise
                value = {found["key"]: found["match"], found["field"]: operation.value}
                added = type(operation).model_validate(
                    {"op": "add", "path": found["attribute"], "value": [value]}
                )
                changed |= bool(type(patch_op)(Operations=[added]).patch(patched))
        return patched if changed else None

    def publish(self, base_url: str, resource: Resource[Any]) -> Resource[Any]:
        """scim2-server's ``publish`` without its deep copy: the staging storage gives each
        request resources of its own (read from the database, or copied on write), so they
        can be published in place."""
        assert resource.meta is not None and resource.id is not None
        location = self.resource_location(
            base_url, self.get_resource_type_of(resource), resource.id
        )
        resource.meta = resource.meta.model_copy(update={"location": location})
        self._publish_references(base_url, resource)
        return resource

    def _mend(
        self,
        resource_type: ResourceType,
        body: bytes,
        content_type: str | None,
        rewrite: Callable[[Any, list[str]], Any],
    ) -> bytes:
        self.ensure_json(content_type)
        try:
            document = json.loads(body)
        except ValueError:
            return body  # scim2-server answers 400 invalidSyntax, naming the position
        known = [str(resource_type.schema_), PATCH_OP] + [
            str(extension.schema_) for extension in resource_type.schema_extensions or []
        ]
        return json.dumps(rewrite(document, known)).encode()


class AsyncStaging(AsyncScimStorage):
    """The staging storage for an ASGI server.

    On PostgreSQL each call runs in a worker thread, so that a slow network never blocks the
    event loop. On SQLite (the embedded default: a local file, one writer at a time) calls
    run in the loop itself: they take a millisecond, and handing each to a thread costs
    more than it saves.
    """

    supports_cursors = False

    def __init__(self, storage: StagingStorage) -> None:
        self.storage = storage
        self.inline = storage.engine.dialect.name == "sqlite"

    async def _call(self, call: Callable[[], Any]) -> Any:
        return call() if self.inline else await anyio.to_thread.run_sync(call)

    async def get(
        self,
        resource_type: ResourceType,
        resource_id: str,
        *,
        response_parameters: ResponseParameters[Any] | None = None,
    ) -> Resource[Any]:
        return await self._call(lambda: self.storage.get(resource_type, resource_id))

    async def search(
        self,
        resource_types: list[ResourceType],
        search_request: SearchRequest[Any],
        *,
        position: Any = None,
    ) -> SearchPage:
        return await self._call(
            lambda: search_page(self.storage, resource_types, search_request, position)
        )

    async def create(self, resource_type: ResourceType, resource: Resource[Any]) -> Resource[Any]:
        return await self._call(lambda: self.storage.create(resource_type, resource))

    async def update(
        self,
        resource_type: ResourceType,
        resource: Resource[Any],
        *,
        expected_version: str | None = None,
    ) -> Resource[Any]:
        return await self._call(
            lambda: self.storage.update(resource_type, resource, expected_version=expected_version)
        )

    async def change_members(
        self, group_type: ResourceType, group_id: str, added: list[dict], removed: list[str]
    ) -> Resource[Any]:
        return await self._call(
            lambda: self.storage.change_members(group_type, group_id, added, removed)
        )

    async def delete(
        self,
        resource_type: ResourceType,
        resource_id: str,
        *,
        expected_version: str | None = None,
    ) -> None:
        await self._call(
            lambda: self.storage.delete(
                resource_type, resource_id, expected_version=expected_version
            )
        )


class StagingHandler(AsyncScimHandler):
    """scim2-server's handler, with one shortcut: a PATCH that only adds and removes
    members of a group (what Entra ID and Okta send when someone joins or leaves it) changes
    those members' rows, without reading and rewriting the group's other members. Any
    other PATCH, one with conditions (``If-Match``) or one asking for attributes back, takes
    scim2-server's way."""

    storage: AsyncStaging

    async def patch(self, request: ScimRequest) -> Any:
        bare = not {"attributes", "excludedAttributes"} & set(request.query)
        token = _ANSWERED_BARE.set(bare)
        try:
            return await super().patch(request)
        finally:
            _ANSWERED_BARE.reset(token)

    async def patch_resource(
        self,
        resource_type: ResourceType,
        resource_id: str,
        patch_op: PatchOp[Any],
        conditions: Conditions,
    ) -> Resource[Any]:
        unconditional = not conditions.if_match and not conditions.if_none_match
        change = None
        if _ANSWERED_BARE.get() and unconditional and resource_type.name == "Group":
            change = membership_change(self.service.get_model(resource_type), patch_op)
        if change is None:
            return await super().patch_resource(resource_type, resource_id, patch_op, conditions)
        return await self.storage.change_members(resource_type, resource_id, *change)


def membership_change(
    group_model: type[Resource[Any]], patch_op: PatchOp[Any]
) -> tuple[list[dict], list[str]] | None:
    """The members a group PATCH adds (as stored) and the values it removes, when that is
    all it does; None for any other PATCH. Added members are read by the group's model, as
    scim2-server reads them; one it refuses leaves the PATCH to scim2-server, which words the
    error."""
    added: list[Any] = []
    removed: list[str] = []
    for operation in patch_op.operations or []:
        path = str(operation.path) if operation.path is not None else None
        value = operation.value
        if str(operation.op) == "add" and path is not None and _MEMBERS_PATH.match(path):
            values = value
        elif str(operation.op) == "add" and path is None and isinstance(value, dict):
            if [key.lower() for key in value] != ["members"]:
                return None
            values = next(iter(value.values()))
        elif str(operation.op) == "remove" and path is not None and value is None:
            found = _MEMBER_PATH.match(path)
            if found is None:
                return None
            removed.append(found["value"])
            continue
        else:
            return None
        if not isinstance(values, list) or not values:
            return None
        added.extend(values)
    try:
        group = group_model.model_validate({"displayName": "-", "members": added})
    except ValidationError:
        return None
    stored = group.model_dump(mode="json").get("members") or []
    values = [member.get("value") for member in stored]
    if len(stored) != len(added) or not all(isinstance(v, str) and v for v in values):
        return None
    if set(values) & set(removed):  # the order of the operations would matter
        return None
    return stored, removed


class _DomainApplication(ASGIApplication):
    """scim2-server's ASGI application for one domain, under its public URL."""

    def __init__(self, storage: AsyncStaging, provider: ScimProvider, base_url: str):
        super().__init__(storage, provider, StagingService(provider))
        self.handler = StagingHandler(self.service, storage)
        self.base_url = base_url

    def get_base_url(self, scope: Scope) -> str:  # type: ignore[override]
        return self.base_url


def scim_url(public_url: str, domain: str) -> str:
    """The SCIM URL of a domain, as its IdP is given it: the base of RFC 7644's endpoints."""
    return f"{public_url.rstrip('/')}/scim/{domain}/v2"


@dataclass(frozen=True)
class Refusal:
    """A request the endpoint answers with a SCIM error before serving it."""

    status: int
    detail: str
    retry_after: int | None = None  # seconds, for a 429


class ScimEndpoint:
    """The ASGI application of ``komeet-sync scim serve``: every SCIM domain's endpoint.
    A domain's rate limit is its configuration's, else ``default_rate_limit`` requests a
    second (default: ``rate_limit.default_per_second()``, read once here), counted by
    ``rate_limiter`` (default: this process's own buckets)."""

    def __init__(
        self,
        engine: Engine,
        public_url: str,
        default_rate_limit: int | None = None,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        self.engine = engine
        self.store = DomainStore(engine)
        self.public_url = public_url.rstrip("/")
        self.provider = staging_provider()
        self._applications: dict[tuple[str, int, tuple[str, ...]], _DomainApplication] = {}
        self._log = RequestLog(engine)
        self.inline = engine.dialect.name == "sqlite"  # see AsyncStaging
        self._configs: dict[str, tuple[tuple[int, Any], DomainConfig]] = {}
        self.default_rate_limit = default_rate_limit or default_per_second()
        self.rate_limiter = rate_limiter or RateLimiter()
        # Each domain's secrets and rate limit as its last request was served with them.
        self._served: dict[str, tuple[_Secrets, RateLimit]] = {}

    def url_of(self, domain: str) -> str:
        """The SCIM URL of a domain, as its IdP is given it."""
        return scim_url(self.public_url, domain)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        self._log.begin()
        method, path = scope["method"], scope["path"]
        query = scope.get("query_string", b"").decode("latin-1")
        route = _ROUTE.match(path)
        # The ASGI path is percent-decoded already; a name that is no domain is answered 404.
        domain = domain_key(route["domain"]) if route else None
        body = b""
        status = 500
        send = answer = _Answer(send)
        try:
            declared = _header(scope, b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
                status = await _error(send, 413, f"the body exceeds {MAX_BODY} bytes (1 MiB)")
                return
            body, too_large = await _read_body(receive)
            if too_large:
                status = await _error(send, 413, f"the body exceeds {MAX_BODY} bytes (1 MiB)")
                return
            if limits.has_control_character(path):
                status = await _error(
                    send, 404, "no SCIM resource here: the path holds a control character"
                )
                return
            if route is None or domain is None:
                status = await _error(
                    send, 404, "no SCIM endpoint here: the SCIM URL is /scim/{domain}/v2"
                )
                return
            limited = self._over_limit(domain, scope)
            if isinstance(limited, Refusal):
                refusal: Refusal | _DomainApplication = limited
            elif self.inline:
                refusal = self._refusal(domain, scope, limited)
            else:
                refusal = await anyio.to_thread.run_sync(self._refusal, domain, scope, limited)
            if isinstance(refusal, Refusal):
                status = await _error(
                    send, refusal.status, refusal.detail, retry_after=refusal.retry_after
                )
                return
            if limits.too_deep(body):
                status = await _error(
                    send,
                    400,
                    f"the JSON body nests deeper than {limits.MAX_DEPTH} levels; a SCIM "
                    "resource nests a few",
                    "invalidSyntax",
                )
                return
            bad_paging = limits.paging_error(_query(scope))
            if bad_paging is not None:
                status = await _error(send, 400, bad_paging, "invalidValue")
                return
            application = refusal
            status = await self._forward(
                application, scope, domain, route["rest"] or "", body, send
            )
        finally:
            self._log.add(
                {
                    "at": datetime.now(UTC),
                    "domain": domain[:253] if domain else None,
                    "method": method,
                    "path": storable(path + ("?" + query if query else ""))[:2048],
                    "status": status,
                    "duration_ms": (time.perf_counter() - started) * 1000,
                    "body": redacted(body),
                    "reason": answer.reason,
                }
            )

    def _over_limit(self, domain: str, scope: Scope) -> Refusal | bool:
        """The 429 of a domain over its rate limit, answered without a query when the
        secret is one its last request was served with: a flood costs no database access
        (nor, on PostgreSQL, a thread and a connection of the pool the other domains use).
        Else whether the request took one from the limit: False when the domain or the
        secret is not known here (yet), and the checks of ``_refusal`` come first.

        A secret retired or a domain disabled meanwhile is answered 429 rather than 401 or
        403 until its next request that passes the limit (within a second), whose checks
        forget it: it reaches nothing either way."""
        served = self._served.get(domain)
        if served is None or not secret.accepted(_bearer(scope), *served[0]):
            return False
        return self._limited(domain, served[1]) or True

    def _limited(self, domain: str, limit: RateLimit) -> Refusal | None:
        """Take one request from the domain's rate limit; the 429 to answer when none is
        left."""
        wait = self.rate_limiter.retry_after(domain, limit)
        if wait is None:
            return None
        return Refusal(
            429,
            f"too many requests for {display_domain(domain)}: its SCIM rate limit is {limit}; "
            f"the limit is lifted by waiting, send again in {wait} s (Retry-After)",
            retry_after=wait,
        )

    def _refusal(self, domain: str, scope: Scope, taken: bool) -> Refusal | _DomainApplication:
        """The refusal to answer, or the domain's application. ``taken``: the request
        took one from the domain's rate limit already (``_over_limit``)."""
        answer = self._checked(domain, scope, taken)
        if isinstance(answer, Refusal) and answer.status != 429:
            # The domain, its secret or its state changed: _over_limit knows it no more.
            self._served.pop(domain, None)
        return answer

    def _checked(self, domain: str, scope: Scope, taken: bool) -> Refusal | _DomainApplication:
        shown = display_domain(domain)
        found = self._access(domain)
        if found is None:
            return Refusal(404, f"no SCIM endpoint for {shown}: it is not configured in Komeet")
        config, domain_id, hashes = found
        if config.source is not SourceKind.SCIM or config.domain != domain:
            return Refusal(404, f"no SCIM endpoint for {shown}: it is not configured for SCIM")
        if not secret.accepted(_bearer(scope), *hashes):
            return Refusal(
                401,
                f"the secret is not {shown}'s: give the secret Komeet issued for this SCIM "
                "URL as a Bearer token",
            )
        if not config.enabled:
            return Refusal(
                403,
                f"sync of {shown} is disabled in Komeet: nothing is accepted until Komeet "
                "enables it again",
            )
        limit = rate_limit(config.scim_rate_limit, self.default_rate_limit)
        self._served[domain] = (hashes, limit)
        refusal = None if taken else self._limited(domain, limit)
        if refusal is not None:
            return refusal
        key = (domain, domain_id, config.domains)
        application = self._applications.get(key)
        if application is None:
            storage = StagingStorage(
                self.engine, domain_id, self.provider, user_name_domains=config.domains
            )
            application = _DomainApplication(
                AsyncStaging(storage), self.provider, self.url_of(domain)
            )
            self._applications[key] = application
        return application

    def _access(self, domain: str) -> tuple[DomainConfig, int, _Secrets] | None:
        """A domain's configuration, id and secret hashes (the current one; the former one
        and the end of its overlap after a rotation). One small query a request: the whole
        configuration is read again only when it changed (``updated_at``), so that disabling
        a domain or rotating its secret takes effect at the next request."""
        with self.engine.connect() as connection:
            row = connection.execute(_ACCESS, {"domain": domain}).one_or_none()
        if row is None:
            return None
        key = (row.id, row.updated_at)
        cached = self._configs.get(domain)
        if cached is not None and cached[0] == key:
            config = cached[1]
        else:
            try:
                config = self.store.get(domain)
            except UnknownDomain:
                return None
            self._configs[domain] = (key, config)
        until = row.scim_former_secret_until
        former = (row.scim_former_secret_hash, as_utc(until) if until is not None else None)
        return config, row.id, (row.scim_secret_hash, *former)

    async def _forward(
        self,
        application: _DomainApplication,
        scope: Scope,
        domain: str,
        rest: str,
        body: bytes,
        send: Send,
    ) -> int:
        request = ScimRequest(
            method=scope["method"],
            base_url=application.base_url,
            path=application.split_path(rest),
            query=_query(scope),
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]],
            body=body,
        )
        response = await application.serve(request)
        await application.send_response(response, send)
        return int(response.status)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self._log.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def close(self) -> None:
        self._log.close()


class _Answer:
    """The ASGI ``send`` of a request, which keeps what an error answer told the IdP (its
    SCIM ``detail``, or its status) for the request log."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.status = 0
        self.reason: str | None = None

    async def __call__(self, message: Any) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
        elif message["type"] == "http.response.body" and self.status >= 400 and not self.reason:
            self.reason = refusal_reason(self.status, message.get("body", b""))
        await self._send(message)


def refusal_reason(status: int, body: bytes) -> str:
    """What an error answer told the IdP, in a line: its SCIM ``detail`` (RFC 7644 §3.12),
    else its status."""
    try:
        detail = json.loads(body[:REASON_READ]).get("detail")
    except (ValueError, AttributeError):
        detail = None
    text = storable(str(detail)).strip() if detail else ""
    return (text.splitlines()[0][:REASON_KEPT] if text else "") or f"HTTP {status}"


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= MAX_BODY:
            chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks), size > MAX_BODY


async def _error(
    send: Send,
    status: int,
    detail: str,
    scim_type: str | None = None,
    *,
    retry_after: int | None = None,
) -> int:
    """Answer a SCIM error (RFC 7644 §3.12)."""
    error = {"schemas": [ERROR], "status": str(status), "detail": detail}
    if scim_type is not None:
        error["scimType"] = scim_type
    body = json.dumps(error).encode()
    headers = [(b"content-type", b"application/scim+json"), (b"cache-control", b"no-cache")]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="komeet-scim"'))
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    return status


def _bearer(scope: Scope) -> str | None:
    """The Bearer token of a request's Authorization (RFC 6750 §2.1), if any."""
    scheme, _, token = (_header(scope, b"authorization") or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


# RFC 7644 §3.4.2: the query parameters of a search. Their names are matched whatever their
# case (``FILTER=``), so that a listing is never the whole list because of a capital letter.
_PARAMETERS = {
    name.lower(): name
    for name in (
        "filter",
        "startIndex",
        "count",
        "attributes",
        "excludedAttributes",
        "sortBy",
        "sortOrder",
        "cursor",
    )
}


def _query(scope: Scope) -> dict[str, str]:
    from urllib.parse import parse_qsl

    pairs = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    return {_PARAMETERS.get(name.lower(), name): value for name, value in pairs}


# The validation library's phrases, as SCIM's errors say them (RFC 7644 §3.12).
_PHRASES = (
    (re.compile(r" or instance of [\w\[\]]+"), ""),
    (re.compile(r", unable to interpret input$"), ""),
    (re.compile(r"^Value error, "), ""),
    (re.compile(r"^Input should be (a valid dictionary|an object).*"), "expected a JSON object"),
    (re.compile(r"^Input should be a valid list.*"), "expected a JSON array"),
    (re.compile(r"^Input should be a valid boolean$"), "expected true or false"),
    (re.compile(r"^Input should be a valid integer.*"), "expected a whole number"),
    (re.compile(r"^Input should be a valid "), "expected a "),
    (re.compile(r"^Input should be "), "expected "),
    (re.compile(r"^Field required$"), "is required"),
    (re.compile(r"^Extra inputs are not permitted$"), "is not an attribute of this resource"),
)


def in_scim_words(exc: ValidationError, where: str | None = None) -> str:
    """What a request's values got wrong, in SCIM's words (RFC 7644 §3.12): for each of the
    first three problems, the attribute, what is expected and the value given (never a
    password's); not the validation library's text, class names or links."""
    problems = []
    for error in exc.errors()[:3]:
        parts = [part for part in error.get("loc", ()) if part != "__root__"]
        attribute = "".join(
            f"[{part}]" if isinstance(part, int) else f"{'.' if i else ''}{part}"
            for i, part in enumerate(parts)
        )
        expected = str(error.get("msg", "invalid"))
        for phrase, words in _PHRASES:
            expected = phrase.sub(words, expected)
        given = error.get("input")
        shown = "" if given is None or "password" in attribute.lower() else _shown(given)
        problem = f"{attribute}: {expected}" if attribute else expected
        problems.append(problem + (f", got {shown}" if shown else ""))
    found = "; ".join(problems) or "a value is invalid"
    return f"{where}: {found}" if where else found


def _shown(value: Any) -> str:
    """A value as JSON, cut at 60 characters."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def _patch_error(exc: ValidationError, patch_op: PatchOp[Any]) -> str:
    """What a PATCH value got wrong (``in_scim_words``), naming the operations' paths."""
    paths = [str(o.path) for o in patch_op.operations or [] if o.path]
    return in_scim_words(exc, f"the value for {', '.join(paths)}" if paths else "a PATCH value")
