"""The fault-injecting proxy in front of the real ``scim2-server``, driven with ``requests``:
it forwards faithfully, and its latency and faults do what the SCIM client will meet."""

from __future__ import annotations

import http.client
import json
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest
import requests

from komeet_sync.emulators.http_proxy import (
    FaultKind,
    Faults,
    HttpProxy,
    ReceivedRequest,
)
from tests.support import ROOT
from tests.support.komeet_server import TOKEN

SCIM_JSON = "application/scim+json"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


@pytest.fixture
def upstream(komeet_server) -> str:
    """A real ``scim2-server`` in its own process (a tenant of the Komeet stand-in): its
    base URL, under which it answers ``/v2/Users``."""
    return komeet_server.tenant().url.removesuffix("/v2")


@pytest.fixture
def proxy(upstream) -> Iterator[Callable[..., HttpProxy]]:
    """Start proxies to the upstream (``proxy(latency=..., faults=...)``); stop them after."""
    started: list[HttpProxy] = []

    def start(**options) -> HttpProxy:
        started.append(HttpProxy(upstream, **options).start())
        return started[-1]

    yield start
    for each in started:
        each.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scim_session(token: str = TOKEN) -> requests.Session:
    session = requests.Session()
    session.headers.update(
        {"Authorization": f"Bearer {token}", "Content-Type": SCIM_JSON, "Accept": SCIM_JSON}
    )
    return session


def new_user_name() -> str:
    return f"ada.{uuid.uuid4().hex[:10]}@acme.com"


def create_user(session: requests.Session, base_url: str, user_name: str, **options):
    return session.post(
        f"{base_url}/v2/Users",
        json={"schemas": [USER], "userName": user_name},
        **({"timeout": 10} | options),
    )


def users_named(upstream: str, user_name: str) -> list[dict]:
    """The users called ``user_name``, asked of the upstream directly (not via the proxy)."""
    response = scim_session().get(
        f"{upstream}/v2/Users", params={"filter": f'userName eq "{user_name}"'}, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.json().get("Resources", [])


def eventually_named(upstream: str, user_name: str, seconds: float = 5.0) -> list[dict]:
    """``users_named``, waiting a little for a request the client gave up on to land."""
    deadline = time.monotonic() + seconds
    while not (found := users_named(upstream, user_name)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def always(kind: FaultKind, **options) -> Faults:
    return Faults(rate=1.0, kinds=(kind,), **options)


# --- forwarding --------------------------------------------------------------------------


def test_forwards_a_created_user_and_reads_it_back(proxy, upstream):
    through = proxy()
    session = scim_session()
    user_name = new_user_name()

    created = create_user(session, through.url, user_name)
    assert created.status_code == 201, created.text
    assert created.headers["Content-Type"] == SCIM_JSON
    assert created.headers["Content-Length"] == str(len(created.content))
    user = created.json()
    assert user["userName"] == user_name and user["schemas"] == [USER]

    read = session.get(f"{through.url}/v2/Users/{user['id']}", timeout=10)
    assert read.status_code == 200 and read.json() == user
    assert [u["id"] for u in users_named(upstream, user_name)] == [user["id"]]

    stats = through.stats()
    assert (stats.received, stats.forwarded, stats.upstream_failures) == (2, 2, 0)
    assert stats.requests == (("POST", "/v2/Users"), ("GET", f"/v2/Users/{user['id']}"))
    assert all(count == 0 for count in stats.faults.values())


def test_passes_the_bearer_token_and_the_upstream_refusal(proxy, upstream):
    through = proxy()
    user_name = new_user_name()

    refused = create_user(scim_session("not-the-token"), through.url, user_name)
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert refused.json()["schemas"] == [ERROR]
    assert users_named(upstream, user_name) == []

    assert create_user(scim_session(), through.url, user_name).status_code == 201


def test_forwards_the_query_and_keeps_the_upstream_path_prefix(proxy):
    # scim2-server answers on / as on /v2, so a second proxy sees which path came through.
    inner = proxy()
    user_name = new_user_name()
    assert create_user(scim_session(), inner.url, user_name).status_code == 201
    with HttpProxy(f"{inner.url}/v2/") as outer:
        found = scim_session().get(
            f"{outer.url}/Users", params={"filter": f'userName eq "{user_name}"'}, timeout=10
        )
        assert outer.stats().requests == (ReceivedRequest("GET", "/Users"),)
    assert found.status_code == 200, found.text
    assert [u["userName"] for u in found.json()["Resources"]] == [user_name]
    assert inner.stats().requests[-1] == ("GET", "/v2/Users")


def test_records_a_delete_and_forwards_it(proxy, upstream):
    through = proxy()
    session = scim_session()
    user_name = new_user_name()
    user_id = create_user(session, through.url, user_name).json()["id"]
    assert not any(method == "DELETE" for method, _ in through.stats().requests)

    deleted = session.delete(f"{through.url}/v2/Users/{user_id}", timeout=10)

    assert deleted.status_code == 204
    assert ("DELETE", f"/v2/Users/{user_id}") in through.stats().requests
    assert users_named(upstream, user_name) == []


def test_answers_502_when_the_upstream_is_unreachable():
    with HttpProxy(f"http://127.0.0.1:{free_port()}") as through:
        response = scim_session().get(f"{through.url}/v2/Users", timeout=10)
        stats = through.stats()
    assert response.status_code == 502
    assert response.headers["Content-Type"] == SCIM_JSON
    assert response.json()["schemas"] == [ERROR] and response.json()["status"] == "502"
    assert (stats.received, stats.forwarded, stats.upstream_failures) == (1, 0, 1)


def test_answers_502_when_the_upstream_outlasts_its_timeout():
    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        upstream = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with HttpProxy(upstream, upstream_timeout=0.3) as through:
            begun = time.monotonic()
            response = scim_session().get(f"{through.url}/v2/Users", timeout=10)
            waited = time.monotonic() - begun
            stats = through.stats()
    assert response.status_code == 502 and "did not answer" in response.json()["detail"]
    assert 0.3 <= waited < 5
    assert stats.upstream_failures == 1


def test_keeps_the_client_connection_alive(proxy):
    through = proxy()
    connection = http.client.HTTPConnection(urlsplit(through.url).netloc, timeout=10)
    answers, sockets = [], []
    try:
        for _ in range(3):
            connection.request("GET", "/v2/ServiceProviderConfig", headers=scim_session().headers)
            response = connection.getresponse()
            response.read()
            answers.append((response.status, response.will_close))
            sockets.append(connection.sock)
    finally:
        connection.close()
    assert answers == [(200, False)] * 3
    assert sockets[0] is not None and sockets == [sockets[0]] * 3


def test_stops_promptly_with_a_kept_alive_client(proxy):
    through = proxy()
    session = scim_session()
    url = f"{through.url}/v2/ServiceProviderConfig"
    assert session.get(url, timeout=10).ok
    begun = time.monotonic()
    through.stop()
    assert time.monotonic() - begun < 1.0
    with pytest.raises(requests.ConnectionError):
        session.get(url, timeout=2)


# --- latency and faults ------------------------------------------------------------------


def test_latency_delays_every_response(proxy):
    through = proxy(latency=0.1)
    session = scim_session()
    for _ in range(2):
        begun = time.monotonic()
        response = session.get(f"{through.url}/v2/ServiceProviderConfig", timeout=10)
        assert response.status_code == 200
        assert time.monotonic() - begun >= 0.1


def test_counts_the_most_requests_held_at_once(proxy):
    through = proxy(latency=0.5)
    url = f"{through.url}/v2/ServiceProviderConfig"
    threads = [
        threading.Thread(target=lambda: scim_session().get(url, timeout=10)) for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    scim_session().get(url, timeout=10)  # alone: the most stays what it was

    stats = through.stats()
    assert stats.received == 4 and stats.most_in_flight == 3
    assert stats.as_json()["most_in_flight"] == 3


def test_429_carries_retry_after_and_is_not_forwarded(proxy, upstream):
    through = proxy(faults=always(FaultKind.TOO_MANY_REQUESTS, retry_after=7))
    user_name = new_user_name()

    response = create_user(scim_session(), through.url, user_name)

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert response.headers["Content-Type"] == SCIM_JSON
    assert response.json()["schemas"] == [ERROR] and response.json()["status"] == "429"
    assert users_named(upstream, user_name) == []
    stats = through.stats()
    assert stats.faults[FaultKind.TOO_MANY_REQUESTS] == 1 and stats.forwarded == 0


def test_503_is_not_forwarded(proxy, upstream):
    through = proxy(faults=always(FaultKind.SERVICE_UNAVAILABLE))
    user_name = new_user_name()

    response = create_user(scim_session(), through.url, user_name)

    assert response.status_code == 503
    assert response.json()["schemas"] == [ERROR] and response.json()["status"] == "503"
    assert users_named(upstream, user_name) == []
    assert through.stats().faults[FaultKind.SERVICE_UNAVAILABLE] == 1


def test_drop_applies_the_request_but_never_answers(proxy, upstream):
    through = proxy(faults=always(FaultKind.DROP))
    user_name = new_user_name()

    with pytest.raises(requests.ConnectionError):
        create_user(scim_session(), through.url, user_name)

    assert [u["userName"] for u in users_named(upstream, user_name)] == [user_name]
    stats = through.stats()
    assert stats.faults[FaultKind.DROP] == 1 and stats.forwarded == 1


def test_slow_applies_the_request_but_outlasts_a_short_timeout(proxy, upstream):
    through = proxy(faults=always(FaultKind.SLOW, slow_seconds=1.0))
    session = scim_session()
    user_name = new_user_name()

    with pytest.raises(requests.Timeout):
        create_user(session, through.url, user_name, timeout=0.3)
    assert [u["userName"] for u in eventually_named(upstream, user_name)] == [user_name]

    begun = time.monotonic()
    patient = create_user(session, through.url, new_user_name(), timeout=10)
    assert patient.status_code == 201 and time.monotonic() - begun >= 1.0
    assert through.stats().faults[FaultKind.SLOW] == 2


def fault_statuses(proxy, seed: int) -> list[int]:
    faults = Faults(
        rate=0.5,
        kinds=(FaultKind.TOO_MANY_REQUESTS, FaultKind.SERVICE_UNAVAILABLE),
        retry_after=0,
        seed=seed,
    )
    through = proxy(faults=faults)
    session = scim_session()
    url = f"{through.url}/v2/ServiceProviderConfig"
    return [session.get(url, timeout=10).status_code for _ in range(24)]


def test_the_same_seed_replays_the_same_faults(proxy):
    first = fault_statuses(proxy, seed=42)

    assert fault_statuses(proxy, seed=42) == first
    assert set(first) == {200, 429, 503}
    assert fault_statuses(proxy, seed=7) != first


def test_no_faults_at_rate_zero(proxy):
    through = proxy(faults=Faults(rate=0.0))
    session = scim_session()
    url = f"{through.url}/v2/ServiceProviderConfig"
    assert {session.get(url, timeout=10).status_code for _ in range(10)} == {200}


def test_rejects_a_bad_configuration():
    with pytest.raises(ValueError, match="between 0 and 1"):
        Faults(rate=1.5)
    with pytest.raises(ValueError, match="unknown fault kind 'teapot'"):
        Faults(rate=0.5, kinds=("teapot",))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="http:// or https://"):
        HttpProxy("ftp://127.0.0.1/")
    assert Faults(kinds=("429", "drop")).kinds == (  # type: ignore[arg-type]
        FaultKind.TOO_MANY_REQUESTS,
        FaultKind.DROP,
    )


# --- command line ------------------------------------------------------------------------


def read_line(process: subprocess.Popen, seconds: float = 20) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], seconds)
    assert ready, "the proxy printed nothing"
    return process.stdout.readline()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_it_runs_on_its_own(upstream, stop_signal, tmp_path):
    stats = tmp_path / "stats.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "komeet_sync.emulators.http_proxy", "--upstream", upstream,
         "--latency", "0.01", "--fault-rate", "0", "--faults", "429,drop", "--seed", "3",
         "--stats", str(stats)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        line = read_line(process)
        expected = rf"Proxying (http://127\.0\.0\.1:\d+) -> {re.escape(upstream)}\n"
        started = re.fullmatch(expected, line)
        assert started, line
        response = create_user(scim_session(), started[1], new_user_name())
        assert response.status_code == 201
    finally:
        process.send_signal(stop_signal)
        out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert out == "" and err == ""
    seen = json.loads(stats.read_text())
    assert seen["received"] == seen["forwarded"] == 1 and seen["most_in_flight"] == 1
    assert seen["requests"] == [["POST", "/v2/Users"]]
    assert seen["faults"] == {"429": 0, "503": 0, "slow": 0, "drop": 0}


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        (["--upstream", "http://127.0.0.1:9", "--fault-rate", "2"], "not between 0 and 1"),
        (["--upstream", "http://127.0.0.1:9", "--faults", "429,teapot"], "'teapot'"),
        (["--upstream", "127.0.0.1:9"], "not an http:// or https:// URL"),
        (["--upstream", "http://127.0.0.1:9", "--latency", "-1"], "negative"),
        (["--upstream", "http://127.0.0.1:9", "--upstream-timeout", "0"], "not above 0"),
        ([], "--upstream"),
    ],
)
def test_it_refuses_bad_arguments(arguments, complaint):
    result = subprocess.run(
        [sys.executable, "-m", "komeet_sync.emulators.http_proxy", *arguments],
        capture_output=True, text=True, cwd=ROOT, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2 and result.stdout == ""
    assert "usage:" in result.stderr and complaint in result.stderr
    assert "Traceback" not in result.stderr
