"""One incremental writer per domain at a time (``store.leases``), on SQLite and PostgreSQL:
a second writer waits or is told who writes; a lease left by a writer that died expires."""

from __future__ import annotations

import threading
import time

import pytest

from komeet_sync.store.database import open_database
from komeet_sync.store.leases import Busy, domain_lease


@pytest.fixture
def engine(database_url):
    engine = open_database(database_url)
    yield engine
    engine.dispose()


def test_a_domain_has_one_writer_at_a_time_and_others_are_free(engine):
    with domain_lease(engine, "acme.com", "first") as lease:
        busy = pytest.raises(Busy, match=r"acme\.com is being written by first until")
        with busy, domain_lease(engine, "acme.com", "second"):
            pass
        with domain_lease(engine, "globex.com", "second"):
            pass
        lease.renew()
    with domain_lease(engine, "acme.com", "second"):  # released
        pass


def test_a_writer_waits_for_the_lease_to_be_released(engine):
    order = []
    taken = threading.Event()

    def first() -> None:
        with domain_lease(engine, "acme.com", "first"):
            taken.set()
            time.sleep(0.3)
            order.append("first done")

    thread = threading.Thread(target=first)
    thread.start()
    taken.wait(5)
    with domain_lease(engine, "acme.com", "second", wait=10):
        order.append("second")
    thread.join()
    assert order == ["first done", "second"]


def test_the_lease_of_a_writer_that_stopped_renewing_it_expires(engine):
    with domain_lease(engine, "acme.com", "stuck", ttl=0.2) as stuck:
        with pytest.raises(Busy), domain_lease(engine, "acme.com", "next"):
            pass
        time.sleep(0.3)  # the stuck writer (or a dead one) never renewed it
        with domain_lease(engine, "acme.com", "next") as lease:
            lease.renew()
            # It expired and was taken: the stuck writer must stop writing.
            with pytest.raises(Busy, match="being written by next"):
                stuck.renew()
    # Leaving its block, the stuck writer released nothing of the next one's.
    with domain_lease(engine, "acme.com", "third"):
        pass
