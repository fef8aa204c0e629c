"""Google's partial-response ``fields`` parameter ("Performance tips: partial response").

Syntax: a comma-separated list of fields; ``a/b`` selects ``b`` inside ``a``; ``a(b,c)``
selects ``b`` and ``c`` inside ``a`` (in each element when ``a`` is a list); ``*`` selects
every field at its level.
"""

from __future__ import annotations

from typing import Any

Selection = dict[str, "Selection | None"]  # None: the whole value


class InvalidFields(ValueError):
    """A ``fields`` value that is not partial-response syntax."""


def parse(fields: str) -> Selection:
    parser = _Parser(fields)
    selection = parser.selection()
    if parser.position != len(fields):
        raise InvalidFields(f"unexpected {fields[parser.position]!r} at {parser.position}")
    return selection


def select(value: Any, selection: Selection | None) -> Any:
    """The parts of ``value`` that ``selection`` names."""
    if selection is None:
        return value
    if isinstance(value, list):
        return [select(item, selection) for item in value]
    if not isinstance(value, dict):
        return value
    if "*" in selection:
        return {key: select(item, selection.get(key)) for key, item in value.items()}
    return {key: select(value[key], sub) for key, sub in selection.items() if key in value}


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.position = 0

    def selection(self) -> Selection:
        result: Selection = {}
        while True:
            self._item(result)
            if self._peek() != ",":
                return result
            self.position += 1

    def _item(self, into: Selection) -> None:
        path = [self._name()]
        while self._peek() == "/":
            self.position += 1
            path.append(self._name())
        sub: Selection | None = None
        if self._peek() == "(":
            self.position += 1
            sub = self.selection()
            if self._peek() != ")":
                raise InvalidFields(f"missing ')' at {self.position}")
            self.position += 1
        for name in reversed(path[1:]):
            sub = {name: sub}
        _merge(into, path[0], sub)

    def _name(self) -> str:
        start = self.position
        while self.position < len(self.text) and self.text[self.position] not in ",/()":
            self.position += 1
        name = self.text[start : self.position].strip()
        if not name:
            raise InvalidFields(f"a field name is missing at {start}")
        return name

    def _peek(self) -> str:
        return self.text[self.position] if self.position < len(self.text) else ""


def _merge(into: Selection, name: str, sub: Selection | None) -> None:
    if name not in into:
        into[name] = sub
        return
    current = into[name]
    if current is None or sub is None:
        into[name] = None  # the whole value wins over a part of it
        return
    for key, value in sub.items():
        _merge(current, key, value)
