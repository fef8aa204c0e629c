"""The SCIM request log: every request an IdP sends, with its answer's status and its body
without passwords (ARCHITECTURE.md, "Operations"; RFC 7643 §7: a password is writeOnly and
never returned, so it is never kept either).

Each request is also one line of the ``komeet_sync.scim.requests`` logger (``request_line``),
which ``komeet-sync scim serve`` prints on stderr: time, method, path, domain, status and
duration; never a header (the Authorization secret), a query string or a body.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, insert

from komeet_sync.sources.scim import limits, quirks
from komeet_sync.sources.scim.refusals import RefusalWatch
from komeet_sync.store.database import write_lock
from komeet_sync.store.tables import ScimRequestRow

LOGGED_BODY = 64 << 10  # the request log keeps the first 64 KiB of a body
# After each transaction the writer waits this long, so that under a flood the rows of that
# time go in one: a transaction costs far more than a row (0.5 ms against 0.04 ms).
BATCH_PAUSE = 0.05

log = logging.getLogger("komeet_sync.scim")
console = logging.getLogger("komeet_sync.scim.requests")


class RequestLog:
    """Writes the request log from a thread of its own, a batch per transaction, so that
    logging never slows a push down, nor a flood of refused requests the others."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._refusals = RefusalWatch(engine)
        # Requests begun and not yet added: their answer may be sent before they are logged.
        self._begun = 0
        self._added = threading.Condition()
        self._thread = threading.Thread(target=self._write, name="scim-request-log", daemon=True)
        self._thread.start()

    def begin(self) -> None:
        """A request has begun: ``flush`` waits for it to be added."""
        with self._added:
            self._begun += 1

    def add(self, row: dict[str, Any]) -> None:
        """Log a request (a dict of ScimRequestRow's columns), begun or not."""
        self._queue.put(row)
        with self._added:
            self._begun = max(0, self._begun - 1)
            self._added.notify_all()
        if console.isEnabledFor(logging.INFO):
            console.info(request_line(row))

    def flush(self, timeout: float = 10) -> None:
        """Wait until every request begun so far is logged and written (its answer is sent
        before its row is added)."""
        with self._added:
            self._added.wait_for(lambda: self._begun == 0, timeout)
        self._queue.join()

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=10)

    def _write(self) -> None:
        while True:
            rows = [self._queue.get()]
            while True:
                try:
                    rows.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            batch = [row for row in rows if row is not None]
            try:
                if batch:
                    self._insert(batch)
                    self._refusals.observe(batch)
            except Exception:  # the log must never stop the endpoint
                log.exception("could not write %d rows of the SCIM request log", len(batch))
            finally:
                for _ in rows:
                    self._queue.task_done()
            if len(batch) != len(rows):
                return
            time.sleep(BATCH_PAUSE)

    def _insert(self, batch: list[dict[str, Any]]) -> None:
        """One transaction for the batch; when it fails, row by row, and a row whose body
        cannot be stored is kept with its body described: one row per request, always."""
        try:
            with write_lock(self.engine), self.engine.begin() as connection:
                connection.execute(insert(ScimRequestRow), batch)
            return
        except Exception:
            log.warning("a batch of the SCIM request log failed: writing it row by row")
        for row in batch:
            try:
                with write_lock(self.engine), self.engine.begin() as connection:
                    connection.execute(insert(ScimRequestRow), [row])
            except Exception as exc:
                kept = row | {
                    "path": storable(str(row["path"])).encode("ascii", "replace").decode(),
                    "body": f"<not storable: {type(exc).__name__}>",
                }
                with write_lock(self.engine), self.engine.begin() as connection:
                    connection.execute(insert(ScimRequestRow), [kept])


def request_line(row: dict[str, Any]) -> str:
    """A logged request in one line, for a console:
    ``2026-12-02T10:00:00Z POST /scim/acme.com/v2/Users acme.com 201 12 ms``.

    The path goes without its query string (a filter names people) and with anything
    unprintable escaped, so that a request cannot write to the terminal; headers and the
    body are never in it."""
    path = _printable(str(row["path"]).partition("?")[0])
    domain = _printable(row["domain"]) if row["domain"] else "-"
    return (
        f"{row['at']:%Y-%m-%dT%H:%M:%SZ} {_printable(row['method'])} {path} {domain} "
        f"{row['status']} {row['duration_ms']:.0f} ms"
    )


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() and not c.isspace() else quote(c) for c in text)


def redacted(body: bytes) -> str | None:
    """A request body for the log, its first 64 KiB: as sent when it cannot hold a
    password; else JSON without any ``password`` (attribute or PATCH value, in any case or
    URN-qualified spelling), or, when it is not JSON or nests too deep to be one SCIM
    accepts, described rather than kept. Whatever it holds, the text can be stored."""
    if not body:
        return None
    if limits.too_deep(body):
        return f"<{len(body)} bytes, nested deeper than {limits.MAX_DEPTH} levels>"
    if b"password" in body.lower() or b"\\u" in body:  # \u escapes could spell it
        try:
            document = json.loads(body)
        except ValueError:
            return f"<{len(body)} bytes, not JSON>"
        text = json.dumps(_without_secrets(document), ensure_ascii=False)
    else:  # nothing to remove: keep the body as sent
        text = body.decode("utf-8", errors="replace")
    text = storable(text)
    return text if len(text) <= LOGGED_BODY else text[:LOGGED_BODY] + "…"


def storable(text: str) -> str:
    """``text`` as a database stores it: a lone surrogate (``"\\ud800"`` in JSON) and NUL,
    which neither SQLite's UTF-8 nor PostgreSQL's text can hold, written as escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def _without_secrets(value: Any) -> Any:
    """``value`` without passwords: attributes named password in any case or URN-qualified
    spelling, and the value of a PatchOp operation whose path names one (RFC 7644 §3.5.2:
    ``path`` and ``value`` are case-insensitive too)."""
    if isinstance(value, dict):
        cleaned = {
            key: _without_secrets(item)
            for key, item in value.items()
            if str(key).lower().rsplit(":", 1)[-1] not in quirks.SECRET_ATTRIBUTES
        }
        path = next((str(v) for k, v in value.items() if str(k).lower() == "path"), "")
        if "password" in path.lower():
            for key in cleaned:
                if str(key).lower() == "value":
                    cleaned[key] = "[removed]"
        return cleaned
    if isinstance(value, list):
        return [_without_secrets(item) for item in value]
    return value
