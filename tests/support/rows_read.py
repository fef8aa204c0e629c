"""How many rows of a table a piece of code reads on PostgreSQL: each statement it runs that
names the table, run again under ``EXPLAIN ANALYZE`` (in a transaction rolled back), and the
rows its plan took from the table counted (those kept, and those a filter dropped, times
the node's loops).

Sequential scans are turned off for the count: on a test's small tables PostgreSQL reads
every page whatever the query asks, where on a production table it takes an index when
the query lets it. With them off, a query that can use an index reads only what it needs,
and one that cannot still reads the whole table: that difference is what is counted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from sqlalchemy import Engine, event

T = TypeVar("T")


def rows_read(engine: Engine, table: str, call: Callable[[], T]) -> tuple[T, int]:
    """``call()``'s result, and the rows of ``table`` its statements read."""
    if engine.dialect.name != "postgresql":
        raise ValueError("rows_read explains statements on PostgreSQL only")
    named = re.compile(rf"\b{re.escape(table)}\b")
    statements: list[tuple[str, Any]] = []

    def seen(_conn, _cursor, statement, parameters, _context, _executemany) -> None:
        if named.search(statement) and not statement.lstrip().upper().startswith("EXPLAIN"):
            statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", seen)
    try:
        result = call()
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    total = 0
    with engine.connect() as connection:
        for statement, parameters in statements:
            transaction = connection.begin()
            try:
                connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
                [[plan]] = connection.exec_driver_sql(
                    "EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters
                ).all()
            finally:
                transaction.rollback()
            plan = json.loads(plan) if isinstance(plan, str) else plan
            total += sum(_rows(node, table) for node in _nodes(plan[0]["Plan"]))
    return result, total


def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", ()):
        yield from _nodes(child)


def _rows(node: dict[str, Any], table: str) -> int:
    if node.get("Relation Name") != table:
        return 0
    kept = node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)
    return int(kept * node.get("Actual Loops", 1))
