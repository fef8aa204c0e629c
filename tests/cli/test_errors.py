"""Bad environment values and services out of reach, met as an operator meets them: the
`komeet-sync` command, which must exit 1 with one line on stderr naming the variable, its
value and what to do, and never a traceback (once through the console script itself)."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from komeet_sync.cli import main
from tests.support import EXAMPLES
from tests.support.console import error_lines

KOMEET_SYNC = Path(sys.executable).parent / "komeet-sync"
KOMEET_EXPORT = EXAMPLES / "acme" / "komeet_users.json"
SUPPORTED = ("SQLite", "postgresql+psycopg://")
# The variables a test sets: none leaks in from the shell that runs the tests.
VARIABLES = (
    "KOMEET_SYNC_HOME",
    "KOMEET_SYNC_DATABASE_URL",
    "KOMEET_SYNC_RESULTS",
    "KOMEET_SYNC_PUBLIC_URL",
    "KOMEET_SCIM_URL",
    "KOMEET_SCIM_TOKEN",
    "KOMEET_SYNC_KOMEET_TIMEOUT",
    "KOMEET_SYNC_KOMEET_ATTEMPTS",
    "KOMEET_SYNC_KOMEET_BACKOFF",
    "GOOGLE_SERVICE_ACCOUNT_FILE",
    "GOOGLE_DIRECTORY_API_ENDPOINT",
    "KOMEET_SYNC_GOOGLE_ATTEMPTS",
    "KOMEET_SYNC_GOOGLE_BACKOFF",
)


def komeet_sync(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``komeet-sync ARGS`` with only ``env`` of komeet-sync's variables set, run in this
    process (a subprocess per case cost a minute of CI; ``test_the_console_script_...``
    runs the script itself). Any exception escaping ``main`` is a traceback the user
    would have seen, and fails the test."""
    saved = dict(os.environ)
    out, err = io.StringIO(), io.StringIO()
    try:
        for name in VARIABLES:
            os.environ.pop(name, None)
        os.environ.update(env)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def console_script(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The console script in a process of its own, as an operator runs it."""
    environment = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    return subprocess.run(
        [str(KOMEET_SYNC), *args],
        env=environment | env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_console_script_prints_one_line_and_no_traceback(tmp_path):
    result = console_script(
        "domains", "list", KOMEET_SYNC_HOME=str(tmp_path), KOMEET_SYNC_DATABASE_URL="garbage://x"
    )
    one_line(result, "KOMEET_SYNC_DATABASE_URL='garbage://x'", *SUPPORTED)


def one_line(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """The one line of an error, checked: exit 1, no traceback, each fragment in it."""
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    [line] = lines
    assert line.startswith("komeet-sync: "), line
    for fragment in fragments:
        assert fragment in line, line
    return line


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never answers."""
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listening.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listening.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listening.getsockname()[1]
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listening.close()


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> str:
    """A state folder with a SCIM domain (acme.com) and a Google one (globex.com)."""
    folder = str(tmp_path_factory.mktemp("state"))
    for args in (
        ("domains", "add", "acme.com", "--source", "scim"),
        ("domains", "add", "globex.com", "--source", "google", "--group", "all@globex.com",
         "--admin-email", "admin@globex.com"),
    ):  # fmt: skip
        result = komeet_sync(*args, KOMEET_SYNC_HOME=folder)
        assert result.returncode == 0, result.stderr
    return folder


# KOMEET_SYNC_HOME ------------------------------------------------------------------------


def test_a_home_that_is_a_file(tmp_path):
    (tmp_path / "state").write_text("a file")
    one_line(
        komeet_sync("domains", "list", KOMEET_SYNC_HOME=str(tmp_path / "state")),
        f"KOMEET_SYNC_HOME (now '{tmp_path / 'state'}')",
        "is a file, not a folder",
        "set KOMEET_SYNC_HOME to a folder this process may create and write",
    )


def test_a_home_under_a_file(tmp_path):
    (tmp_path / "state").write_text("a file")
    home = tmp_path / "state" / "komeet"
    one_line(
        komeet_sync("domains", "list", KOMEET_SYNC_HOME=str(home)),
        f"KOMEET_SYNC_HOME (now '{home}')",
        "is under a file, not a folder",
        "set KOMEET_SYNC_HOME to a folder",
    )


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_a_home_where_nothing_can_be_made():
    one_line(
        komeet_sync("domains", "list", KOMEET_SYNC_HOME="/proc/komeet-sync"),
        "KOMEET_SYNC_HOME (now '/proc/komeet-sync')",
        "cannot be made",
        "set KOMEET_SYNC_HOME to a folder",
    )


# KOMEET_SYNC_DATABASE_URL ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown", "says"),
    [
        ("garbage://x", "'garbage://x'", "names a database komeet-sync does not support"),
        ("not a url", "'not a url'", "is not a database URL"),
        ("mysql://u:secret@db.example/komeet", "'mysql://u:***@db.example/komeet'", "support"),
        (
            "postgresql://u:secret@db.example:port/k",
            "'postgresql://u:***@db.example:port/k'",
            "is not a database URL",
        ),
        ("sqlite+aiosqlite:///k.db", "'sqlite+aiosqlite:///k.db'", "does not support"),
    ],
)
def test_a_database_url_that_is_not_supported(tmp_path, url, shown, says):
    result = komeet_sync(
        "domains", "list", KOMEET_SYNC_HOME=str(tmp_path), KOMEET_SYNC_DATABASE_URL=url
    )
    line = one_line(result, f"KOMEET_SYNC_DATABASE_URL={shown}", says, *SUPPORTED)
    assert "secret" not in line


def test_a_postgresql_server_out_of_reach(tmp_path):
    url = f"postgresql://komeet:secret@127.0.0.1:{closed_port()}/komeet"
    result = komeet_sync(
        "domains", "list", KOMEET_SYNC_HOME=str(tmp_path), KOMEET_SYNC_DATABASE_URL=url
    )
    line = one_line(
        result,
        "cannot open the database KOMEET_SYNC_DATABASE_URL='postgresql://komeet:***@127.0.0.1",
        "Connection refused",
        "check that the server runs and this machine reaches it",
    )
    assert "secret" not in line


def test_a_sqlite_file_that_is_not_a_database(tmp_path):
    (tmp_path / "notes.db").write_text("meeting notes, not a database " * 10)
    url = f"sqlite:///{tmp_path / 'notes.db'}"
    one_line(
        komeet_sync(
            "domains", "list", KOMEET_SYNC_HOME=str(tmp_path), KOMEET_SYNC_DATABASE_URL=url
        ),
        f"KOMEET_SYNC_DATABASE_URL='{url}'",
        "file is not a database",
        "give the path of a komeet-sync database",
    )


# KOMEET_SYNC_PUBLIC_URL ------------------------------------------------------------------

BAD_PUBLIC_URLS = ["not a url", "ftp://sync.example.com", "http://[::1", "sync.example.com"]


@pytest.mark.parametrize("value", BAD_PUBLIC_URLS)
def test_a_public_url_that_is_not_one_adds_no_domain(tmp_path, value):
    result = komeet_sync(
        "domains", "add", "acme.com", "--source", "scim",
        KOMEET_SYNC_HOME=str(tmp_path), KOMEET_SYNC_PUBLIC_URL=value,
    )  # fmt: skip
    one_line(
        result,
        f"KOMEET_SYNC_PUBLIC_URL={value!r} is not an absolute http(s) URL",
        "like https://sync.example.com",
    )
    assert result.stdout == ""  # no secret shown for a domain that was not kept
    listed = komeet_sync("domains", "list", "--json", KOMEET_SYNC_HOME=str(tmp_path))
    assert json.loads(listed.stdout) == []


def test_a_public_url_that_is_not_one_keeps_the_secret_and_the_endpoint_down(home):
    for args in (("scim", "rotate-secret", "acme.com"), ("scim", "serve", "--port", "0")):
        result = komeet_sync(*args, KOMEET_SYNC_HOME=home, KOMEET_SYNC_PUBLIC_URL="not a url")
        one_line(result, "KOMEET_SYNC_PUBLIC_URL='not a url' is not an absolute http(s) URL")
        assert result.stdout == ""


# KOMEET_SYNC_RESULTS ---------------------------------------------------------------------


def dry_run(home: str, **env: str) -> subprocess.CompletedProcess[str]:
    return komeet_sync(
        "sync", "acme.com", "--dry-run", "--komeet", str(KOMEET_EXPORT),
        KOMEET_SYNC_HOME=home, **env,
    )  # fmt: skip


def test_a_result_store_of_an_unknown_kind(home):
    one_line(
        dry_run(home, KOMEET_SYNC_RESULTS="garbage://results"),
        "cannot store results in 'garbage://results'",
        "set KOMEET_SYNC_RESULTS to a folder, or an fsspec URL such as s3://bucket/komeet",
    )


@pytest.mark.skipif(importlib.util.find_spec("s3fs") is not None, reason="s3fs is installed")
def test_a_result_store_whose_package_is_missing(home):
    one_line(
        dry_run(home, KOMEET_SYNC_RESULTS="s3://bucket/komeet"),
        "cannot store results in 's3://bucket/komeet': Install s3fs",
        "install it beside komeet-sync, or set KOMEET_SYNC_RESULTS to a folder",
    )


def test_results_under_a_home_that_is_a_file(tmp_path, home):
    (tmp_path / "a-file").write_text("not a folder")
    # the database elsewhere: only the results go to KOMEET_SYNC_HOME
    url = f"sqlite:///{Path(home) / 'komeet_sync.db'}"
    result = komeet_sync(
        "sync", "acme.com", "--dry-run", "--komeet", str(KOMEET_EXPORT),
        KOMEET_SYNC_HOME=str(tmp_path / "a-file"), KOMEET_SYNC_DATABASE_URL=url,
    )  # fmt: skip
    one_line(
        result,
        "cannot store the sync of acme.com",
        f"set KOMEET_SYNC_HOME (now '{tmp_path / 'a-file'}') or KOMEET_SYNC_RESULTS to a folder",
    )


# Komeet: KOMEET_SCIM_URL, KOMEET_SCIM_TOKEN and the retries ------------------------------


@pytest.mark.parametrize(
    ("env", "says"),
    [
        (
            {"KOMEET_SCIM_URL": "http://[::1/scim/v2"},
            "KOMEET_SCIM_URL='http://[::1/scim/v2' is not an http(s) URL",
        ),
        ({"KOMEET_SCIM_TOKEN": ""}, "KOMEET_SCIM_TOKEN is not set"),
        (
            {"KOMEET_SCIM_TOKEN": "secret\nsecret"},
            "KOMEET_SCIM_TOKEN holds a space, a line break or a character outside ASCII",
        ),
        (
            {"KOMEET_SYNC_KOMEET_TIMEOUT": "soon"},
            "KOMEET_SYNC_KOMEET_TIMEOUT='soon' is not a number of seconds above 0",
        ),
        (
            {"KOMEET_SYNC_KOMEET_TIMEOUT": "nan"},
            "KOMEET_SYNC_KOMEET_TIMEOUT='nan' is not a number of seconds above 0",
        ),
        (
            {"KOMEET_SYNC_KOMEET_ATTEMPTS": "many"},
            "KOMEET_SYNC_KOMEET_ATTEMPTS='many' is not a whole number from 1",
        ),
        ({"KOMEET_SYNC_KOMEET_BACKOFF": "-1"}, "give at least 1 attempt and a wait of 0"),
    ],
)
def test_komeet_settings_that_cannot_work(home, env, says):
    working = {"KOMEET_SCIM_URL": "http://127.0.0.1:9/v2", "KOMEET_SCIM_TOKEN": "secret"}
    line = one_line(komeet_sync("sync", "acme.com", KOMEET_SYNC_HOME=home, **working | env), says)
    assert "secret" not in line  # a token is never shown


def komeet_at(home: str, url: str, **env: str) -> subprocess.CompletedProcess[str]:
    return komeet_sync(
        "sync", "acme.com", KOMEET_SYNC_HOME=home, KOMEET_SCIM_URL=url,
        KOMEET_SCIM_TOKEN="token", KOMEET_SYNC_KOMEET_ATTEMPTS="1", **env,
    )  # fmt: skip


def test_komeet_refusing_connections(home):
    url = f"http://127.0.0.1:{closed_port()}/scim/v2"
    one_line(
        komeet_at(home, url),
        f"cannot reach Komeet at {url}: connection failed: Connection refused",
        "check KOMEET_SCIM_URL, and that this machine reaches that host",
    )


def test_komeet_at_a_host_name_that_does_not_resolve(home):
    url = "http://komeet.invalid/scim/v2"  # RFC 2606: .invalid never resolves
    one_line(
        komeet_at(home, url),
        f"cannot reach Komeet at {url}: connection failed: the host name does not resolve",
        "check KOMEET_SCIM_URL",
    )


def test_komeet_that_never_answers(home, silent_port):
    url = f"http://127.0.0.1:{silent_port}/scim/v2"
    one_line(
        komeet_at(home, url, KOMEET_SYNC_KOMEET_TIMEOUT="0.5"),
        f"cannot reach Komeet at {url}: no answer within 0.5 s",
        "or raise KOMEET_SYNC_KOMEET_TIMEOUT",
    )


# Google: the key file, the endpoint and the network --------------------------------------


@pytest.fixture(scope="module")
def key_files(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("keys")
    (folder / "syntax.json").write_text('{"type": "service_account",')
    (folder / "null.json").write_text("null")
    (folder / "user.json").write_text(json.dumps({"type": "authorized_user", "client_id": "1"}))
    (folder / "latin1.json").write_bytes('{"client_email": "zoë"}'.encode("latin-1"))
    return folder


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("missing.json", "missing.json: no such file"),
        (".", "is a folder, not a key file"),
        ("syntax.json", "syntax.json is not JSON; give the JSON key of the service account"),
        ("latin1.json", "latin1.json is not JSON; give the JSON key of the service account"),
        ("null.json", "null.json is not a service-account key file"),
        ("user.json", "user.json is not a service-account key file (missing: client_email"),
    ],
)
def test_a_key_file_that_is_not_a_key(home, key_files, name, says):
    result = komeet_sync(
        "google", "check", "globex.com",
        KOMEET_SYNC_HOME=home, GOOGLE_SERVICE_ACCOUNT_FILE=str(key_files / name),
    )  # fmt: skip
    one_line(result, "GOOGLE_SERVICE_ACCOUNT_FILE=", says)


@pytest.mark.parametrize("value", ["not a url", "http://[::1", "ftp://directory.example"])
def test_a_directory_api_endpoint_that_is_not_a_url(home, service_account_info, tmp_path, value):
    (tmp_path / "key.json").write_text(json.dumps(service_account_info))
    result = komeet_sync(
        "google", "check", "globex.com", KOMEET_SYNC_HOME=home,
        GOOGLE_SERVICE_ACCOUNT_FILE=str(tmp_path / "key.json"),
        GOOGLE_DIRECTORY_API_ENDPOINT=value,
    )  # fmt: skip
    one_line(result, f"GOOGLE_DIRECTORY_API_ENDPOINT={value!r} is not a URL", "or unset it")


def test_a_token_endpoint_out_of_reach(home, service_account_info, tmp_path):
    token_uri = f"http://127.0.0.1:{closed_port()}/token"
    (tmp_path / "key.json").write_text(json.dumps(service_account_info | {"token_uri": token_uri}))
    result = komeet_sync(
        "sync", "globex.com", "--dry-run", "--komeet", str(KOMEET_EXPORT),
        KOMEET_SYNC_HOME=home, GOOGLE_SERVICE_ACCOUNT_FILE=str(tmp_path / "key.json"),
        KOMEET_SYNC_GOOGLE_ATTEMPTS="1",
    )  # fmt: skip
    one_line(
        result,
        f"the token request to {token_uri} failed: no response (Connection refused)",
        f"Check that this machine reaches the key file's token_uri, {token_uri}",
    )


def test_the_directory_api_out_of_reach(home, workspace, tmp_path):
    from komeet_sync.emulators.directory import Directory

    admin = {"id": "1", "primaryEmail": "admin@globex.com", "name": {"givenName": "A"}}
    google = workspace(Directory.from_exports([admin], {}, admins=["admin@globex.com"]))
    endpoint = f"http://127.0.0.1:{closed_port()}/"
    result = komeet_sync(
        "sync", "globex.com", "--dry-run", "--komeet", str(KOMEET_EXPORT),
        KOMEET_SYNC_HOME=home, GOOGLE_SERVICE_ACCOUNT_FILE=str(google.key_file),
        GOOGLE_DIRECTORY_API_ENDPOINT=endpoint, KOMEET_SYNC_GOOGLE_ATTEMPTS="1",
    )  # fmt: skip
    one_line(
        result,
        "failed: no response",
        f"Check that this machine reaches GOOGLE_DIRECTORY_API_ENDPOINT's {endpoint}",
    )


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"KOMEET_SYNC_GOOGLE_ATTEMPTS": "0"}, "give at least 1 attempt"),
        ({"KOMEET_SYNC_GOOGLE_BACKOFF": "fast"}, "KOMEET_SYNC_GOOGLE_BACKOFF='fast' is not"),
    ],
)
def test_google_retry_settings_that_cannot_work(home, service_account_info, tmp_path, env, says):
    (tmp_path / "key.json").write_text(json.dumps(service_account_info))
    result = komeet_sync(
        "google", "check", "globex.com", KOMEET_SYNC_HOME=home,
        GOOGLE_SERVICE_ACCOUNT_FILE=str(tmp_path / "key.json"), **env,
    )  # fmt: skip
    one_line(result, says)
