"""What the SCIM endpoint accepts before any recursive processing of a request: the body's
JSON nesting and the numbers of its paging parameters. The endpoint faces the internet, so
every limit is checked on the raw request, in linear time, before the body is parsed, mended,
validated or redacted (all of which recurse).

SCIM resources nest a few levels (RFC 7643: a User's ``name``, a multi-valued attribute's
items, an extension); 64 leaves room for any IdP and none for a stack overflow.
"""

from __future__ import annotations

import re

import numpy as np

MAX_DEPTH = 64
# RFC 7644 §3.4.2.4: startIndex and count are integers; 2^31 - 1 bounds what a database holds.
MAX_INTEGER = 2**31 - 1
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_CONTROL = re.compile("[\x00-\x1f\x7f]")
_PAGING = {"startindex": ("startIndex", 1), "count": ("count", 0)}


def too_deep(body: bytes) -> bool:
    """Whether the JSON of ``body`` nests deeper than MAX_DEPTH. A body with no more
    brackets than that cannot (every SCIM resource an IdP sends): two counts in C, a
    microsecond, before the exact count."""
    if body.count(b"[") + body.count(b"{") <= MAX_DEPTH:
        return False
    return nesting_depth(body) > MAX_DEPTH


def nesting_depth(body: bytes) -> int:
    """How deep the JSON arrays and objects of ``body`` nest (0 for a scalar or no JSON),
    counted without parsing: brackets outside strings."""
    if not body:
        return 0
    outside = np.frombuffer(_STRING.sub(b"", body), dtype=np.uint8)
    steps = np.isin(outside, (0x5B, 0x7B)).astype(np.int64) - np.isin(outside, (0x5D, 0x7D))
    return int(np.cumsum(steps).max(initial=0))


def paging_error(query: dict[str, str]) -> str | None:
    """Why a ``startIndex`` or ``count`` cannot be used (whatever the case of its name),
    or None."""
    for name, value in query.items():
        known = _PAGING.get(name.lower())
        if known is None:
            continue
        spelled, lowest = known
        text = value.strip()
        if not (text.isascii() and text.lstrip("-").isdigit()) or not (
            lowest <= int(text) <= MAX_INTEGER
        ):
            return (
                f"{spelled}={value[:40]!r} is not a whole number from {lowest} to "
                f"{MAX_INTEGER} (RFC 7644 §3.4.2.4)"
            )
    return None


def has_control_character(path: str) -> bool:
    """Whether a decoded request path holds a control character (``%00``, ``%0A``...):
    no resource is named so, and none may reach a header or a log line."""
    return _CONTROL.search(path) is not None
