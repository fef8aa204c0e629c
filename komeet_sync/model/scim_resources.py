"""SCIM 2.0 resources (RFC 7643) read leniently, for every reader of SCIM JSON: what an IdP
pushed, an export of it, and Komeet's accounts.

Resources are validated with ``scim2-models``. Unknown attributes (IdPs add their own) are
set aside rather than refused; a resource with a bad value becomes a read error (a row of
READ_ERRORS) and never stops the others.

Users come by the million (a domain's accounts, a staged directory), and scim2-models
validates one resource in about 100 microseconds. ``read_users`` therefore reads them column
by column: the attributes are taken from the JSON objects as they are, their names matched
case-insensitively (RFC 7643 §2.1) against the model's own table of names, and the values
checked a column at a time: text is text, booleans are booleans, each address is one
email-validator accepts as written (``model.emails``), each date one pydantic parses. Only
the resources that these checks cannot vouch for (an attribute of another type, a name the
fast path does not read, an odd address...) go through scim2-models one by one, so each bad
resource gets the very error it got before. ``read_users_one_by_one`` is that per-resource
reading for every resource: the reference the fast path is tested against.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from typing import Any

import numpy as np
import pandas as pd
from pydantic import TypeAdapter, ValidationError
from scim2_models import EnterpriseUser, User
from scim2_models.resources.resource import Meta
from scim2_models.resources.user import Email, Name

from komeet_sync.model.collector import collector_paused
from komeet_sync.model.emails import addresses_as_written
from komeet_sync.model.frames import READ_ERRORS, Source, empty_frame, text_array
from komeet_sync.model.json_values import json_kind

USER = User[EnterpriseUser]
USER_SCHEMA = str(User.__schema__)
ENTERPRISE_SCHEMA = str(EnterpriseUser.__schema__)

# One row per readable User resource, in the order they were given.
SCIM_USERS: dict[str, str] = {
    "position": "int64",  # where the resource was, from 1 (as read errors count)
    "id": "str",
    "external_id": "str",
    "user_name": "str",
    "given_name": "str",
    "family_name": "str",
    "active": "bool",  # false only when ``active`` is false: an absent value is not inactive
    "employee_number": "str",  # the enterprise extension's (RFC 7643 §4.3)
    "department": "str",
    "created": "str",  # meta.created as ISO 8601 (Python's isoformat of the parsed time)
}
# One row per entry of a readable resource's ``emails``, in their order.
SCIM_EMAILS: dict[str, str] = {
    "position": "int64",
    "value": "str",  # as email-validator normalises it (pydantic's EmailStr)
    "primary": "bool",
}


@dataclass(frozen=True)
class ScimUsers:
    """User resources read: the readable ones (SCIM_USERS), their email addresses
    (SCIM_EMAILS), and a READ_ERRORS row for each of the others, in the order given."""

    users: pd.DataFrame
    emails: pd.DataFrame
    errors: pd.DataFrame


@collector_paused()
def read_users(records: Iterable[Any], source: Source) -> ScimUsers:
    """User resources (RFC 7643 §4.1, with the enterprise extension of §4.3), column by
    column where the fast checks vouch for them, one by one through scim2-models otherwise
    (see the module's docstring): the same frames and errors as ``read_users_one_by_one``."""
    records = records if isinstance(records, list) else list(records)
    fast = _FastUsers(records)
    slow = [(position, records[position - 1]) for position in fast.unread()]
    read = read_users_one_by_one(slow, source, numbered=True)
    users = _in_order(pd.concat([fast.users, read.users], ignore_index=True), SCIM_USERS)
    emails = _in_order(pd.concat([fast.emails, read.emails], ignore_index=True), SCIM_EMAILS)
    return ScimUsers(users=users, emails=emails, errors=read.errors)


def read_users_one_by_one(
    records: Iterable[Any], source: Source, *, numbered: bool = False
) -> ScimUsers:
    """Every resource validated on its own by scim2-models (``parse``): the reference
    reading. ``numbered``: ``records`` are (position, record) pairs."""
    pairs = list(records) if numbered else list(enumerate(records, start=1))
    parsed, errors = _parse_numbered(pairs, USER, source)
    users: list[tuple] = []
    emails: list[tuple] = []
    for position, user in parsed:
        enterprise = user[EnterpriseUser]
        created = user.meta.created if user.meta else None
        users.append(
            (
                position,
                user.id,
                user.external_id,
                user.user_name,
                user.name.given_name if user.name else None,
                user.name.family_name if user.name else None,
                user.active is not False,
                enterprise.employee_number if enterprise else None,
                enterprise.department if enterprise else None,
                created.isoformat() if created else None,
            )
        )
        emails.extend((position, email.value, email.primary is True) for email in user.emails or [])
    return ScimUsers(
        users=_frame(users, SCIM_USERS),
        emails=_frame(emails, SCIM_EMAILS),
        errors=_frame(errors, READ_ERRORS),
    )


def parse(records: Iterable[Any], model: Any, source: Source) -> tuple[list[Any], list[tuple]]:
    """The records that are valid resources of ``model``, and a READ_ERRORS row for each of
    the others (by position, from 1, with its id and name when it has them)."""
    parsed, errors = _parse_numbered(enumerate(records, start=1), model, source)
    return [resource for _, resource in parsed], errors


def _parse_numbered(
    numbered: Iterable[tuple[int, Any]], model: Any, source: Source
) -> tuple[list[tuple[int, Any]], list[tuple]]:
    parsed: list[tuple[int, Any]] = []
    errors: list[tuple] = []
    for position, record in numbered:
        if not isinstance(record, dict):
            errors.append(
                (
                    source.value,
                    None,
                    None,
                    "invalid_record",
                    f"record {position} is {json_kind(record)}, not a SCIM resource",
                )
            )
            continue
        resource, problem = _validate(model, record)
        if resource is None or not resource.id:
            identifier = lookup(record, "id")
            email = lookup(record, "userName") or lookup(record, "displayName")
            errors.append(
                (
                    source.value,
                    identifier,
                    email,
                    "invalid_record",
                    f"record {position}: {problem or 'no id'}",
                )
            )
            continue
        parsed.append((position, resource))
    return parsed, errors


def _validate(model: Any, record: dict[str, Any]) -> tuple[Any, str | None]:
    """Validate, setting aside attributes the model does not know (IdPs add their own)."""
    candidate = dict(record)
    for _ in range(3):
        try:
            return model.model_validate(candidate), None
        except ValidationError as exc:
            unknown = {e["loc"][0] for e in exc.errors() if e["type"] == "extra_forbidden"}
            if not unknown or len(unknown) < len({e["loc"][0] for e in exc.errors()}):
                first = exc.errors()[0]
                where = ".".join(str(part) for part in first["loc"])
                return None, f"{where}: {first['msg']}"
            candidate = {k: v for k, v in candidate.items() if k not in unknown}
    return None, "could not be read as a SCIM resource"


def lookup(record: dict[str, Any], name: str) -> str | None:
    """An attribute of a raw record, its name in any case (RFC 7643 §2.1)."""
    for key, value in record.items():
        if key.lower() == name.lower() and value is not None:
            return str(value)
    return None


# The fast path ----------------------------------------------------------------------------


class _Absent:
    """An attribute a resource does not carry (a null one is None)."""

    def __repr__(self) -> str:
        return "<absent>"


_ABSENT = _Absent()
_MISSING = (type(None), _Absent)  # null or absent: the same to every attribute read here


def _text_fields(model: Any) -> frozenset[str]:
    """The model's attributes of type string (pydantic checks nothing more of them)."""
    return frozenset(
        name for name, field in model.model_fields.items() if field.annotation == str | None
    )


# What the fast path reads of each model: its text attributes, and those named. A resource
# holding any other attribute of the model (phoneNumbers, a manager...) is read one by one.
_USER_FIELDS = _text_fields(USER) | {
    "schemas",
    "active",
    "name",
    "emails",
    "meta",
    "EnterpriseUser",
}
_NAME_FIELDS = _text_fields(Name)
_EMAIL_FIELDS = _text_fields(Email) | {"value", "type", "primary"}
_META_FIELDS = _text_fields(Meta) | {"created", "last_modified"}
_ENTERPRISE_FIELDS = _text_fields(EnterpriseUser) | {"manager"}
_COMMON_SCHEMAS = ([USER_SCHEMA], [USER_SCHEMA, ENTERPRISE_SCHEMA])
_TIMES = TypeAdapter(list[datetime | None])
_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?(Z|[+-]\d\d:\d\d)")


class _FastUsers:
    """The resources the fast checks vouch for, as frames; ``unread()`` the others."""

    def __init__(self, records: list[Any]) -> None:
        top = _Columns(records, USER, _USER_FIELDS, unknown=True)
        ok = top.read.copy()
        for field in _USER_FIELDS & _text_fields(USER):
            ok &= top.typed(field, str, *_MISSING)
        identifier = top.get("id")
        ok &= _typed(identifier, str)
        if "" in identifier:  # "no id": its error is the reference's to give
            ok &= np.array([value != "" for value in identifier], dtype=bool)
        user_name = top.get("user_name")
        ok &= _typed(user_name, str)
        ok &= top.typed("active", bool, *_MISSING)
        if top.has("schemas"):
            ok &= np.fromiter(map(_schemas_ok, top.get("schemas")), bool, len(records))

        name = _Columns(top.get("name"), Name, _NAME_FIELDS, unknown=False)
        ok &= name.acceptable()
        for field in _NAME_FIELDS:
            ok &= name.typed(field, str, *_MISSING)

        meta = _Columns(top.get("meta"), Meta, _META_FIELDS, unknown=False)
        ok &= meta.acceptable()
        for field in _META_FIELDS & _text_fields(Meta):
            ok &= meta.typed(field, str, *_MISSING)
        created, created_ok = _times(meta.get("created"))
        ok &= created_ok & _times(meta.get("last_modified"), iso=False)[1]

        enterprise = _Columns(
            top.get("EnterpriseUser"), EnterpriseUser, _ENTERPRISE_FIELDS, unknown=False
        )
        ok &= enterprise.acceptable()
        for field in _ENTERPRISE_FIELDS & _text_fields(EnterpriseUser):
            ok &= enterprise.typed(field, str, *_MISSING)
        ok &= enterprise.typed("manager", *_MISSING)

        emails = _Emails(top.get("emails"))
        ok &= emails.ok

        self.ok = ok
        active = top.get("active")
        self.users = pd.DataFrame(
            {
                "position": np.arange(1, len(records) + 1, dtype=np.int64),
                "id": _text(identifier),
                "external_id": _text(top.get("external_id")),
                "user_name": _text(user_name),
                "given_name": _text(name.get("given_name")),
                "family_name": _text(name.get("family_name")),
                "active": np.array([value is not False for value in active], dtype=bool),
                "employee_number": _text(enterprise.get("employee_number")),
                "department": _text(enterprise.get("department")),
                "created": created,
            }
        )[ok]
        self.emails = pd.DataFrame(
            {
                "position": emails.owner + 1,
                "value": emails.value,
                "primary": emails.primary,
            }
        )[ok[emails.owner]]

    def unread(self) -> list[int]:
        """The positions (from 1) of the resources the fast path did not read."""
        return (np.flatnonzero(~self.ok) + 1).tolist()


class _Columns:
    """The attributes of JSON objects as columns aligned with them: one list a field of
    ``fields``, ``_ABSENT`` where an object does not carry it or is not ``read``.

    Objects are read by layout (their keys, in order): each key is matched against the
    model's names once for all the objects that spell them alike. A layout is read when
    each of its keys names a field of ``fields``, once; a key the model does not know is set
    aside when ``unknown`` (at a resource's top level, as ``_validate`` does), and keeps the
    layout from being read otherwise (scim2-models then drops the attribute around it).
    """

    def __init__(
        self, objects: list[Any], model: Any, fields: frozenset[str], *, unknown: bool
    ) -> None:
        self.objects = objects
        self.size = len(objects)
        by_layout: dict[tuple, list[int]] = {}
        if set(map(type, objects)) == {dict}:
            layouts = list(map(tuple, objects))
            if len(set(layouts)) == 1:
                by_layout[layouts[0]] = list(range(self.size))
            else:
                for index, layout in enumerate(layouts):
                    by_layout.setdefault(layout, []).append(index)
        else:
            for index, value in enumerate(objects):
                if type(value) is dict:
                    by_layout.setdefault(tuple(value), []).append(index)
        self.read = np.zeros(self.size, dtype=bool)
        self.groups: list[tuple[dict[str, str], list[int]]] = []
        for layout, indexes in by_layout.items():
            keys = _keys(layout, model, fields, unknown)
            if keys is not None:
                self.groups.append((keys, indexes))
                self.read[indexes] = True
        self.fields = {field for keys, _ in self.groups for field in keys}
        self.columns: dict[str, list[Any]] = {}

    def has(self, field: str) -> bool:
        return field in self.fields

    def get(self, field: str) -> list[Any]:
        if field in self.columns:
            return self.columns[field]
        column: list[Any]
        if not self.has(field):
            column = [_ABSENT] * self.size
        elif len(self.groups) == 1 and len(self.groups[0][1]) == self.size:
            key = self.groups[0][0][field]
            column = [value[key] for value in self.objects]
        else:
            column = [_ABSENT] * self.size
            for keys, indexes in self.groups:
                key = keys.get(field)  # type: ignore[assignment]
                if key is not None:
                    for index in indexes:
                        column[index] = self.objects[index][key]
        self.columns[field] = column
        return column

    def typed(self, field: str, *types: type) -> np.ndarray | bool:
        """Whether the field of each object is of one of ``types`` (absent when not read)."""
        return _typed(self.get(field), *types) if self.has(field) else True

    def acceptable(self) -> np.ndarray:
        """Whether each value, as a complex attribute (RFC 7643 §2.3.8), is read here or
        is null or absent."""
        return self.read | _typed(self.objects, *_MISSING)


def _keys(
    layout: tuple, model: Any, fields: frozenset[str], unknown: bool
) -> dict[str, str] | None:
    """The key of each field in a layout; None when the fast path cannot read it."""
    by_name = model.__scim_info__.field_by_name
    keys: dict[str, str] = {}
    for key in layout:
        if type(key) is not str:
            return None
        field = by_name.get(key.lower())
        if field is None:
            if unknown:
                continue
            return None
        # "schemas" is read under that spelling only: scim2-models fills it in when absent.
        if field not in fields or field in keys or (field == "schemas" and key != "schemas"):
            return None
        keys[field] = key
    return keys


class _Emails:
    """The ``emails`` of each resource (RFC 7643 §4.1.2), one row an entry: ``owner`` is
    the resource's row; ``ok`` is false for a resource whose emails the fast path cannot
    vouch for, each entry of them an object with an address email-validator accepts as
    written, or none."""

    def __init__(self, values: list[Any]) -> None:
        listed = [value if type(value) is list else () for value in values]
        self.owner = np.repeat(np.arange(len(values), dtype=np.int64), list(map(len, listed)))
        entries = list(chain.from_iterable(listed))
        columns = _Columns(entries, Email, _EMAIL_FIELDS, unknown=False)
        good = columns.read & columns.typed("display", str, *_MISSING)
        good &= columns.typed("type", str, *_MISSING)
        good &= columns.typed("primary", bool, *_MISSING)
        given = columns.get("value")
        written = addresses_as_written(pd.Series(given, dtype=object))
        good &= written.notna().to_numpy() | _typed(given, *_MISSING)
        # A resource is read only if every one of its entries is.
        self.ok = _typed(values, list, *_MISSING) & (
            np.bincount(self.owner[~good], minlength=len(values)) == 0
        )
        self.value = written.array
        self.primary = np.array([value is True for value in columns.get("primary")], dtype=bool)


def _typed(values: list[Any], *types: type) -> np.ndarray | bool:
    """Whether each value is of one of ``types``, exactly (JSON gives no subclasses)."""
    allowed = frozenset(types)
    if set(map(type, values)) <= allowed:
        return True
    return np.array([type(value) in allowed for value in values], dtype=bool)


def _schemas_ok(value: Any) -> bool:
    """``schemas`` as scim2-models takes it: strings, the User schema among them if any
    (absent, it fills it in)."""
    if value is _ABSENT or value in _COMMON_SCHEMAS:
        return True
    return (
        type(value) is list
        and all(type(schema) is str for schema in value)
        and (not value or USER_SCHEMA in value)
    )


def _times(values: list[Any], *, iso: bool = True) -> tuple[Any, np.ndarray | bool]:
    """DateTime values (RFC 7643 §2.3.5) as ISO 8601 in Python's form (None unless
    ``iso``), and whether each is absent, null or a string that pydantic parses, as
    scim2-models does."""
    given = [value if type(value) is str else None for value in values]
    ok = _typed(values, str, *_MISSING)
    if not isinstance(ok, np.ndarray):
        ok = np.ones(len(values), dtype=bool)
    try:
        parsed = _TIMES.validate_python(given)
    except ValidationError as exc:
        for error in exc.errors():
            index = int(error["loc"][0])
            ok[index] = False
            given[index] = None
        parsed = _TIMES.validate_python(given)
    if not iso:
        return None, ok
    written: dict[str, str] = {}
    for text, moment in zip(given, parsed, strict=True):
        if text is not None and moment is not None and text not in written:
            written[text] = _isoformat(text, moment)
    return text_array([written[text] if text is not None else None for text in given]), ok


def _isoformat(text: str, moment: datetime) -> str:
    """``moment.isoformat()``, from the text it was parsed from when that is RFC 3339's
    usual form (a tenth of the time of asking the datetime)."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        return moment.isoformat()
    base, fraction, zone = match.groups()
    if fraction and fraction.strip("0"):
        base += "." + fraction.ljust(6, "0")
    return base + ("+00:00" if zone in ("Z", "-00:00") else zone)


def _text(values: list[Any]) -> Any:
    if set(map(type, values)) <= {str, type(None)}:
        return text_array(values)
    return text_array([value if type(value) is str else None for value in values])


def _frame(rows: list[tuple], schema: dict[str, str]) -> pd.DataFrame:
    if not rows:
        return empty_frame(schema)
    return pd.DataFrame(rows, columns=list(schema)).astype(schema)


def _in_order(frame: pd.DataFrame, schema: dict[str, str]) -> pd.DataFrame:
    """The rows by position, entries of one resource in their order."""
    frame = frame.astype(schema) if len(frame) else empty_frame(schema)
    return frame.sort_values("position", kind="stable", ignore_index=True)
