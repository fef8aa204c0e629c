"""`komeet-sync google check` and `komeet-sync sync --dry-run` for a Google domain, run as an
operator would: the key file and the API endpoint come from the environment."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import create_engine, text

from komeet_sync.store.authorizations import AuthorizationStore
from tests.support import EXAMPLES
from tests.support.exports import example_args
from tests.support.google_workspace import acme_example, consent, consent_address

ACME = EXAMPLES / "acme"
ADMIN = "alice.martin@acme.com"


@pytest.fixture
def acme(workspace, komeet_env, monkeypatch, cli):
    """The bundled acme.com example served by the emulator, and its domain configured."""
    directory = acme_example(ADMIN)
    google = workspace(directory)
    google.env(monkeypatch)
    code, _, err = cli(
        "domains", "add", "acme.com", "--source", "google", "--admin-email", ADMIN,
        "--group", "all@acme.com", "--alias-domain", "acme.io", "--protect", "it-admin@acme.com",
    )  # fmt: skip
    assert code == 0, err
    return google


def test_check_says_everything_is_in_place(cli, acme):
    code, out, err = cli("google", "check", "acme.com")

    assert code == 0, err
    assert f"read as {ADMIN}" in out and acme.key["client_id"] in out
    assert "14 users in acme.com, acme.io" in out
    assert "group all@acme.com: 13 users" in out
    assert "Everything needed to sync this domain is in place." in out


def test_check_names_a_missing_group(cli, acme):
    cli("domains", "remove", "acme.com", "--yes")
    cli(
        "domains", "add", "acme.com", "--source", "google", "--admin-email", ADMIN,
        "--group", "all@acme.com", "--group", "sales@acme.com",
    )  # fmt: skip

    code, out, err = cli("google", "check", "acme.com")

    assert code == 1
    assert "group sales@acme.com: NOT FOUND" in out
    assert "selected group sales@acme.com does not exist in Google Workspace" in err


def test_check_says_what_the_customer_must_grant(cli, workspace, komeet_env, monkeypatch):
    directory = acme_example(ADMIN)
    google = workspace(directory, scopes=[])
    google.env(monkeypatch)
    cli("domains", "add", "acme.com", "--source", "google", "--admin-email", ADMIN,
        "--group", "all@acme.com")  # fmt: skip

    code, out, err = cli("google", "check", "acme.com", "--json")

    assert code == 1
    report = json.loads(out)
    assert report["users"] is None
    [problem] = report["problems"]
    assert "Manage domain-wide delegation" in problem and google.key["client_id"] in problem
    assert "admin.directory.group.member.readonly" in problem and ADMIN in problem
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("GOOGLE_SERVICE_ACCOUNT_FILE", "", "set GOOGLE_SERVICE_ACCOUNT_FILE"),
        ("GOOGLE_SERVICE_ACCOUNT_FILE", "/nowhere/key.json", "/nowhere/key.json: no such file"),
        ("GOOGLE_SERVICE_ACCOUNT_FILE", str(ACME / "users.json"), "not a service-account key"),
        ("GOOGLE_DIRECTORY_API_ENDPOINT", "127.0.0.1:8085", "'127.0.0.1:8085' is not a URL"),
        ("KOMEET_SYNC_GOOGLE_ATTEMPTS", "many", "KOMEET_SYNC_GOOGLE_ATTEMPTS='many' is not"),
        ("KOMEET_SYNC_GOOGLE_BACKOFF", "-1", "give at least 1 attempt"),
    ],
)
def test_a_bad_environment_is_named(cli, acme, monkeypatch, variable, value, says):
    monkeypatch.setenv(variable, value)

    code, _, err = cli("google", "check", "acme.com")

    assert code == 1
    assert says in err and "Traceback" not in err


def test_check_refuses_a_scim_domain(cli, komeet_env):
    cli("domains", "add", "globex.com", "--source", "scim")

    code, _, err = cli("google", "check", "globex.com")

    assert code == 1 and "globex.com syncs by SCIM" in err


def test_dry_run_writes_the_reports_the_audit_writes(cli, acme, tmp_path):
    audited = tmp_path / "audit"
    cli(*example_args(audited), "--max-deactivation-share", "0.2")

    code, out, err = cli(
        "sync", "acme.com", "--dry-run", "--komeet", ACME / "komeet_users.json",
        "--out", tmp_path / "synced",
    )  # fmt: skip

    assert code in (0, 3), err
    assert "Read acme.com from Google Workspace: 14 users" in out
    assert "Dry run: nothing was sent to Komeet." in out
    for name in ("joiners", "leavers", "updates", "duplicates", "errors", "out_of_scope", "plan"):
        synced = (tmp_path / "synced" / f"{name}.csv").read_text()
        assert synced == (audited / f"{name}.csv").read_text(), name
    summary = json.loads((tmp_path / "synced" / "summary.json").read_text())
    assert summary["snapshot"]["requests"] == 1 + 1 + 1 + 1 + 1  # token, 2 domains, group
    assert summary["plan_id"] == json.loads((audited / "summary.json").read_text())["plan_id"]


def test_dry_run_reports_go_to_the_result_store(cli, acme, komeet_env, tmp_path):
    code, out, _ = cli("sync", "acme.com", "--dry-run", "--komeet", ACME / "komeet_users.json")

    assert code in (0, 3)
    [folder] = (tmp_path / "home" / "syncs" / "acme.com").iterdir()
    assert (folder / "plan.parquet").exists() and str(folder) in out
    record = json.loads((folder / "sync.json").read_text())
    assert record["trigger"] == "komeet-sync sync --dry-run"
    assert (folder / "snapshot" / "users.parquet").exists()


def test_a_failed_read_writes_nothing(cli, acme, tmp_path):
    acme.emulator.fail("members.list", 503, times=None)

    code, out, err = cli(
        "sync", "acme.com", "--dry-run", "--komeet", ACME / "komeet_users.json",
        "--out", tmp_path / "synced",
    )  # fmt: skip

    assert code == 1
    assert "members.list page 1 of all@acme.com failed after 4 attempts: HTTP 503" in err
    assert "no plan was made" in err and "Traceback" not in err
    assert "Reports written" not in out
    assert not (tmp_path / "synced").exists()


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        (["--komeet", str(ACME / "komeet_users.json")], "--komeet FILE goes with --dry-run"),
        (["--dry-run"], "KOMEET_SCIM_URL is not set"),
        (["--dry-run", "--komeet", "/nowhere.json"], "/nowhere.json: no such file"),
    ],
)
def test_sync_says_what_is_missing(cli, acme, arguments, says, monkeypatch):
    monkeypatch.delenv("KOMEET_SCIM_URL", raising=False)
    code, _, err = cli("sync", "acme.com", *arguments)

    assert code == 1 and says in err
    assert acme.emulator.requests["total"] == 0  # refused before reading Google


# -- an admin's OAuth consent: google authorize, google revoke ------------------------------


class PastedBack:
    """stdin for ``google authorize --headless``: when the command asks for the address,
    the admin answers the consent page it printed (by plain HTTP) and pastes the address
    the browser was sent to."""

    def __init__(self, capsys, email: str = ADMIN, allow: bool = True) -> None:
        self.capsys, self.email, self.allow = capsys, email, allow
        self.printed = ""

    def readline(self) -> str:
        self.printed = self.capsys.readouterr().out
        return consent(consent_address(self.printed), self.email, self.allow) + "\n"


@pytest.fixture
def authorized(cli, acme, monkeypatch, capsys):
    """acme.com authorized by its admin's consent, the headless way."""
    acme.oauth_env(monkeypatch)
    pasted = PastedBack(capsys)
    monkeypatch.setattr("sys.stdin", pasted)
    code, out, err = cli("google", "authorize", "acme.com", "--headless")
    assert code == 0, err
    return pasted.printed + out


def test_authorize_stores_the_consent_sealed_and_check_says_so(cli, authorized, komeet_env):
    assert "Open this address on any machine with a browser" in authorized
    assert f"acme.com is authorized by {ADMIN} on " in authorized
    assert "admin.directory.user.readonly, admin.directory.group.readonly, " in authorized

    code, out, err = cli("google", "check", "acme.com")

    assert code == 0, err
    assert f"read as {ADMIN}:\n  authorized by {ADMIN} on " in out and "(OAuth)" in out
    assert "14 users in acme.com, acme.io" in out
    engine = create_engine(komeet_env)
    with engine.connect() as connection:
        [sealed] = connection.execute(
            text("SELECT refresh_token_sealed FROM google_authorizations")
        )
    refresh_token = AuthorizationStore(engine).get("acme.com").refresh_token()
    assert sealed[0].startswith("gAAAA") and refresh_token not in sealed[0]
    assert refresh_token not in authorized + out + err


def test_authorize_refuses_without_the_secret_key(cli, acme, monkeypatch):
    acme.oauth_env(monkeypatch)
    monkeypatch.delenv("KOMEET_SYNC_SECRET_KEY")

    code, out, err = cli("google", "authorize", "acme.com", "--headless")

    assert code == 1 and out == ""
    assert err.startswith("komeet-sync: set KOMEET_SYNC_SECRET_KEY to a Fernet key first")
    assert err.count("\n") == 1 and acme.emulator.requests["authorize"] == 0


def test_a_denied_consent_is_one_line_and_stores_nothing(cli, acme, monkeypatch, capsys):
    acme.oauth_env(monkeypatch)
    monkeypatch.setattr("sys.stdin", PastedBack(capsys, allow=False))

    code, _, err = cli("google", "authorize", "acme.com", "--headless")

    assert code == 1
    assert err == (
        "komeet-sync: the admin denied the consent (access_denied). Nothing was stored.\n"
    )
    code, out, _ = cli("google", "revoke", "acme.com")
    assert code == 0 and "acme.com has no authorization to revoke" in out


def test_a_consent_google_ended_fails_the_sync_in_one_line(cli, authorized, acme):
    acme.emulator.consent.expire()

    code, out, err = cli("sync", "acme.com", "--dry-run", "--komeet", ACME / "komeet_users.json")

    assert code == 1 and "Reports written" not in out
    assert err == (
        f"komeet-sync: the authorization of acme.com by {ADMIN} was revoked or expired at "
        "Google: run `komeet-sync google authorize acme.com` again\n"
    )


def test_revoke_revokes_at_google_keeps_it_when_google_is_away(cli, authorized, acme, tmp_path):
    client_file = tmp_path / "oauth-client.json"
    reachable = client_file.read_text()
    away = json.loads(reachable)
    away["installed"]["revoke_uri"] = "http://127.0.0.1:9/revoke"  # nothing listens there
    client_file.write_text(json.dumps(away))

    code, _, err = cli("google", "revoke", "acme.com")

    assert code == 1 and "cannot be reached" in err and "is kept" in err
    assert "--forget-only" in err and err.count("\n") == 1
    client_file.write_text(reachable)
    code, out, err = cli("google", "revoke", "acme.com")
    assert code == 0, err
    assert out.startswith(f"Revoked at Google and deleted the authorization of acme.com by {ADMIN}")
    assert acme.emulator.consent.consents == []
    code, out, _ = cli("google", "check", "acme.com")  # back to the delegation
    assert code == 0 and "by domain-wide delegation" in out


# google groups and what google check says a first sync would do ----------------------------


@pytest.fixture
def choosing(workspace, komeet_env, monkeypatch, cli):
    """A small Workspace with four groups (``groups_directory``), acme.com selecting
    all@acme.com."""
    from tests.support.google_workspace import groups_directory

    google = workspace(groups_directory())
    google.env(monkeypatch)
    code, _, err = cli(
        "domains", "add", "acme.com", "--source", "google", "--admin-email", ADMIN_OF_GROUPS,
        "--group", "all@acme.com",
    )  # fmt: skip
    assert code == 0, err
    return google


ADMIN_OF_GROUPS = "alice.martin@acme.com"


def test_groups_lists_each_group_with_nested_and_desired_counts(cli, choosing):
    listed = cli.json("google", "groups", "acme.com")

    assert [
        (g["name"], g["direct_members"], g["members"], g["desired"]) for g in listed["groups"]
    ] == [
        ("All Staff", 2, 4, 2),  # ann, and Engineering's cat, bob (suspended), zed (no name)
        ("Board", 1, 1, 1),
        ("Engineering", 3, 3, 1),
        ("Sales", 3, 3, 2),  # the guest of partner.example is not desired
    ]
    assert listed["found"] == 4 and listed["counted"] is True
    code, out, _ = cli("google", "groups", "acme.com")
    assert code == 0
    assert "all@acme.com *" in out and "All 4 groups by name" in out
    # One groups.list pass, with a fields mask; counts read the users and the 4 groups once.
    calls = [c for c in choosing.emulator.calls if c.method == "groups.list"]
    assert len(calls) == 2 and all("directMembersCount" in c.params["fields"] for c in calls)


def test_groups_search_runs_on_googles_side_or_here(cli, choosing):
    found = cli.json("google", "groups", "acme.com", "--search", "eng", "--no-counts")
    assert [g["email"] for g in found["groups"]] == ["eng@acme.com"]
    assert found["searched_by"] == "google"
    queries = {c.params.get("query") for c in choosing.emulator.calls if c.method == "groups.list"}
    assert queries == {"name:eng*", "email:eng*"}
    assert "members" not in found["groups"][0]  # --no-counts: direct members only

    spaced = cli.json("google", "groups", "acme.com", "--search", "all st")
    assert [g["name"] for g in spaced["groups"]] == ["All Staff"]
    assert spaced["searched_by"] == "komeet-sync"

    code, out, _ = cli("google", "groups", "acme.com", "--search", "nothing-like-it")
    assert code == 0 and "No group matching 'nothing-like-it'" in out


def test_groups_pages_through_a_large_workspace(cli, workspace, komeet_env, monkeypatch):
    from komeet_sync.emulators.directory_generator import generate_directory

    generated = generate_directory(40, domain="acme.com", groups=1, other_groups=450, seed=3)
    google = workspace(generated.directory)
    google.env(monkeypatch)
    cli("domains", "add", "acme.com", "--source", "google", "--admin-email", generated.admin,
        "--group", generated.selected[0])  # fmt: skip

    listed = cli.json("google", "groups", "acme.com", "--limit", "0", "--no-counts")

    assert listed["found"] == listed["shown"] == 453  # 450 + the selected group, 2 nested
    names = [g["name"].casefold() for g in listed["groups"]]
    assert names == sorted(names)
    pages = [c for c in google.emulator.calls if c.method == "groups.list"]
    assert len(pages) == 3 and pages[1].params["pageToken"]
    shown = cli.json("google", "groups", "acme.com", "--limit", "3")
    assert shown["shown"] == 3 and shown["counted"] and shown["found"] == 453


def test_check_says_what_a_first_sync_would_do(cli, choosing, komeet, monkeypatch):
    from tests.support.google_workspace import komeet_accounts

    komeet_accounts(komeet)
    komeet.env(monkeypatch)

    code, out, err = cli("google", "check", "acme.com")

    assert code == 0, err
    assert "group all@acme.com: 4 users with nested groups, 2 desired" in out
    assert "2 desired people" in out
    assert "3 active users in no selected group:" in out and "dan.fox@acme.com" in out
    assert "zed@acme.com: missing_name" in out
    assert "1 account to create" in out and "create cat.day@acme.com" in out
    assert "1 account to deactivate" in out and "old.timer@acme.com" in out
    # 1 deactivation of 2 active managed accounts is over 20% of them.
    assert "The plan would be HELD:" in out and "deactivation_budget" in out
    report = cli.json("google", "check", "acme.com")["first_sync"]
    assert report["desired"] == 2 and report["held"] is True
    assert [row["email"] for row in report["deactivate"]["first"]] == ["old.timer@acme.com"]


def test_check_without_komeet_says_what_it_did_not_read(cli, choosing, monkeypatch):
    monkeypatch.delenv("KOMEET_SCIM_URL", raising=False)

    code, out, _ = cli("google", "check", "acme.com")

    assert code == 0
    assert "2 desired people" in out
    assert "KOMEET_SCIM_URL is not set" in out and "to create" not in out
