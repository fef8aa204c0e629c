"""``komeet-sync scim serve --workers N``: N processes on one socket (``serving``), each
reached by real requests on loopback, on a real database; the processes are found in /proc
and each request's line names the process that answered it."""

from __future__ import annotations

import os
import select
import signal
import threading
import time

import httpx
import pytest

from tests.support.scim_processes import ServedProcesses
from tests.support.scim_server import USER

POSTGRES = pytest.param("postgresql", marks=pytest.mark.postgres)


def add_domain(cli) -> str:
    return cli.json("domains", "add", "globex.com", "--source", "scim")["secret"]


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}", "Content-Type": "application/scim+json"}


def users(secret: str):
    return lambda client: client.get("/scim/globex.com/v2/Users", headers=bearer(secret))


@pytest.fixture
def served():
    started: list[ServedProcesses] = []

    def start(workers: int, *options: str) -> ServedProcesses:
        started.append(ServedProcesses(workers, *options))
        return started[-1]

    yield start
    for server in started:
        server.stop()


def create_at_once(url: str, secret: str, user_name: str, clients: int) -> list[int]:
    """POST one userName from ``clients`` threads at once, each on a new connection."""
    gate = threading.Barrier(clients)
    statuses: list[int] = []

    def create() -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            client.get("/")  # connected (404) before the gate opens
            gate.wait()
            body = {"schemas": [USER], "userName": user_name}
            answer = client.post("/scim/globex.com/v2/Users", json=body, headers=bearer(secret))
            statuses.append(answer.status_code)

    threads = [threading.Thread(target=create) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


@pytest.mark.parametrize("database_url", ["sqlite", POSTGRES], indirect=True)
def test_one_user_name_posted_at_once_to_every_process_is_created_once(cli, komeet_env, served):
    secret = add_domain(cli)
    server = served(4)
    answering: set[int] = set()
    for round_ in range(5):
        since = len(server.lines)
        statuses = create_at_once(server.url, secret, f"ana{round_}@globex.com", 12)
        assert sorted(statuses) == [201] + [409] * 11
        server.wait_for(lambda since=since: len(server.answered(since)) >= 24)
        creations = [(s, pid) for s, pid in server.answered(since) if s in (201, 409)]
        answering |= {pid for _, pid in creations}
    assert len(answering) >= 2, "the creations all reached one process: nothing was tested"
    assert answering <= server.pids()
    found = httpx.get(
        f"{server.url}/scim/globex.com/v2/Users", headers=bearer(secret), timeout=30
    ).json()
    assert sorted(u["userName"] for u in found["Resources"]) == [
        f"ana{n}@globex.com" for n in range(5)
    ]


@pytest.mark.parametrize("database_url", [POSTGRES], indirect=True)
def test_rotation_disabling_and_rate_limits_reach_every_process(
    cli, komeet_env, served, monkeypatch
):
    monkeypatch.setenv("KOMEET_SYNC_SCIM_RATE_LIMIT", "10000")  # until the domain has its own
    former = add_domain(cli)
    server = served(3)
    assert set(server.send_until_each_answered(users(former))) == {200}

    current = cli.json("scim", "rotate-secret", "globex.com", "--overlap", "0")["secret"]
    assert set(server.send_until_each_answered(users(former))) == {401}
    assert set(server.send_until_each_answered(users(current))) == {200}

    code, _, err = cli("domains", "disable", "globex.com")
    assert code == 0, err
    assert set(server.send_until_each_answered(users(current))) == {403}
    code, _, err = cli("domains", "enable", "globex.com")
    assert code == 0, err
    assert set(server.send_until_each_answered(users(current))) == {200}

    code, _, err = cli("domains", "set", "globex.com", "--scim-rate-limit", "1")
    assert code == 0, err
    # Each process reads the new limit with a request taken by the former one: requests
    # already in flight in it then pass by the former limit too. Once each has refused one,
    # all count by the new limit; two seconds later the bucket is full again.
    server.send_until_each_answered(users(current), status=429)
    time.sleep(2)
    since, started = len(server.lines), time.monotonic()
    limited = server.send_until_each_answered(users(current), status=429)
    seconds = time.monotonic() - started
    refused = {pid for status, pid in server.answered(since) if status == 429}
    assert refused == server.pids()
    # One bucket for the 3 processes: a burst of 2, then 1 a second. Had each process
    # counted its own, each would have let 2 through before refusing: 6 at least.
    assert set(limited) == {200, 429}
    assert limited.count(200) <= 2 + seconds + 1


@pytest.mark.parametrize("database_url", [POSTGRES], indirect=True)
def test_a_killed_process_is_replaced_and_the_others_keep_answering(cli, komeet_env, served):
    secret = add_domain(cli)
    server = served(2)
    before = server.pids()
    assert len(before) == 2
    killed = min(before)
    os.kill(killed, signal.SIGKILL)
    server.wait_for(lambda: any("replaces it" in line for line in server.lines))
    told = [line for line in server.lines if "replaces it" in line]
    assert len(told) == 1 and told[0].startswith(
        f"SCIM endpoint process {killed} was killed (SIGKILL); process "
    )
    # Answered meanwhile by the other process, then by both.
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert users(secret)(client).status_code == 200
    assert set(server.send_until_each_answered(users(secret))) == {200}
    after = server.pids()
    assert len(after) == 2 and killed not in after and after & before
    code, _ = server.stop()
    assert code == 0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_ctrl_c_and_sigterm_stop_every_process(cli, komeet_env, served, how):
    add_domain(cli)
    server = served(2)
    pids = server.pids()
    assert len(pids) == 2
    if how == "ctrl-c":  # a terminal sends SIGINT to each process of its group
        code, _ = server.stop(signal.SIGINT, group=True)
    else:
        code, _ = server.stop(signal.SIGTERM)
    assert code == 0, server.lines
    assert all(ended_within(pid, 0) for pid in pids)
    assert not [line for line in server.lines if "Traceback" in line or "replaces" in line]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_processes_stop_when_their_parent_is_killed(cli, komeet_env, served):
    add_domain(cli)
    server = served(2)
    pids = server.pids()
    assert len(pids) == 2
    os.kill(server.server.pid, signal.SIGKILL)
    server.server.wait(30)
    for pid in pids:
        assert ended_within(pid, 30), f"process {pid} still serves after its parent died"


def ended_within(pid: int, seconds: float) -> bool:
    """Whether process ``pid`` (not a child of this one) ends within ``seconds``."""
    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([handle], [], [], seconds)[0])
    finally:
        os.close(handle)
