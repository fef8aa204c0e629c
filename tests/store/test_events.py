"""Events are recorded once per occurrence (``store.events``), on SQLite and PostgreSQL: the
same key twice records one event, even from two threads at once; the outcome of each try at
sending it is kept, and a delivered event is no longer pending."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import event as sql_event

from komeet_sync.store.database import open_database
from komeet_sync.store.events import (
    Event,
    EventKind,
    claim,
    recent_events,
    record_delivery,
    record_event,
    record_events,
    undelivered,
)
from tests.support.rows_read import rows_read


@pytest.fixture
def engine(database_url):
    engine = open_database(database_url)
    yield engine
    engine.dispose()


def held(plan_id: str, domain: str = "acme.com") -> Event:
    return Event(
        kind=EventKind.PLAN_HELD,
        domain=domain,
        key=f"plan held {plan_id}",
        subject=f"{domain}: plan {plan_id} held",
        body="approve it with ...",
        details={"plan_id": plan_id},
    )


def test_the_same_occurrence_is_recorded_once(engine):
    first = record_event(engine, held("p1"))
    assert first is not None and first.id is not None and first.at is not None
    assert record_event(engine, held("p1")) is None
    assert record_event(engine, held("p2")) is not None
    assert [event.details["plan_id"] for event in recent_events(engine)] == ["p2", "p1"]
    assert recent_events(engine, "globex.com") == []


def test_two_threads_recording_one_occurrence_record_it_once(engine):
    with ThreadPoolExecutor(8) as pool:
        recorded = list(pool.map(lambda _: record_event(engine, held("p1")), range(8)))
    assert sum(event is not None for event in recorded) == 1
    assert len(recent_events(engine)) == 1


def test_an_event_is_sent_by_one_process_and_tries_are_counted(engine):
    event = record_event(engine, held("p1"))
    (pending,) = undelivered(engine, most_attempts=3)
    assert pending.id == event.id
    assert claim(engine, pending, timedelta(minutes=1))
    assert not claim(engine, pending, timedelta(minutes=1))  # taken: another process's read
    assert undelivered(engine, most_attempts=3) == []  # being sent
    record_delivery(engine, event.id, "json://127.0.0.1:9/: connection refused", settled=False)
    (pending,) = undelivered(engine, most_attempts=3)
    assert pending.attempts == 1 and "refused" in pending.delivery
    assert undelivered(engine, most_attempts=1) == []
    assert claim(engine, pending, timedelta(minutes=1))
    record_delivery(engine, event.id, "sent to 1 of 1", settled=True)
    assert undelivered(engine, most_attempts=3) == []
    (latest,) = recent_events(engine)
    assert latest.delivery == "sent to 1 of 1" and latest.delivered_at is not None


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_events_to_send_are_found_without_reading_those_sent(engine):
    """A thousand domains record events every hour; the notification sensor reads the
    undelivered ones at every evaluation."""
    for number in range(200):
        sent = record_event(engine, held(f"p{number}"))
        assert sent is not None and sent.id is not None
        record_delivery(engine, sent.id, "sent", settled=True)
    waiting = record_event(engine, held("waiting"))

    pending, read = rows_read(engine, "events", lambda: undelivered(engine, most_attempts=3))

    assert [event.key for event in pending] == [waiting.key]
    assert read <= 2, read  # 201 before the partial index


def test_many_events_are_recorded_in_two_statements_those_recorded_before_left(engine):
    """The SCIM-push sensor tells of every domain whose worker is behind at each evaluation:
    a thousand domains must not cost it a thousand round trips."""
    record_event(engine, held("p3"))
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_):
        if "events" in statement:
            statements.append(statement)

    sql_event.listen(engine, "before_cursor_execute", seen)
    try:
        recorded = record_events(engine, [held(f"p{number}") for number in range(50)])
    finally:
        sql_event.remove(engine, "before_cursor_execute", seen)

    assert len(recorded) == 49 and all(event.id is not None for event in recorded)
    assert "p3" not in {event.details["plan_id"] for event in recorded}
    assert len(statements) == 2, statements
    assert record_events(engine, [held("p7"), held("p60")])[0].details["plan_id"] == "p60"
    assert len(recent_events(engine, limit=100)) == 51
