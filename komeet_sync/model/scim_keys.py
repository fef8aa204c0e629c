"""The keys a staged user is known by, one user at a time: what ``engine.reconcile.node_keys``
lists for that person when staging is read whole (ARCHITECTURE.md, "Identity and matching").

The SCIM endpoint keeps them in ``scim_person_keys`` with every write, so an incremental
sync finds who holds a key without reading the whole staging. A write is one user: the rule
is applied here to one stored document, with the same normalisation (``model.emails``) the
column-wise reading applies; tests/sources/scim/test_people.py holds the two equal.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from scim2_models import EnterpriseUser

from komeet_sync.model.emails import InvalidEmail, normalise_email

Key = tuple[str, str]  # (namespace, value), as ``engine.reconcile.node_keys`` lists them

STABLE_ID, EMAIL, EMPLOYEE_ID = "id", "email", "employee id"
INDEXED_LENGTH = 512  # scim_person_keys.value
_ENTERPRISE = str(EnterpriseUser.__schema__)


def person_keys(resource_id: str, document: Mapping[str, Any]) -> list[Key]:
    """A staged user's keys, from its stored document (SCIM JSON as the storage keeps it):
    the stable id (the IdP's ``externalId``, else the resource id), the normalised
    ``userName`` and ``emails[].value`` (rules 1 to 3 of matching) and the enterprise
    ``employeeNumber`` (RFC 7643 §4.3), each value once, a missing or invalid one left out."""
    external_id = document.get("externalId")
    stable_id = external_id if external_id not in (None, "") else resource_id
    keys: list[Key] = []
    if str(stable_id).strip():
        keys.append((STABLE_ID, str(stable_id).strip()))
    email = _normalised(document.get("userName"))
    if email is not None:
        keys.append((EMAIL, email))
    for entry in document.get("emails") or ():
        alias = _normalised(entry.get("value") if isinstance(entry, Mapping) else None)
        if alias is not None and (EMAIL, alias) not in keys:
            keys.append((EMAIL, alias))
    enterprise = document.get(_ENTERPRISE)
    employee_id = enterprise.get("employeeNumber") if isinstance(enterprise, Mapping) else None
    if isinstance(employee_id, str) and employee_id.strip():
        keys.append((EMPLOYEE_ID, employee_id.strip()))
    return keys


def as_json(keys: Iterable[Key]) -> list[list[str]]:
    """Keys as JSON holds them: ``[[namespace, value], ...]``, in one order."""
    return [list(key) for key in sorted(set(keys))]


def indexed(value: str) -> str:
    """A key's value as the key index holds and looks it up: itself, or its SHA-256 when it
    is longer than the column or holds what a database refuses in text (NUL, a lone
    surrogate), as an IdP's ``externalId`` may."""
    if len(value) <= INDEXED_LENGTH and "\x00" not in value:
        try:
            value.encode()
            return value
        except UnicodeEncodeError:
            pass
    return "sha256:" + hashlib.sha256(value.encode(errors="surrogatepass")).hexdigest()


def _normalised(address: Any) -> str | None:
    if not isinstance(address, str):
        return None
    try:
        return normalise_email(address)
    except InvalidEmail:
        return None
