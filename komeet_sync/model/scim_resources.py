"""SCIM 2.0 resources (RFC 7643) read leniently, for every reader of SCIM JSON: what an IdP
pushed, an export of it, and Komeet's accounts.

Resources are validated with ``scim2-models``. Unknown attributes (IdPs add their own) are
set aside rather than refused; a resource with a bad value becomes a read error (a row of
READ_ERRORS) and never stops the others.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError
from scim2_models import EnterpriseUser, User

from komeet_sync.model.frames import Source
from komeet_sync.model.json_values import json_kind

USER = User[EnterpriseUser]


def parse(records: Iterable[Any], model: Any, source: Source) -> tuple[list[Any], list[tuple]]:
    """The records that are valid resources of ``model``, and a READ_ERRORS row for each of
    the others (by position, from 1, with its id and name when it has them)."""
    parsed: list[Any] = []
    errors: list[tuple] = []
    for position, record in enumerate(records, start=1):
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
        parsed.append(resource)
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
