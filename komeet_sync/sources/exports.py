"""Reading exported directory data from JSON files, in the sources' own formats, for the
offline audit.

A file that is not JSON, or whose shape is not the format expected, is refused whole with
one error naming the file, the position and the format; a record inside it with a bad
value is the parsers' business (it becomes a row of the errors report).

A file is decoded by msgspec, then, if msgspec refuses it, by json, whose message says
where it is wrong. msgspec gives the same values as json for every document it takes, and
unlike orjson keeps integers beyond 64 bits whole (orjson makes them floats).
"""

from __future__ import annotations

import codecs
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from komeet_sync.model.collector import collector_paused
from komeet_sync.model.domain_config import DomainConfig
from komeet_sync.model.json_values import json_kind
from komeet_sync.model.snapshots import DirectorySnapshot
from komeet_sync.sources.google import resources as google_resources
from komeet_sync.sources.scim import resources as scim_resources

# Decodes as json does, 1.5 times as fast, and refuses what only json takes (NaN, Infinity,
# lone surrogates, numbers beyond a float): json then reads the file as before.
_DECODER = msgspec.json.Decoder()


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
    """The JSON document in ``path``; ExportFormatError, in one line naming the file, what
    is wrong (its line and column from 1) and ``expected``, when it cannot be read."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ExportFormatError(f"{path}: no such file; expected {expected}") from None
    except IsADirectoryError:
        raise ExportFormatError(f"{path}: is a folder; give a JSON file of {expected}") from None
    except OSError as exc:
        raise ExportFormatError(
            f"{path}: cannot be read ({exc.strerror}); expected a JSON file of {expected}"
        ) from None
    try:
        with collector_paused():
            return _DECODER.decode(raw.removeprefix(codecs.BOM_UTF8))
    except msgspec.DecodeError:
        pass  # json's own reading says where and what, and takes what msgspec does not
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, column = _line_and_column(raw, exc.start)
        raise ExportFormatError(
            f"{path}: line {line}, column {column} (byte {exc.start + 1}) is not UTF-8; save it "
            f"as UTF-8 JSON of {expected}"
        ) from None
    if not text.strip():
        raise ExportFormatError(f"{path}: the file is empty; expected a JSON file of {expected}")
    try:
        with collector_paused():
            return json.loads(text)
    except json.JSONDecodeError as exc:  # its lineno and colno count from 1
        raise ExportFormatError(
            f"{path}: line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg}); "
            f"expected {expected}"
        ) from None


def unpack(
    document: Any, path: Path, list_key: str, expected: str, where: str = "the top level"
) -> list[Any]:
    """The records of a list, of a list response (``{list_key: [...]}``) or of a list of
    list responses. Keys are matched case-insensitively, as SCIM attribute names are
    (RFC 7643 §2.1). Pages are counted from 1 in messages."""

    def records_of(page: dict[str, Any], where: str) -> list[Any]:
        for key, value in page.items():
            if key.lower() == list_key.lower():
                if value is None:
                    return []
                if not isinstance(value, list):
                    raise ExportFormatError(
                        f"{path}: {key!r} in {where} is {json_kind(value)}, not a list; "
                        f"expected {expected}"
                    )
                return value
        if "totalResults" in page or "kind" in page or "nextPageToken" in page:
            return []  # an empty page: Google and SCIM leave the list out when it is empty
        raise ExportFormatError(
            f"{path}: {where} is an object without a {list_key!r} list; expected {expected}"
        )

    if isinstance(document, dict):
        return records_of(document, where)
    if not isinstance(document, list):
        raise ExportFormatError(f"{path}: {where} is {json_kind(document)}; expected {expected}")
    pages = [item for item in document if isinstance(item, dict) and _is_page(item, list_key)]
    if pages and len(pages) == len(document):
        return [
            record
            for number, page in enumerate(pages, start=1)
            for record in records_of(page, f"page {number} of {where}")
        ]
    return document


def _line_and_column(raw: bytes, offset: int) -> tuple[int, int]:
    """The line and column (from 1, in bytes) of ``offset`` in ``raw``."""
    line_start = raw.rfind(b"\n", 0, offset) + 1
    return raw.count(b"\n", 0, offset) + 1, offset - line_start + 1


def _is_page(item: dict[str, Any], list_key: str) -> bool:
    return any(key.lower() == list_key.lower() for key in item) or (
        "nextPageToken" in item or str(item.get("kind", "")).endswith("#users")
    )


@dataclass(frozen=True)
class DirectoryExport:
    """The exported files of a domain's directory: Google's users and members, or the
    SCIM users and groups an IdP holds."""

    google_users: Path | None = None
    google_members: Path | None = None
    scim_users: Path | None = None
    scim_groups: Path | None = None

    @property
    def source(self) -> str:
        """ "google" or "scim": the one source these files are of."""
        google = self.google_users is not None or self.google_members is not None
        scim = self.scim_users is not None or self.scim_groups is not None
        if google == scim:
            raise ExportFormatError(
                "give one source: --google-users with --google-members, or --scim-users "
                "(with --scim-groups when groups are selected)"
            )
        return "google" if google else "scim"


def read_export(config: DomainConfig, files: DirectoryExport) -> DirectorySnapshot:
    """The directory as its exported files hold it; ExportFormatError names a file that
    cannot be read."""
    if files.source == "google":
        if files.google_users is None or files.google_members is None:
            raise ExportFormatError(
                "a Google audit needs both --google-users (users.list) and --google-members "
                "(members.list of each selected group)"
            )
        users = unpack(
            load_json(files.google_users, GOOGLE_USERS), files.google_users, "users", GOOGLE_USERS
        )
        members = _members_by_group(files.google_members)
        return google_resources.snapshot(
            users, {group: members.get(group) for group in config.groups} | members
        )
    assert files.scim_users is not None
    if files.scim_groups is None and config.groups:
        raise ExportFormatError(
            f"groups are selected ({', '.join(config.groups)}) but no --scim-groups file was "
            "given: export the IdP's groups, or leave out --group"
        )
    users_kind = SCIM_RESOURCES.format(kind="User")
    users = unpack(
        load_json(files.scim_users, users_kind), files.scim_users, "Resources", users_kind
    )
    groups: list = []
    if files.scim_groups is not None:
        groups_kind = SCIM_RESOURCES.format(kind="Group")
        groups = unpack(
            load_json(files.scim_groups, groups_kind), files.scim_groups, "Resources", groups_kind
        )
    return scim_resources.snapshot(users, groups, config.groups)


def _members_by_group(path: Path) -> dict[str, list | None]:
    document = load_json(path, GOOGLE_MEMBERS)
    if not isinstance(document, dict):
        raise ExportFormatError(
            f"{path}: the top level is {json_kind(document)}; expected {GOOGLE_MEMBERS}"
        )
    members: dict[str, list | None] = {}
    for group, value in document.items():
        if value is None:
            members[str(group).strip().lower()] = None
            continue
        members[str(group).strip().lower()] = unpack(
            value, path, "members", GOOGLE_MEMBERS, where=f"the value of {group!r}"
        )
    return members
