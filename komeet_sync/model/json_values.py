"""JSON values named in words, for messages about files and records that are not what was
expected: ``null``, ``a number (42)``, ``an object``, never Python's ``NoneType`` or ``dict``.
"""

from __future__ import annotations

import json
from typing import Any

SHOWN = 40  # characters of a string quoted in a message


def json_kind(value: Any) -> str:
    """What a JSON value is, in words, with its value when it is short."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        shown = value if len(value) <= SHOWN else value[:SHOWN] + "..."
        return f"a string ({json.dumps(shown)})"
    return "a list" if isinstance(value, list) else "an object"
