"""SCIM domains from the command line: their URL and secret, rotating the secret, serving
the endpoint, and a dry run from the staging tables."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from komeet_sync.sources.exports import unpack
from tests.support import EXAMPLES
from tests.support.scim_server import GROUP, USER

GLOBEX = EXAMPLES / "globex"


def add_scim_domain(cli, *options) -> dict:
    code, out, err = cli("domains", "add", "globex.com", "--source", "scim", *options, "--json")
    assert code == 0, err
    return json.loads(out)


def test_adding_a_scim_domain_prints_its_url_and_secret_once(cli, komeet_env, monkeypatch):
    monkeypatch.setenv("KOMEET_SYNC_PUBLIC_URL", "https://sync.komeet.example/")

    created = add_scim_domain(cli)

    assert created["domain"] == "globex.com"
    assert created["scim_url"] == "https://sync.komeet.example/scim/globex.com/v2"
    assert len(created["secret"]) >= 43  # 256 bits, URL-safe base64
    code, shown, _ = cli("domains", "show", "globex.com", "--json")
    assert code == 0 and created["secret"] not in shown
    with (
        open(komeet_env.removeprefix("sqlite:///"), "rb")
        if komeet_env.startswith("sqlite")
        else open(os.devnull, "rb") as database
    ):
        assert created["secret"].encode() not in database.read()


def test_the_text_output_says_where_to_enter_them(cli, komeet_env):
    code, out, _ = cli("domains", "add", "globex.com", "--source", "scim")

    assert code == 0
    assert "SCIM URL:   http://127.0.0.1:8000/scim/globex.com/v2" in out
    assert "Secret key: " in out and "shown only now" in out


def answers(scim, secret: str) -> int:
    with scim.client("globex.com", secret=secret) as client:
        return client.get("/Users").status_code


def test_rotating_the_secret_with_no_overlap_retires_the_former_one(cli, komeet_env, scim):
    former = add_scim_domain(cli)["secret"]

    code, out, _ = cli("scim", "rotate-secret", "globex.com", "--overlap", "0", "--json")

    assert code == 0
    current = json.loads(out)["secret"]
    assert current != former
    assert answers(scim, former) == 401 and answers(scim, current) == 200
    assert cli.json("status")[0]["former_secret_until"] is None


def test_the_former_secret_works_until_the_overlap_ends(cli, komeet_env, scim):
    first = add_scim_domain(cli)["secret"]

    code, out, _ = cli("scim", "rotate-secret", "globex.com")  # the default: 24 hours

    assert code == 0
    second = re.search(r"Secret key: (\S+)", out)[1]
    until = re.search(r"the former one works until (\S+ \S+) UTC, then is refused", out)[1]
    assert answers(scim, first) == 200 and answers(scim, second) == 200
    assert answers(scim, first[:-1] + ("A" if first[-1] != "A" else "B")) == 401
    code, shown, _ = cli("status")
    assert f"globex.com: the former SCIM secret still works until {until[:16]} UTC" in shown
    assert cli.json("status")[0]["former_secret_until"].startswith(until.replace(" ", "T"))

    code, out, _ = cli("scim", "rotate-secret", "globex.com", "--overlap", "2s", "--json")
    third = json.loads(out)["secret"]
    # A second rotation: the first secret stops at once, the second works two seconds more.
    assert answers(scim, first) == 401
    assert answers(scim, second) == 200 and answers(scim, third) == 200
    time.sleep(2.5)
    assert answers(scim, second) == 401 and answers(scim, third) == 200
    assert cli.json("status")[0]["former_secret_until"] is None
    assert "former SCIM secret" not in cli("status")[1]


@pytest.mark.parametrize("overlap", ["31d", "-1h", "soon", "5", ""])
def test_an_overlap_that_is_not_a_duration_is_refused_before_any_rotation(
    cli, komeet_env, scim, overlap
):
    secret = add_scim_domain(cli)["secret"]

    code, _, err = cli("scim", "rotate-secret", "globex.com", f"--overlap={overlap}")

    assert code == 1  # as every mistake
    assert f"{overlap!r} is not a duration of 0 to 30 days" in err
    assert answers(scim, secret) == 200


def test_a_google_domain_has_no_secret(cli, komeet_env):
    cli("domains", "add", "acme.com", "--source", "google", "--admin-email", "a@acme.com",
        "--group", "all@acme.com")  # fmt: skip

    code, _, err = cli("scim", "rotate-secret", "acme.com")

    assert code == 1 and "no SCIM URL or secret" in err


def test_dry_run_reads_what_the_idp_pushed(cli, komeet_env, scim, tmp_path):
    secret = add_scim_domain(cli, "--group", "Komeet Users")["secret"]
    users, groups = (
        unpack(json.loads((GLOBEX / name).read_text()), GLOBEX / name, "Resources", "SCIM")
        for name in ("scim_users.json", "scim_groups.json")
    )
    ids = {}
    with scim.client("globex.com", secret=secret) as client:
        for user in users:
            response = client.post("/Users", json={k: v for k, v in user.items() if k != "id"})
            if response.status_code == 201:
                ids[user["id"]] = response.json()["id"]
            else:  # eva.hoffmann@partner.example is not in globex.com
                assert response.status_code == 400, response.text
                assert response.json()["scimType"] == "invalidValue"
        for group in reversed(groups):  # the nested group first
            members = [{"value": ids[m["value"]]} for m in group["members"] if m["value"] in ids]
            response = client.post(
                "/Groups",
                json={"schemas": [GROUP], "displayName": group["displayName"], "members": members},
            )
            ids[group["id"]] = response.json()["id"]
        client.patch(
            f"/Groups/{ids['grp-1']}",
            json={
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [
                    {"op": "add", "path": "members", "value": [{"value": ids["grp-2"]}]}
                ],
            },
        )
        assert client.delete(f"/Users/{ids['stg-1']}").status_code == 204

    code, out, err = cli(
        "sync", "globex.com", "--dry-run", "--komeet", GLOBEX / "komeet_users.json",
        "--out", tmp_path / "out",
    )  # fmt: skip

    assert code in (0, 3), err
    assert "Read globex.com from the SCIM staging tables: 4 users (2 inactive or deleted)" in out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["snapshot"]["source"] == "scim"
    leavers = (tmp_path / "out" / "leavers.csv").read_text()
    assert "anna.schmidt@globex.com" in leavers and "deleted in the IdP" in leavers
    joiners = (tmp_path / "out" / "joiners.csv").read_text()
    assert (
        "dirk.becker@globex.com" in joiners
        or "dirk.becker@globex.com"
        in (tmp_path / "out" / "updates.csv").read_text()
        + (tmp_path / "out" / "plan.csv").read_text()
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_scim_serve_runs_until_interrupted(cli, komeet_env, tmp_path):
    secret = add_scim_domain(cli)["secret"]
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "komeet_sync", "scim", "serve", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy(),
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/scim/globex.com/v2/Users"
        headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/scim+json"}
        deadline = time.monotonic() + 120  # a loaded machine takes its time to start it
        while True:
            try:
                response = httpx.post(
                    url, json={"schemas": [USER], "userName": "ana@globex.com"}, headers=headers
                )
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "scim serve did not answer in 120 s"
                time.sleep(0.1)
        assert response.status_code == 201
    finally:
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=20)
    assert server.returncode == 0, err
    assert f"Serving SCIM on http://127.0.0.1:{port}/scim/DOMAIN/v2" in out
    assert "50 requests/s a domain unless" in out
    assert out.rstrip().endswith("Stopped.") and "Traceback" not in err


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_scim_serve_refuses_a_default_rate_limit_that_is_no_number(cli, komeet_env, monkeypatch):
    monkeypatch.setenv("KOMEET_SYNC_SCIM_RATE_LIMIT", "0")
    code, out, err = cli("scim", "serve", "--port", "0")
    assert code == 1 and not out and err.count("\n") == 1
    assert "KOMEET_SYNC_SCIM_RATE_LIMIT='0' is not a number of requests a second" in err


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_scim_serve_says_when_the_port_is_taken(cli, komeet_env):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = cli("scim", "serve", "--port", str(port))
    assert code == 1 and f"cannot listen on 127.0.0.1:{port}" in err


def test_a_result_store_that_cannot_be_written_is_named_in_one_line(
    cli, komeet_env, monkeypatch, tmp_path
):
    add_scim_domain(cli)
    monkeypatch.setenv("KOMEET_SYNC_RESULTS", str(tmp_path / "a-file"))
    (tmp_path / "a-file").write_text("not a folder")

    code, out, err = cli(
        "sync", "globex.com", "--dry-run", "--komeet", GLOBEX / "komeet_users.json"
    )

    assert code == 1 and out == ""
    assert f"cannot store the sync of globex.com in {tmp_path / 'a-file'}" in err
    assert "KOMEET_SYNC_RESULTS" in err and "Traceback" not in err


def first_line(stream, seconds: float = 120) -> str:
    """The first line a process writes to ``stream``, or "" if none comes in time."""
    import selectors

    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        if not selector.select(timeout=seconds):
            return ""
    return stream.readline()


def test_scim_serve_json_says_where_and_logs_one_line_per_request(cli, komeet_env):
    secret = add_scim_domain(cli)["secret"]
    server = subprocess.Popen(
        [sys.executable, "-m", "komeet_sync", "scim", "serve", "--port", "0", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy(),
    )  # fmt: skip
    try:
        where = json.loads(first_line(server.stdout))
        port = where["port"]
        assert port > 0 and where["url"] == f"http://127.0.0.1:{port}"
        assert where["host"] == "127.0.0.1"
        users = f"{where['url']}/scim/globex.com/v2/Users"
        good = {"Authorization": f"Bearer {secret}", "Content-Type": "application/scim+json"}
        bad = {**good, "Authorization": "Bearer wrong-secret-0123456789"}
        created = httpx.post(
            f"{users}?token={secret}",  # a secret in a query string is not printed either
            json={"schemas": [USER], "userName": "ana@globex.com", "password": "hunter2-pw"},
            headers=good,
        )
        refused = httpx.get(users, headers=bad)
        too_large = httpx.post(users, content=b"x" * ((1 << 20) + 1), headers=good)
        # An escape sequence in the path is printed escaped: it cannot write to the terminal.
        unknown = httpx.get(f"{where['url']}/elsewhere%1B%5B31m", headers=good)
        assert [r.status_code for r in (created, refused, too_large, unknown)] == [
            201,
            401,
            413,
            404,
        ]
    finally:
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=20)
    assert server.returncode == 0, err
    assert out == ""  # the JSON line, read above, is all of stdout
    lines = err.splitlines()
    assert len(lines) == 4, err
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
    for text, (method, path, domain, status) in zip(
        lines,
        [
            ("POST", "/scim/globex.com/v2/Users", "globex.com", 201),
            ("GET", "/scim/globex.com/v2/Users", "globex.com", 401),
            ("POST", "/scim/globex.com/v2/Users", "globex.com", 413),
            ("GET", "/elsewhere%1B[31m", "-", 404),
        ],
        strict=True,
    ):
        expected = rf"^{stamp} {method} {re.escape(path)} {re.escape(domain)} {status} \d+ ms$"
        assert re.match(expected, text), text
    for secret_text in (secret, "wrong-secret", "hunter2", "token=", "ana@globex.com", "\x1b"):
        assert secret_text not in err


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("workers", ["0", "65", "two", "-1"])
def test_scim_serve_refuses_workers_outside_1_to_64(cli, komeet_env, workers):
    code, out, err = cli("scim", "serve", "--port", "0", "--workers", workers)
    assert code == 1 and not out and err.count("\n") == 1
    assert f"argument --workers: {workers!r} is not a number of processes from 1 to 64" in err


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_scim_serve_help_says_what_workers_share(cli, komeet_env):
    code, out, _ = cli("scim", "serve", "--help")
    assert code == 0
    assert "--workers N" in out and "1 to 64" in out
    assert "count a domain's rate limit together" in " ".join(out.split())


def test_scim_serve_from_two_processes_says_so_and_stops(cli, komeet_env):
    secret = add_scim_domain(cli)["secret"]
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "komeet_sync", "scim", "serve", "--port", str(port),
         "--workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy(),
    )  # fmt: skip
    try:
        serving = first_line(server.stdout, 180)
        users = f"http://127.0.0.1:{port}/scim/globex.com/v2/Users"
        created = httpx.post(
            users,
            json={"schemas": [USER], "userName": "ana@globex.com"},
            headers={"Authorization": f"Bearer {secret}"},
        )
        assert created.status_code == 201
    finally:
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=60)
    assert server.returncode == 0, err
    assert serving.startswith(
        f"Serving SCIM on http://127.0.0.1:{port}/scim/DOMAIN/v2 from 2 processes"
    )
    assert out.strip() == "Stopped." and "Traceback" not in err
    assert re.fullmatch(
        r"\S+Z POST /scim/globex.com/v2/Users globex.com 201 \d+ ms pid \d+\n", err
    ), err
