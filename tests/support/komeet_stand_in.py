"""The Komeet stand-in with the indexes a real Komeet has: the third-party ``scim2-server``
command, its storage given an index of every value an ``eq`` filter compares.

scim2-server's ``InMemoryStorage`` walks only the resources holding the value when a filter
is one ``eq`` of one single-valued attribute, and every resource otherwise: a search by key
of a few terms joined by ``or`` (``komeet.accounts.KomeetSide``) costs it a pass over all the
accounts, about a second at 100,000 (benchmarks/RESULTS.md). A database behind a SCIM API
answers it from its indexes. ``IndexedStorage`` walks the resources holding any of the
values of a filter of ``eq`` terms joined by ``or``, single- or multi-valued attributes
alike (``emails.value``), and still matches each of them against the whole filter, so it
answers what scim2-server answers. Run it as ``python -m tests.support.komeet_stand_in``
with the options of ``scim2-server``.
"""

from __future__ import annotations

from typing import Any

from scim2_models import AttributeBinding, InvalidFilterException, Path, Resource, ScimFilter
from scim2_models.path import CompareOperator, Comparison, LogicalExpr, LogicalOperator
from scim2_models.path.resolution import coerce_value
from scim2_server.memory import InMemoryStorage
from scim2_server.testserver import cli
from scim2_server.utils import parametrize

Stored = tuple[str | None, str]  # a resource's type and id, as InMemoryStorage keys it


class IndexedStorage(InMemoryStorage):
    """``InMemoryStorage`` whose searches of ``eq`` terms joined by ``or`` walk only the
    resources holding one of their values (each attribute indexed on its first search)."""

    def __init__(self) -> None:
        super().__init__()
        self._indexes: dict[str | None, dict[AttributeBinding, dict[Any, set[str]]]] = {}
        self._indexed: dict[Stored, dict[AttributeBinding, set[Any]]] = {}

    def _candidates(self, names: list[str | None], scim_filter: Any) -> list[Resource[Any]]:
        terms = _equalities(scim_filter) if len(names) == 1 else None
        if terms is None:
            return super()._candidates(names, scim_filter)
        found: set[str] = set()
        for binding, value in terms:
            found |= self._index(names[0], binding).get(value, set())
        resources = self._resources.get(names[0], {})
        return [resources[resource_id] for resource_id in found]

    def _index(self, name: str | None, binding: AttributeBinding) -> dict[Any, set[str]]:
        indexes = self._indexes.setdefault(name, {})
        if binding not in indexes:
            indexes[binding] = {}
            for resource in self._resources.get(name, {}).values():
                self._index_values(resource, binding)
        return indexes[binding]

    def _index_values(self, resource: Resource[Any], binding: AttributeBinding) -> None:
        assert resource.meta is not None
        key = (resource.meta.resource_type, str(resource.id))
        value = parametrize(Path, type(resource))(binding.urn).get(resource, strict=False)
        values = {_comparable(binding, item) for item in _listed(value)} - {None}
        self._indexed.setdefault(key, {})[binding] = values
        for item in values:
            self._indexes[key[0]][binding].setdefault(item, set()).add(key[1])

    def _store(self, resource: Resource[Any], values: dict[str, Any]) -> None:
        super()._store(resource, values)
        assert resource.meta is not None
        for binding in self._indexes.get(resource.meta.resource_type, {}):
            self._index_values(resource, binding)

    def _remove(self, key: Stored) -> None:
        for binding, values in self._indexed.pop(key, {}).items():
            for item in values:
                self._indexes[key[0]][binding][item].discard(key[1])
        super()._remove(key)


def _equalities(scim_filter: ScimFilter[Any] | None) -> list[tuple[AttributeBinding, Any]] | None:
    """The attributes and values of a filter of ``eq`` terms joined by ``or``, in the form
    they are compared in; None for any other filter. A value the attribute cannot hold
    matches nothing, as ``ScimFilter.match`` finds."""
    if scim_filter is None or scim_filter.model is None:
        return None
    node = scim_filter.ast
    terms = (
        node.terms if isinstance(node, LogicalExpr) and node.op == LogicalOperator.or_ else (node,)
    )
    found = []
    for term in terms:
        if not (isinstance(term, Comparison) and term.op == CompareOperator.eq):
            return None
        if not isinstance(term.value, str):
            return None
        binding = scim_filter.resolve_comparison(term.attr_path, strict=False)
        if binding is None:
            return None
        try:
            value = _comparable(binding, coerce_value(binding, term.value, CompareOperator.eq))
        except (ValueError, InvalidFilterException):
            continue
        found.append((binding, value))
    return found


def _comparable(binding: AttributeBinding, value: Any) -> Any:
    """A value as the filter compares it; None for one it cannot compare (equal to no
    other) or that an index cannot hold."""
    try:
        comparable = None if value is None else binding.comparable(value)
        hash(comparable)
    except (ValueError, TypeError):
        return None
    return comparable


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


if __name__ == "__main__":
    cli.InMemoryStorage = IndexedStorage  # type: ignore[misc]
    cli.main()
