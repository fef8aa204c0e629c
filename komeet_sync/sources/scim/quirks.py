"""What identity providers really send to a SCIM endpoint, rewritten into RFC 7644.

Microsoft Entra ID ("Known issues and resolutions with SCIM 2.0 compliance") and Okta
("SCIM 2.0 provisioning reference") send requests that a strict server refuses; each rule
below names the form it accepts. The rewrite is pure: JSON in, JSON out; scim2-server then
validates the result as usual, so anything else is still refused with a SCIM error.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
BOOLEAN_ATTRIBUTES = frozenset({"active", "primary"})
# Okta sends the password it generated; we never keep or log it.
SECRET_ATTRIBUTES = frozenset({"password"})


def resource(document: Any, known_schemas: Iterable[str]) -> Any:
    """A User or Group body (POST, PUT) with what IdPs add removed or mended:

    - ``null`` attributes are absent (Entra ID sends ``"title": null``);
    - attributes of a schema the server does not know are dropped, with the schema URI
      (Entra ID's ``urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User``);
    - booleans sent as strings become booleans (Entra ID's ``"active": "False"``);
    - the enterprise ``manager`` given as a string, an object or a list becomes an object
      with its ``value`` (RFC 7643 §4.3);
    - ``password`` is dropped on arrival.
    """
    if not isinstance(document, dict):
        return document
    known = {uri.lower() for uri in known_schemas}
    cleaned: dict[str, Any] = {}
    for key, value in document.items():
        lower = key.lower()
        if value is None or lower in SECRET_ATTRIBUTES:
            continue
        if lower.startswith("urn:") and lower not in known:
            continue
        if lower == "schemas" and isinstance(value, list):
            value = [uri for uri in value if not isinstance(uri, str) or uri.lower() in known]
        elif lower == ENTERPRISE_USER.lower() and isinstance(value, dict):
            value = _enterprise(value)
        cleaned[key] = _clean(key, value)
    return cleaned


def patch(document: Any, known_schemas: Iterable[str]) -> Any:
    """A PatchOp body (RFC 7644 §3.5.2) with the operations IdPs send made standard:

    - ``op`` in any case (Entra ID's ``"Replace"``, ``"Add"``, ``"Remove"``);
    - a path-less ``add``/``replace`` whose value has dotted keys (``name.givenName``) or
      attribute URNs (``urn:...:enterprise:2.0:User:department``) becomes one operation per
      such key, with that key as its path;
    - ``remove`` of ``members`` with a list of values (Entra ID) becomes one filtered
      removal per member (``members[value eq "..."]``);
    - values mended as for ``resource``; operations on a schema the server does not know
      are dropped. (A ``password`` operation is kept, so that the request succeeds: the
      storage drops the password before writing.)
    """
    if not isinstance(document, dict):
        return document
    known = {uri.lower() for uri in known_schemas}
    key = next((k for k in document if k.lower() == "operations"), None)
    if key is None or not isinstance(document[key], list):
        return document
    operations: list[Any] = []
    for operation in document[key]:
        operations.extend(_operation(operation, known))
    return {**document, key: operations}


def _operation(operation: Any, known: set[str]) -> list[Any]:
    if not isinstance(operation, dict):
        return [operation]
    op = {k.lower(): v for k, v in operation.items()}
    name = str(op.get("op", "")).lower()
    path = op.get("path")
    value = op.get("value")
    if not path and name in ("add", "replace") and isinstance(value, dict):
        return _pathless(name, value, known)
    if not isinstance(path, str) or not path:
        return [{**op, "op": name}]
    attribute = _attribute_of(path)
    if path.lower().startswith("urn:") and not any(path.lower().startswith(uri) for uri in known):
        return []
    if name == "remove" and attribute == "members" and isinstance(value, list):
        return [
            {"op": "remove", "path": f'members[value eq "{member["value"]}"]'}
            for member in value
            if isinstance(member, dict) and member.get("value")
        ]
    if "value" in op:
        op["value"] = _value_at(path, value)
    return [{**op, "op": name}]


def _pathless(name: str, value: dict[str, Any], known: set[str]) -> list[Any]:
    plain: dict[str, Any] = {}
    operations = []
    for key, item in value.items():
        lower = key.lower()
        if lower.startswith("urn:") and lower not in known:
            if any(lower.startswith(uri + ":") for uri in known):  # an extension attribute
                operations.append({"op": name, "path": key, "value": _value_at(key, item)})
            continue  # an attribute of a known schema was taken; an unknown schema is not
        if "." in key and not lower.startswith("urn:"):
            operations.append({"op": name, "path": key, "value": _value_at(key, item)})
            continue
        plain[key] = item
    cleaned = resource(plain, known)
    return ([{"op": name, "value": cleaned}] if cleaned else []) + operations


def _value_at(path: str, value: Any) -> Any:
    attribute = _attribute_of(path)
    if attribute == "manager":
        return _manager(value)
    return _clean(attribute, value)


def _attribute_of(path: str) -> str:
    """The last attribute a path names, lower-cased: ``urn:...:User:manager`` is
    ``manager``, ``emails[type eq "work"].value`` is ``value``, ``name.givenName`` is
    ``givenname``."""
    tail = path.rsplit("]", 1)[-1].lstrip(".") or path.split("[", 1)[0]
    return tail.rsplit(":", 1)[-1].rsplit(".", 1)[-1].lower()


def _enterprise(value: dict[str, Any]) -> dict[str, Any]:
    mended = {k: v for k, v in value.items() if v is not None}
    for key in list(mended):
        if key.lower() == "manager":
            manager = _manager(mended[key])
            if manager is None:
                del mended[key]
            else:
                mended[key] = manager
    return mended


def _manager(value: Any) -> Any:
    """Okta sends the manager's id as a string, Entra ID as ``{"value": id}`` or a list."""
    if isinstance(value, list):
        value = next((item for item in value if item not in (None, "", {})), None)
    if isinstance(value, str | int):
        return {"value": str(value)} if str(value).strip() else None
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if v is not None} or None
    return value


def _clean(key: str, value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(k, v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_clean(key, item) for item in value if item is not None]
    if key.lower() in BOOLEAN_ATTRIBUTES and isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
    return value
