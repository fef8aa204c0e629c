"""A reverse proxy that puts latency and faults between a SCIM client and its server.

Tests and benchmarks put it in front of the third-party ``scim2-server`` to see what a SCIM
client does when the network and the server misbehave as they do in production. Each
request is delayed by ``latency``, and a share ``rate`` of the requests is faulted with one
of these kinds:

- ``429``: Too Many Requests with ``Retry-After`` (RFC 6585 §4, RFC 9110 §10.2.3); the
  request is not forwarded.
- ``503``: Service Unavailable (RFC 9110 §15.6.4); the request is not forwarded.
- ``slow``: the request is forwarded and applied, and its response held back, so a client
  with a shorter timeout gives up on a change that was made.
- ``drop``: the request is forwarded and applied, and the connection then closed without a
  response, as when a load balancer or the network fails mid-request.

The error bodies are SCIM errors (RFC 7644 §3.12). Otherwise the proxy is neutral: it
forwards every method, DELETE included, and records what it received and how many requests
it held at once, so that a test can assert what the client sent (``HttpProxy.stats``). It
speaks HTTP/1.1 with keep-alive to the client, and opens one upstream connection per
request.

It costs little CPU per request, since a benchmark's client, this proxy and the server
share the machine's cores: header lines are split by hand rather than by the ``email``
package, and each request and response goes out in one write.

Run it in its own process with ``python -m komeet_sync.emulators.http_proxy --help``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import signal
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from email.utils import formatdate
from enum import StrEnum
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple
from urllib.parse import urlsplit

SCIM_JSON = "application/scim+json"
SCIM_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
UPSTREAM_TIMEOUT = 30.0  # seconds; longer than most requests, short of a hung test

# Hop-by-hop headers concern one connection, so a proxy does not pass them on (RFC 9110
# §7.6.1). Expect is answered by this proxy's own server (100 Continue) before forwarding.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "proxy-connection",
        "keep-alive",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-authenticate",
        "proxy-authorization",
    }
)
_SET_BY_THE_PROXY = frozenset({"host", "content-length", "expect"})
MAX_LINE = 65536  # bytes of a request line or a header line
MAX_HEADERS = 100  # header lines of a request or a response


class FaultKind(StrEnum):
    """What the proxy does to a request it faults (see the module docstring)."""

    TOO_MANY_REQUESTS = "429"
    SERVICE_UNAVAILABLE = "503"
    SLOW = "slow"
    DROP = "drop"

    @property
    def forwards(self) -> bool:
        """Whether the request still reaches the upstream, and is applied there."""
        return self in (FaultKind.SLOW, FaultKind.DROP)


@dataclass(frozen=True)
class Faults:
    """Which requests the proxy faults, and how.

    Each request is faulted with probability ``rate``, with a kind drawn uniformly from
    ``kinds``; both draws come from ``random.Random(seed)`` in the order the requests
    arrive, so the same seed and the same requests replay the same faults. ``retry_after``
    is the ``Retry-After`` of a 429, in whole seconds (RFC 9110 §10.2.3); ``slow_seconds``
    is how long a ``slow`` fault holds the upstream's response.
    """

    rate: float = 0.0
    kinds: tuple[FaultKind, ...] = tuple(FaultKind)
    retry_after: int = 1
    slow_seconds: float = 2.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(
                f"fault rate {self.rate!r} is not between 0 and 1: give the share of the "
                "requests to fault, e.g. 0.2"
            )
        # Accept the kinds' names too ("429", "drop"), as the command line gives them.
        object.__setattr__(self, "kinds", tuple(fault_kind(kind) for kind in self.kinds))
        if self.rate > 0 and not self.kinds:
            raise ValueError(
                f"fault rate {self.rate!r} with no fault kinds: name at least one of "
                f"{_kind_names()}"
            )
        if isinstance(self.retry_after, bool) or not isinstance(self.retry_after, int):
            raise ValueError(
                f"retry_after {self.retry_after!r} is not a whole number of seconds "
                "(Retry-After is an integer, RFC 9110 §10.2.3)"
            )
        if self.retry_after < 0:
            raise ValueError(f"retry_after {self.retry_after!r} is negative: give 0 or more")
        if not self.slow_seconds >= 0:
            raise ValueError(f"slow_seconds {self.slow_seconds!r} is negative: give 0 or more")


def fault_kind(name: object) -> FaultKind:
    """The fault kind named ``name`` (``"429"``, ``429``, ``"slow"``...)."""
    try:
        return FaultKind(str(name))
    except ValueError:
        raise ValueError(f"unknown fault kind {name!r}: choose from {_kind_names()}") from None


def _kind_names() -> str:
    return ", ".join(kind.value for kind in FaultKind)


class ReceivedRequest(NamedTuple):
    """A request as the proxy received it: its method and its path, without the query."""

    method: str
    path: str


@dataclass(frozen=True)
class ProxyStats:
    """What the proxy has seen so far.

    ``received`` counts every request; ``forwarded`` those the upstream answered (faults
    ``slow`` and ``drop`` included: they were applied); ``upstream_failures`` those the
    upstream did not answer (the client got a 502); ``faults`` the faults injected, by kind,
    every kind present; ``requests`` every request received, in order; ``most_in_flight``
    the most requests received and not yet answered at any moment (the client's
    concurrency, as the network sees it).
    """

    received: int
    forwarded: int
    upstream_failures: int
    faults: Mapping[FaultKind, int]
    requests: tuple[ReceivedRequest, ...]
    most_in_flight: int = 0

    def as_json(self) -> dict[str, Any]:
        """The stats as JSON values (what ``--stats FILE`` writes)."""
        return {
            "received": self.received,
            "forwarded": self.forwarded,
            "upstream_failures": self.upstream_failures,
            "faults": {kind.value: count for kind, count in self.faults.items()},
            "most_in_flight": self.most_in_flight,
            "requests": [list(request) for request in self.requests],
        }


@dataclass(frozen=True)
class _Answer:
    """A response to send the client: the upstream's, or one the proxy makes up."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass(frozen=True)
class _Upstream:
    """Where the proxy forwards to, read from the upstream URL."""

    https: bool
    host: str
    port: int | None
    authority: str  # the Host header: host[:port], without userinfo
    prefix: str  # the URL's path, put before each request's path

    def connect(self, timeout: float = UPSTREAM_TIMEOUT) -> socket.socket:
        """A new connection to the upstream (TLS for https), each read and write on it
        waiting at most ``timeout`` seconds."""
        port = self.port or (443 if self.https else 80)
        connection = socket.create_connection((self.host, port), timeout=timeout)
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.https:
            return ssl.create_default_context().wrap_socket(connection, server_hostname=self.host)
        return connection

    @classmethod
    def parse(cls, url: str) -> _Upstream:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"upstream {url!r} is not an http:// or https:// URL with a host, "
                "e.g. http://127.0.0.1:8080"
            )
        if parts.query or parts.fragment:
            raise ValueError(f"upstream {url!r} has a query or a fragment: give the base URL")
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"upstream {url!r} has an invalid port") from None
        return cls(
            https=parts.scheme == "https",
            host=parts.hostname,
            port=port,
            authority=parts.netloc.rpartition("@")[2],
            prefix=parts.path.rstrip("/"),
        )


class HttpProxy:
    """A reverse proxy to ``upstream`` with ``latency`` and ``faults`` (module docstring).

    The upstream URL's path is a prefix: with ``http://127.0.0.1:9000/tenant`` as upstream,
    ``{url}/v2/Users`` is forwarded to ``http://127.0.0.1:9000/tenant/v2/Users``.
    ``latency`` seconds are added to every request before its response goes back; an
    upstream that has not answered within ``upstream_timeout`` seconds gets the client a 502.
    """

    def __init__(
        self,
        upstream: str,
        *,
        latency: float = 0.0,
        faults: Faults | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        upstream_timeout: float = UPSTREAM_TIMEOUT,
    ) -> None:
        if not latency >= 0:
            raise ValueError(f"latency {latency!r} is negative: give 0 or more seconds")
        if not upstream_timeout > 0:
            raise ValueError(
                f"upstream timeout {upstream_timeout!r} is not above 0: give the seconds the "
                "upstream may take to answer, e.g. 30"
            )
        self.upstream = upstream
        self.latency = latency
        self.upstream_timeout = upstream_timeout
        self.faults = faults or Faults()
        self.host = host
        self.port = port
        self._target = _Upstream.parse(upstream)
        self._lock = threading.Lock()
        self._dice = random.Random(self.faults.seed)
        self._received = 0
        self._forwarded = 0
        self._upstream_failures = 0
        self._fault_counts = dict.fromkeys(FaultKind, 0)
        self._requests: list[ReceivedRequest] = []
        self._in_flight = 0
        self._most_in_flight = 0
        self._server: _ProxyServer | None = None
        self._thread: threading.Thread | None = None

    # -- serving --

    @property
    def url(self) -> str:
        """The proxy's base URL, ``http://HOST:PORT``."""
        if self._server is None:
            raise RuntimeError("the proxy is not started: call start() or use it in a with block")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> HttpProxy:
        """Listen, and serve in a daemon thread."""
        if self._server is not None:
            raise RuntimeError(f"the proxy is already serving on {self.url}")
        handler = type("Handler", (_ProxyHandler,), {"proxy": self})
        self._server = _ProxyServer((self.host, self.port), handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="http-proxy",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and hang up on the clients; requests in flight are abandoned."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.hang_up_on_clients()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=1)
            self._thread = None

    def __enter__(self) -> HttpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stats(self) -> ProxyStats:
        """A snapshot of the counters and of the requests received."""
        with self._lock:
            return ProxyStats(
                received=self._received,
                forwarded=self._forwarded,
                upstream_failures=self._upstream_failures,
                faults=MappingProxyType(dict(self._fault_counts)),
                requests=tuple(self._requests),
                most_in_flight=self._most_in_flight,
            )

    # -- requests --

    def _admit(self, request: ReceivedRequest) -> FaultKind | None:
        """Record a request and draw its fault, in one step so the log and the draws agree;
        it is in flight until ``_answered``."""
        with self._lock:
            self._received += 1
            self._requests.append(request)
            self._in_flight += 1
            self._most_in_flight = max(self._most_in_flight, self._in_flight)
            if self._dice.random() >= self.faults.rate:
                return None
            fault = self._dice.choice(self.faults.kinds)
            self._fault_counts[fault] += 1
            return fault

    def _answered(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _forward(
        self, method: str, target: str, headers: Iterable[tuple[str, str]], body: bytes | None
    ) -> _Answer:
        """Send the request upstream and read the whole answer; a 502 if there is none.
        The request keeps its headers as they came, repeated ones included, and adds
        nothing but ``Host``, its ``Content-Length`` and ``Connection: close`` (one
        connection a request)."""
        upstream = self._target
        lines = [
            f"{method} {upstream.prefix}{target} HTTP/1.1",
            f"Host: {upstream.authority}",
            *(f"{name}: {value}" for name, value in _end_to_end(headers)),
            "Connection: close",
        ]
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")
        try:
            with upstream.connect(self.upstream_timeout) as connection:
                connection.sendall(request)
                with connection.makefile("rb") as stream:
                    answer = _read_answer(stream)
        except (OSError, ValueError) as exc:
            with self._lock:
                self._upstream_failures += 1
            detail = f"Bad gateway: the upstream {self.upstream} did not answer ({exc!r})."
            return _scim_error(502, "Bad Gateway", detail)
        with self._lock:
            self._forwarded += 1
        return answer

    def _fault_answer(self, fault: FaultKind) -> _Answer:
        """The response of a fault that is not forwarded (429 or 503)."""
        if fault is FaultKind.TOO_MANY_REQUESTS:
            seconds = self.faults.retry_after
            return _scim_error(
                429,
                "Too Many Requests",
                f"Too many requests (injected by the proxy): retry after {seconds} seconds.",
                retry_after=seconds,
            )
        return _scim_error(
            503, "Service Unavailable", "Service unavailable (injected by the proxy)."
        )


def _scim_error(
    status: int, reason: str, detail: str, *, retry_after: int | None = None
) -> _Answer:
    """A SCIM error response (RFC 7644 §3.12: ``status`` is a string in the body)."""
    body = json.dumps({"schemas": [SCIM_ERROR], "status": str(status), "detail": detail})
    headers: tuple[tuple[str, str], ...] = (("Content-Type", SCIM_JSON),)
    if retry_after is not None:
        headers += (("Retry-After", str(retry_after)),)
    return _Answer(status, reason, headers, body.encode())


def _end_to_end(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The headers a proxy passes on (RFC 9110 §7.6.1): not the hop-by-hop ones nor those
    the Connection header names, and not those the proxy sets itself (Host, Content-Length).
    """
    headers = list(headers)
    named = {
        token.strip().lower()
        for name, value in headers
        if name.lower() == "connection"
        for token in value.split(",")
    }
    dropped = _HOP_BY_HOP | _SET_BY_THE_PROXY | named
    return [(name, value) for name, value in headers if name.lower() not in dropped]


class _Headers:
    """Header fields in their order, repeated ones kept; names compared without case."""

    def __init__(self, fields: list[tuple[str, str]]) -> None:
        self.fields = fields

    def get(self, name: str) -> str | None:
        """The first field called ``name``; None when there is none."""
        name = name.lower()
        for field, value in self.fields:
            if field.lower() == name:
                return value
        return None

    def items(self) -> list[tuple[str, str]]:
        return list(self.fields)


def _read_headers(stream: io.BufferedIOBase) -> _Headers:
    """The header section of a request or a response (RFC 9112 §5), up to its empty line;
    a continuation line (obsolete folding) joins the field before it."""
    fields: list[tuple[str, str]] = []
    while True:
        line = stream.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise ValueError("header line too long")
        if line in (b"\r\n", b"\n", b""):
            return _Headers(fields)
        text = line.decode("latin-1").rstrip("\r\n")
        if text[:1] in (" ", "\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, f"{value} {text.strip()}")
            continue
        name, colon, value = text.partition(":")
        if not colon or not name or name != name.strip():
            raise ValueError(f"invalid header line {text[:40]!r}")
        fields.append((name, value.strip()))
        if len(fields) > MAX_HEADERS:
            raise ValueError(f"more than {MAX_HEADERS} header lines")


def _read_answer(stream: io.BufferedIOBase) -> _Answer:
    """An upstream's response: status line, headers, and the body framed by its
    Content-Length, by chunks, or by the end of the connection (RFC 9112 §6.3)."""
    while True:
        status_line = stream.readline(MAX_LINE + 1).decode("latin-1").rstrip("\r\n")
        version, _, rest = status_line.partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/") or not code.isdigit():
            raise ValueError(f"invalid status line {status_line[:40]!r}")
        headers = _read_headers(stream)
        if not 100 <= int(code) < 200:
            break  # an interim response (1xx) comes before the final one
    status = int(code)
    if status in (204, 304):
        body = b""
    elif "chunked" in (headers.get("Transfer-Encoding") or "").lower():
        body = _read_chunked(stream)
    elif (length := (headers.get("Content-Length") or "").strip()).isdigit():
        body = stream.read(int(length))
        if len(body) < int(length):
            raise ValueError(f"the body ended after {len(body)} of {length} bytes")
    else:
        body = stream.read()
    return _Answer(status, reason, tuple(_end_to_end(headers.items())), body)


def _read_chunked(stream: io.BufferedIOBase) -> bytes:
    """A chunked request body (RFC 9112 §7.1), its trailer fields discarded."""
    chunks = []
    while True:
        size_line = stream.readline(65537)
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise ValueError(f"invalid chunk size line {size_line[:40]!r}") from None
        if size == 0:
            break
        chunks.append(stream.read(size))
        stream.readline(65537)  # the CRLF after the chunk
    while stream.readline(65537) not in (b"\r\n", b"\n", b""):
        pass
    return b"".join(chunks)


class _ProxyServer(ThreadingHTTPServer):
    """The listening server; it keeps the client sockets to hang up on them at stop."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._clients: set[socket.socket] = set()
        self._clients_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._clients_lock:
            self._clients.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._clients_lock:
            self._clients.discard(request)
        super().shutdown_request(request)

    def hang_up_on_clients(self) -> None:
        """End the kept-alive connections, so their threads stop waiting for a request."""
        with self._clients_lock:
            clients = list(self._clients)
        for client in clients:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)


class _ProxyHandler(BaseHTTPRequestHandler):
    proxy: HttpProxy
    raw_requestline: bytes  # set by BaseHTTPRequestHandler.handle_one_request
    protocol_version = "HTTP/1.1"  # keep-alive with the client, as SCIM clients use
    # The headers and the body go out in two writes: without TCP_NODELAY, Nagle's algorithm
    # holds the body until the client's delayed ACK, 40 ms on Linux, on every response.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: tests and benchmarks read their own output

    def parse_request(self) -> bool:
        """``BaseHTTPRequestHandler.parse_request``, the header lines read by
        ``_read_headers``: the request line, keep-alive (HTTP/1.1 unless ``Connection:
        close``) and ``Expect: 100-continue``. False, after an error response, when the
        request cannot be read."""
        self.command = None  # type: ignore[assignment]  # as the base class does
        self.request_version = "HTTP/0.9"
        self.close_connection = True
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = self.requestline.split()
        if not words:
            return False
        if len(words) != 3 or words[2] not in ("HTTP/1.0", "HTTP/1.1"):
            self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request line ({self.requestline!r})")
            return False
        self.command, self.path, self.request_version = words
        try:
            self.headers = _read_headers(self.rfile)  # type: ignore[assignment]
        except ValueError as exc:
            self.send_error(HTTPStatus.BAD_REQUEST, f"Unreadable headers: {exc}")
            return False
        connection = (self.headers.get("Connection") or "").lower()
        self.close_connection = connection == "close" or (
            self.request_version == "HTTP/1.0" and connection != "keep-alive"
        )
        if (
            self.headers.get("Expect") or ""
        ).lower() == "100-continue" and self.request_version == "HTTP/1.1":
            return self.handle_expect_100()
        return True

    def do_GET(self) -> None:
        self._relay()

    def do_POST(self) -> None:
        self._relay()

    def do_PUT(self) -> None:
        self._relay()

    def do_PATCH(self) -> None:
        self._relay()

    def do_DELETE(self) -> None:
        self._relay()

    def _relay(self) -> None:
        proxy = self.proxy
        try:
            body = self._request_body()
        except ValueError as exc:
            self.close_connection = True  # the rest of the stream cannot be framed
            self._send(_scim_error(400, "Bad Request", f"Unreadable request body: {exc}."))
            return
        if not self.path.startswith("/"):
            detail = f"Request target {self.path!r} is not a path: this is a reverse proxy."
            self._send(_scim_error(400, "Bad Request", detail))
            return
        fault = proxy._admit(ReceivedRequest(self.command, urlsplit(self.path).path))
        try:
            if fault is not None and not fault.forwards:
                time.sleep(proxy.latency)
                self._send(proxy._fault_answer(fault))
                return
            answer = proxy._forward(self.command, self.path, self.headers.items(), body)
            hold = proxy.faults.slow_seconds if fault is FaultKind.SLOW else 0.0
            time.sleep(proxy.latency + hold)
            if fault is FaultKind.DROP:
                self._hang_up()
                return
            self._send(answer)
        finally:
            proxy._answered()

    def _request_body(self) -> bytes | None:
        """The request's body, or None when it has none (no Content-Length, not chunked)."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return _read_chunked(self.rfile)
        length = self.headers.get("Content-Length")
        if length is None:
            return None
        if not length.strip().isdigit():
            raise ValueError(f"Content-Length {length!r} is not a number of bytes")
        return self.rfile.read(int(length))

    def _send(self, answer: _Answer) -> None:
        """The answer in one write: status line, headers and body."""
        lines = [f"{self.protocol_version} {answer.status} {answer.reason}"]
        lines += [f"{name}: {value}" for name, value in answer.headers]
        if not any(name.lower() == "date" for name, _ in answer.headers):
            lines.append(f"Date: {formatdate(usegmt=True)}")
        # 1xx, 204 and 304 have no body, nor a Content-Length of it (RFC 9110 §8.6).
        if answer.status >= 200 and answer.status not in (204, 304):
            lines.append(f"Content-Length: {len(answer.body)}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            self.wfile.write(head + answer.body)
        except OSError:  # the client gave up (a timeout shorter than a slow fault)
            self.close_connection = True

    def _hang_up(self) -> None:
        """Close the connection without a response, as a failed load balancer does."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


# --- running it on its own -----------------------------------------------------------------


def _number(kind: type, what: str, high: float | None = None) -> Callable[[str], Any]:
    """An argparse type: ``kind`` (int or float) from 0 up to ``high`` (no upper bound when
    None), its error naming the value and what was expected."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not value >= 0:
            raise argparse.ArgumentTypeError(f"{text} is negative: give 0 or more")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"{text} is not between 0 and {high:g}")
        return value

    return parse


_fraction = _number(float, "a number", 1.0)
_seconds = _number(float, "a number of seconds")
_whole_seconds = _number(int, "a whole number of seconds")
_port = _number(int, "a port number", 65535)


def _fault_kinds(text: str) -> tuple[FaultKind, ...]:
    try:
        return tuple(fault_kind(name.strip()) for name in text.split(",") if name.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _upstream(text: str) -> str:
    try:
        _Upstream.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def main(argv: list[str] | None = None) -> int:
    """Proxy until SIGINT or SIGTERM; print one line saying where, once listening."""
    parser = argparse.ArgumentParser(
        prog="python -m komeet_sync.emulators.http_proxy",
        description="Proxy HTTP to a SCIM server, adding latency and injected faults.",
    )
    parser.add_argument("--upstream", type=_upstream, required=True, metavar="URL")
    parser.add_argument("--host", default="127.0.0.1", help="default: %(default)s")
    parser.add_argument("--port", type=_port, default=0, help="default: any free port")
    parser.add_argument("--latency", type=_seconds, default=0.0, metavar="SECONDS")
    parser.add_argument("--fault-rate", type=_fraction, default=0.0, metavar="SHARE")
    parser.add_argument(
        "--faults",
        type=_fault_kinds,
        default=tuple(FaultKind),
        metavar="KINDS",
        help=f"comma-separated, among {_kind_names()} (default: all)",
    )
    parser.add_argument("--retry-after", type=_whole_seconds, default=1, metavar="SECONDS")
    parser.add_argument("--slow-seconds", type=_seconds, default=2.0, metavar="SECONDS")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--upstream-timeout",
        type=_seconds,
        default=UPSTREAM_TIMEOUT,
        metavar="SECONDS",
        help="answer 502 when the upstream has not answered within SECONDS (default: %(default)g)",
    )
    parser.add_argument(
        "--stats",
        type=Path,
        metavar="FILE",
        help="when stopped, write what it received to FILE as JSON (counts, the most "
        "requests in flight at once, each request's method and path)",
    )
    args = parser.parse_args(argv)
    try:
        faults = Faults(
            rate=args.fault_rate,
            kinds=args.faults,
            retry_after=args.retry_after,
            slow_seconds=args.slow_seconds,
            seed=args.seed,
        )
    except ValueError as exc:
        parser.error(str(exc))
    try:
        proxy = HttpProxy(
            args.upstream,
            latency=args.latency,
            faults=faults,
            host=args.host,
            port=args.port,
            upstream_timeout=args.upstream_timeout,
        )
    except ValueError as exc:
        parser.error(str(exc))
    try:
        proxy.start()
    except OSError as exc:
        print(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}; "
            "choose another --host or --port",
            file=sys.stderr,
        )
        return 1
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    print(f"Proxying {proxy.url} -> {args.upstream}", flush=True)
    try:
        stopped.wait()
    finally:
        proxy.stop()
        if args.stats is not None:
            args.stats.write_text(json.dumps(proxy.stats().as_json()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
