"""The console an operator trusts, tried as they would: Ctrl-C on a real terminal (a pty)
while a sync applies to Komeet behind a slow network, exit codes through a pipe closed
early, the progress of each step, and the help that names exit codes and settings."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pexpect
import pytest
from sqlalchemy import create_engine, select

from komeet_sync.cli.output import ENVIRONMENT
from komeet_sync.emulators.directory import Directory
from komeet_sync.emulators.http_proxy import HttpProxy
from komeet_sync.store.ledger import Status
from komeet_sync.store.tables import LedgerRow
from tests.support import EXAMPLES, ROOT
from tests.support.google_workspace import member
from tests.support.provisioning import DOMAIN, GROUP, person

KOMEET_SYNC = Path(sys.executable).with_name("komeet-sync")
ADMIN = "admin@acme.com"
PEOPLE = 240


@pytest.fixture
def komeet_env(sqlite_url, monkeypatch, tmp_path) -> str:
    """The console is the same on either database: these run on the embedded SQLite."""
    url = sqlite_url
    monkeypatch.setenv("KOMEET_SYNC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KOMEET_SYNC_DATABASE_URL", url)
    return url


@pytest.fixture
def acme(workspace, komeet_env, komeet, monkeypatch, cli):
    """acme.com on the Directory API emulator with ``PEOPLE`` joiners; an empty Komeet."""
    people = [person(0, ADMIN), *(person(i) for i in range(1, PEOPLE))]
    directory = Directory.from_exports(
        people, {GROUP: [member(user) for user in people]}, admins=[ADMIN]
    )
    workspace(directory).env(monkeypatch)
    komeet.env(monkeypatch)
    code, _, err = cli(
        "domains", "add", DOMAIN, "--source", "google", "--admin-email", ADMIN, "--group", GROUP
    )
    assert code == 0, err
    return people


def ledger(database_url: str) -> Counter:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return Counter(connection.scalars(select(LedgerRow.status)))
    finally:
        engine.dispose()


def spawn(*args: str, **env: str) -> pexpect.spawn:
    """``komeet-sync`` on a terminal of its own, as an operator types it."""
    return pexpect.spawn(
        str(KOMEET_SYNC),
        list(args),
        env=os.environ | env,
        encoding="utf-8",
        timeout=60,
        dimensions=(40, 160),
    )


def wait_until_applied(database_url: str, child: pexpect.spawn, at_least: int) -> None:
    deadline = time.monotonic() + 60
    while ledger(database_url)[Status.APPLIED.value] < at_least:
        assert child.isalive(), child.before
        assert time.monotonic() < deadline, "the apply never got going"
        time.sleep(0.05)


def test_ctrl_c_stops_the_writes_at_once_and_says_how_to_resume(acme, komeet, komeet_env):
    with HttpProxy(komeet.url, latency=0.05) as proxy:
        child = spawn("sync", DOMAIN, "--mode", "concurrent", "--concurrency", "4", **{
            "KOMEET_SCIM_URL": proxy.url
        })  # fmt: skip
        child.expect(r"`komeet-sync apply (plan_\w+)` resumes it")
        plan_id = child.match.group(1)
        wait_until_applied(komeet_env, child, 20)
        child.sendintr()  # Ctrl-C, to the terminal's foreground process
        interrupted = time.monotonic()
        child.expect("Stopping")
        child.expect(pexpect.EOF)
        child.close()
        stopped_in = time.monotonic() - interrupted
        sent_at_exit = proxy.stats().received
        time.sleep(1.0)
        assert proxy.stats().received == sent_at_exit, "a request reached Komeet after exit"

    assert child.exitstatus == 130, child.before
    assert stopped_in < 5, f"the sync took {stopped_in:.1f} s to stop"
    output = child.before
    assert re.search(r"Stopped: \d+ applied, 0 failed, \d+ not sent", output), output
    assert f"resume with `komeet-sync apply {plan_id}`" in output
    statuses = ledger(komeet_env)
    assert statuses[Status.SENDING.value] == 0, "an action was left without its outcome"
    assert 20 <= statuses[Status.APPLIED.value] < PEOPLE
    assert statuses[Status.APPLIED.value] + statuses[Status.PENDING.value] == PEOPLE
    assert len(komeet.users()) == statuses[Status.APPLIED.value]

    # `apply` stops the same way.
    with HttpProxy(komeet.url, latency=0.1) as proxy:
        child = spawn(
            "apply",
            plan_id,
            "--mode",
            "concurrent",
            "--concurrency",
            "2",
            KOMEET_SCIM_URL=proxy.url,
        )
        wait_until_applied(komeet_env, child, statuses[Status.APPLIED.value] + 10)
        child.sendintr()
        child.expect(pexpect.EOF)
        child.close()
    assert child.exitstatus == 130, child.before
    assert f"resume with `komeet-sync apply {plan_id}`" in child.before
    again = ledger(komeet_env)
    assert again[Status.SENDING.value] == 0
    assert statuses[Status.APPLIED.value] < again[Status.APPLIED.value] < PEOPLE

    resumed = subprocess.run(
        [str(KOMEET_SYNC), "apply", plan_id], capture_output=True, text=True, env=os.environ
    )
    assert resumed.returncode == 0, resumed.stderr
    assert ledger(komeet_env) == {Status.APPLIED.value: PEOPLE}
    assert len(komeet.users()) == PEOPLE


def test_a_second_ctrl_c_exits_at_once(acme, komeet, komeet_env):
    """At once: without waiting for the requests in flight, which the proxy holds 30 s from
    the plan's first write on. The bound is half that, not a speed target: a loaded machine
    may take a few seconds to exit."""
    with HttpProxy(komeet.url, latency=1.0) as proxy:
        child = spawn("sync", DOMAIN, "--mode", "concurrent", "--concurrency", "2", **{
            "KOMEET_SCIM_URL": proxy.url
        })  # fmt: skip
        child.expect(r"`komeet-sync apply (plan_\w+)` resumes it", timeout=120)
        plan_id = child.match.group(1)
        proxy.latency = 30.0  # the first writes may get 1 s, those after them 30 s
        time.sleep(2.5)  # the next requests are in flight, for 30 s
        child.sendintr()
        child.expect("Stopping")
        again = time.monotonic()
        child.sendintr()
        child.expect(pexpect.EOF)
        child.close()
        exited_in = time.monotonic() - again

    assert child.exitstatus == 130
    assert exited_in < 15, f"the second Ctrl-C took {exited_in:.1f} s"
    assert "stopped at once" in child.before
    assert f"komeet-sync apply {plan_id}" in child.before


def test_sigterm_stops_an_apply_like_ctrl_c(acme, komeet, komeet_env, cli):
    with HttpProxy(komeet.url, latency=0.05) as proxy:
        env = os.environ | {"KOMEET_SCIM_URL": proxy.url}
        process = subprocess.Popen(
            [str(KOMEET_SYNC), "sync", DOMAIN, "--mode", "sequential"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while ledger(komeet_env)[Status.APPLIED.value] < 5:
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)

    assert process.returncode == 143, err
    assert "Stopped:" in err and "komeet-sync apply plan_" in err
    # Off a terminal, each step is one log line, and the resume command comes before it sends.
    assert re.search(r"^Reading acme.com \(Google Workspace\): 240 users in [\d.]+ s", err, re.M)
    assert re.search(r"^Reading Komeet's accounts: 0 accounts in", err, re.M)
    assert re.search(r"^Writing the reports: \d+ files in", err, re.M)
    assert err.index("resumes it") < err.index("Stopped:")
    assert ledger(komeet_env)[Status.SENDING.value] == 0
    # A stop is no failure: `status` says where the plan stands, in the words of `plans list`.
    code, out, err = cli("status", "--json")
    assert code == 3, err
    [status] = json.loads(out)
    [listed] = cli.json("plans", "list")
    assert status["result"] == "unfinished" and status["last_failure"] is None
    assert status["plan_id"] == listed["plan_id"]
    pending = f"applying / interrupted ({status['pending']} pending)"
    assert status["result_text"] == listed["state_text"] == pending
    assert status["next_step"] == f"komeet-sync apply {listed['plan_id']}"


def test_progress_on_a_terminal_has_a_rate_and_an_eta(acme, komeet, komeet_env):
    with HttpProxy(komeet.url, latency=0.02) as proxy:
        child = spawn(
            "sync", DOMAIN, "--mode", "concurrent", "--concurrency", "4", KOMEET_SCIM_URL=proxy.url
        )
        child.expect(pexpect.EOF, timeout=180)
        child.close()
    assert child.exitstatus == 0, child.before
    assert re.search(
        r"Applying plan_\w+ \[[#.]+\] [\d,]+/240 actions +[\d,]+ actions/s +ETA", child.before
    )
    assert re.search(r"Applying plan_\w+: 240 actions in [\d.]+ s", child.before)


def held_audit_args(out: Path) -> list[str]:
    acme = EXAMPLES / "acme"
    return [
        "audit", "--domain", "acme.com", "--alias-domain", "acme.io", "--group", "all@acme.com",
        "--google-users", str(acme / "users.json"), "--google-members", str(acme / "members.json"),
        "--komeet", str(acme / "komeet_users.json"), "--out", str(out),
    ]  # fmt: skip


def test_a_pipe_closed_early_keeps_the_exit_code(tmp_path):
    """The bundled acme export makes a held plan: exit 3, whoever reads the output."""
    args = held_audit_args(tmp_path / "out")
    # The reader goes before a byte is written: every write meets a closed pipe.
    process = subprocess.Popen(
        [str(KOMEET_SYNC), *args, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    process.stdout.close()
    err = process.stderr.read().decode()
    assert process.wait() == 3, err
    assert "Traceback" not in err and "BrokenPipe" not in err

    shell = subprocess.run(
        f"{KOMEET_SYNC} {' '.join(args)} | head -1; exit ${{PIPESTATUS[0]}}",
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        text=True,
    )
    assert shell.returncode == 3, shell.stderr
    assert shell.stdout.startswith("Reconciliation of acme.com")


def test_a_plan_held_by_the_shrink_guard_exits_3_until_approved(acme, cli, komeet):
    code, out, err = cli("sync", DOMAIN, "--last-good-count", "100000")
    assert code == 3, err
    assert "HELD" in out and "shrink" in out
    assert "Nothing was sent" in err
    plan_id = re.search(r"Plan (plan_\w+) is HELD", out).group(1)

    assert cli("plans", "approve", plan_id, "--by", "Dana Admin")[0] == 0
    code, out, err = cli("sync", DOMAIN, "--last-good-count", "100000")
    assert code == 0, err
    assert f"Plan {plan_id} was held, and Dana Admin approved it:" in out
    assert "is HELD" not in out
    assert len(komeet.users()) == PEOPLE


def test_a_negative_last_good_count_is_refused(acme, cli):
    code, _, err = cli("sync", DOMAIN, "--last-good-count", "-5")
    assert code == 1
    assert err.strip().count("\n") == 0
    assert "--last-good-count -5" in err and "0 or more" in err


@pytest.mark.parametrize(
    ("command", "variables", "codes"),
    [
        (["sync"], ["KOMEET_SCIM_URL", "KOMEET_SYNC_HOME", "GOOGLE_SERVICE_ACCOUNT_FILE"], "013"),
        (["apply"], ["KOMEET_SCIM_TOKEN", "KOMEET_SYNC_RESULTS"], "013"),
        (["audit"], [], "013"),
        (["domains", "list"], ["KOMEET_SYNC_HOME", "KOMEET_SYNC_DATABASE_URL"], "01"),
        (["scim", "serve"], ["KOMEET_SYNC_PUBLIC_URL"], "01"),
        (["google", "check"], ["GOOGLE_DIRECTORY_API_ENDPOINT", "KOMEET_SCIM_URL"], "01"),
        (["google", "groups"], ["GOOGLE_SERVICE_ACCOUNT_FILE"], "01"),
        (["domains", "set"], ["KOMEET_SCIM_URL", "GOOGLE_SERVICE_ACCOUNT_FILE"], "01"),
        (["status"], ["KOMEET_SYNC_DATABASE_URL", "KOMEET_SYNC_RESULTS"], "013"),
        (["explain"], ["KOMEET_SCIM_URL", "GOOGLE_SERVICE_ACCOUNT_FILE"], "014"),
    ],
)  # fmt: skip
def test_help_names_the_exit_codes_and_the_environment(cli, command, variables, codes):
    code, out, _ = cli(*command, "--help")
    assert code == 0
    exit_codes = out.split("exit codes:")[1]
    for number in codes:
        assert re.search(rf"^  {number} ", exit_codes, re.M), number
    assert re.search(r"^  130 ", exit_codes, re.M)
    for variable in variables:
        assert re.search(rf"^  {variable} ", out.split("environment:")[1], re.M)


def test_a_command_group_alone_shows_its_own_commands(cli):
    code, _, err = cli("domains")
    assert code == 1
    assert "domain commands" in err and "remove" in err and "audit" not in err


def test_the_readme_lists_every_environment_variable_the_code_reads():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Environment")[1].split("\n## ")[0]
    listed = set(re.findall(r"^\| `([A-Z_]+)` \|", table, re.M))
    assert listed == set(ENVIRONMENT)
    read = set()
    for folder in ("komeet_sync", "pipelines"):
        for path in (ROOT / folder).rglob("*.py"):
            if "emulators" in path.parts:
                continue
            read |= set(re.findall(r"[\"']((?:KOMEET|GOOGLE)_[A-Z_]+)[\"']", path.read_text()))
    assert read <= set(ENVIRONMENT), read - set(ENVIRONMENT)


def test_the_commands_help_is_built_without_the_work_of_any_command():
    """Every start builds every command's help: it must not import what the commands do
    (reading Google, Komeet's client, the sync), or each command starts seconds later."""
    code = (
        "import sys; from komeet_sync.cli import build_parser; build_parser(); "
        "print(sorted(m for m in sys.modules if m.startswith(('komeet_sync.runs.', "
        "'komeet_sync.komeet.', 'komeet_sync.sources.', 'googleapiclient', 'scim2_server'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout
