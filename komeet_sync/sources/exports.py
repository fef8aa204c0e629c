"""Reading exported directory data from JSON files, in the sources' own formats.

A file that is not JSON, or whose shape is not the format expected, is refused whole with
one error naming the file, the position and the format; a record inside it with a bad
value is the parsers' business (it becomes a row of the errors report).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class ExportFormatError(ValueError):
    """A file that cannot be read as the format it was given for."""


GOOGLE_USERS = (
    "Directory API User resources: a list of users, a users.list response "
    '({"users": [...]}), or a list of such responses'
)
GOOGLE_MEMBERS = (
    "an object mapping each group email to its Directory API Member resources, as "
    'members.list returns them ({"all@acme.com": [{"id": ..., "email": ..., "type": '
    '"USER"}, ...]} or {"all@acme.com": {"members": [...]}})'
)
SCIM_RESOURCES = (
    "SCIM 2.0 {kind} resources (RFC 7643): a list, a ListResponse "
    '({{"Resources": [...]}}), or a list of ListResponses'
)


def load_json(path: Path, expected: str) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ExportFormatError(f"{path}: no such file; expected {expected}") from None
    except IsADirectoryError:
        raise ExportFormatError(f"{path}: is a folder; give a JSON file of {expected}") from None
    except UnicodeDecodeError as exc:
        raise ExportFormatError(
            f"{path}: byte {exc.start} is not UTF-8; expected a JSON file of {expected}"
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ExportFormatError(
            f"{path}: line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg}); "
            f"expected {expected}"
        ) from None


def unpack(document: Any, path: Path, list_key: str, expected: str) -> list[Any]:
    """The records of a list, of a list response (``{list_key: [...]}``) or of a list of
    list responses. Keys are matched case-insensitively, as SCIM attribute names are
    (RFC 7643 §2.1)."""

    def records_of(page: dict[str, Any], where: str) -> list[Any]:
        for key, value in page.items():
            if key.lower() == list_key.lower():
                if value is None:
                    return []
                if not isinstance(value, list):
                    raise ExportFormatError(
                        f"{path}: {where}.{key} is {type(value).__name__}, not a list; "
                        f"expected {expected}"
                    )
                return value
        if "totalResults" in page or "kind" in page or "nextPageToken" in page:
            return []  # an empty page: Google and SCIM leave the list out when it is empty
        raise ExportFormatError(
            f"{path}: {where} is an object without a {list_key!r} list; expected {expected}"
        )

    if isinstance(document, dict):
        return records_of(document, "the top level")
    if not isinstance(document, list):
        raise ExportFormatError(
            f"{path}: the top level is {type(document).__name__}; expected {expected}"
        )
    pages = [item for item in document if isinstance(item, dict) and _is_page(item, list_key)]
    if pages and len(pages) == len(document):
        return [record for i, page in enumerate(pages) for record in records_of(page, f"[{i}]")]
    return document


def _is_page(item: dict[str, Any], list_key: str) -> bool:
    return any(key.lower() == list_key.lower() for key in item) or (
        "nextPageToken" in item or str(item.get("kind", "")).endswith("#users")
    )
