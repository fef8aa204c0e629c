"""`komeet-sync audit`: its files, its exit codes, and what it says about bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.support.console import error_lines
from tests.support.exports import Audit, account, example_args, google_user, member

ALL = "all@acme.com"


def test_the_bundled_example_writes_every_report(cli, tmp_path):
    code, out, _ = cli(*example_args(tmp_path / "out"))
    assert code == 3  # three deactivations in a domain of eight managed accounts
    assert "is HELD" in out and "deactivation_budget" in out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["counts"] == {
        "joiners": 3,
        "leavers": 4,
        "updates": 3,
        "duplicates": 3,
        "errors": 3,
        "out_of_scope": 2,
        "plan": 9,
    }
    assert summary["actions"] == {"create": 2, "deactivate": 3, "reactivate": 1, "update": 3}
    for name, columns in {
        "joiners": {"email", "reason"},
        "leavers": {"email", "reason", "komeet_id"},
        "updates": {"email", "reason", "changes"},
        "duplicates": {"cluster_id", "source", "account_id", "email", "reason"},
        "errors": {"source", "account_id", "email", "error", "detail"},
        "out_of_scope": {"email", "reason"},
        "plan": {"action", "email", "komeet_id", "reason"},
    }.items():
        csv = pd.read_csv(tmp_path / "out" / f"{name}.csv")
        parquet = pd.read_parquet(tmp_path / "out" / f"{name}.parquet")
        assert columns <= set(csv.columns), name
        assert len(csv) == len(parquet) == summary["counts"][name]
    plan = pd.read_csv(tmp_path / "out" / "plan.csv")
    assert plan["reason"].notna().all()
    assert set(plan["action"]) <= {"create", "reactivate", "update", "deactivate"}


def test_the_console_script_runs_the_example(tmp_path):
    script = Path(sys.executable).parent / "komeet-sync"
    result = subprocess.run(
        [str(script), *example_args(tmp_path), "--max-deactivation-share", "0.4", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["held"] is False and summary["plan_id"].startswith("plan_")


@pytest.fixture
def audit(tmp_path) -> Audit:
    return Audit(tmp_path / "audit")


def run_google_files(cli, audit: Audit) -> tuple[int, str]:
    """The audit on the Google files already in ``audit.root``, whatever they hold."""
    code, _, err = cli(
        "audit", "--domain", "acme.com", "--group", ALL,
        "--google-users", str(audit.root / "users.json"),
        "--google-members", str(audit.root / "members.json"),
        "--komeet", str(audit.root / "komeet_users.json"),
        "--out", str(audit.root / "out"),
    )  # fmt: skip
    return code, err


def run_raw(cli, audit: Audit, out: Path | None = None, **files) -> tuple[int, str]:
    """The audit on these files, whatever they hold, writing to ``out``."""
    code, _, err = cli(
        "audit", "--domain", "acme.com", "--group", ALL, *audit.files(**files),
        "--out", str(out or audit.root / "out"),
    )  # fmt: skip
    return code, err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            '[{"id": "1",\n "primaryEmail": "a@acme.com" "name": {}}]',
            "users.json: line 2, column 31: not valid JSON (Expecting ',' delimiter)",
        ),
        (
            '"users"',
            'users.json: the top level is a string ("users"); expected Directory API User',
        ),
        ("null", "users.json: the top level is null; expected Directory API User resources"),
        ("42", "users.json: the top level is a number (42); expected Directory API User"),
        ("true", "users.json: the top level is a boolean (true); expected Directory API User"),
        ("", "users.json: the file is empty; expected a JSON file of Directory API User"),
        (" \n\n", "users.json: the file is empty; expected a JSON file of Directory API User"),
        ('{"people": []}', "users.json: the top level is an object without a 'users' list"),
        ('{"users": {"id": "1"}}', "users.json: 'users' in the top level is an object, not a list"),
        (
            '[{"users": []}, {"users": 7}]',
            "users.json: 'users' in page 2 of the top level is a number (7), not a list",
        ),
        # a line and a column count from 1, as an editor shows them
        ("[\n  1,\n  2,\n]", "users.json: line 4, column 1: not valid JSON"),
        ("{}x", "users.json: line 1, column 3: not valid JSON (Extra data)"),
    ],
)
def test_a_malformed_file_is_one_clear_error(cli, audit, content, expected):
    audit.files(users=[], members={ALL: []})
    (audit.root / "users.json").write_text(content)
    code, err = run_google_files(cli, audit)
    assert code == 1
    assert expected in err
    assert len(error_lines(err)) == 1 and "Traceback" not in err
    assert not (audit.root / "out").exists()  # nothing half-written


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"[\n\xff]", "line 2, column 1 (byte 3) is not UTF-8; save it as UTF-8 JSON"),
        ('[\n  "Zoë"]'.encode("latin-1"), "line 2, column 6 (byte 8) is not UTF-8"),
    ],
)
def test_a_file_that_is_not_utf8_is_named_with_its_position(cli, audit, content, expected):
    audit.files(users=[], members={ALL: []})
    (audit.root / "users.json").write_bytes(content)
    code, err = run_google_files(cli, audit)
    assert code == 1 and "users.json: " + expected in err
    assert len(error_lines(err)) == 1


def test_a_folder_given_for_a_file_is_named(cli, audit):
    audit.files(users=[], members={ALL: []})
    (audit.root / "komeet_users.json").unlink()
    (audit.root / "komeet_users.json").mkdir()
    code, err = run_google_files(cli, audit)
    assert code == 1 and "komeet_users.json: is a folder; give a JSON file of SCIM 2.0" in err
    assert len(error_lines(err)) == 1


def test_missing_files_and_wrong_combinations_are_named(cli, audit):
    code, _, err = cli(
        "audit",
        "--domain",
        "acme.com",
        "--group",
        ALL,
        "--google-users",
        str(audit.root / "nope.json"),
        "--google-members",
        str(audit.root / "nope2.json"),
        "--komeet",
        str(audit.root / "k.json"),
        "--out",
        str(audit.root / "out"),
    )
    assert code == 1 and "nope.json: no such file; expected Directory API User" in err
    code, err = run_raw(cli, audit, users=[])
    assert code == 1 and "needs both --google-users" in err
    code, err = run_raw(cli, audit, scim_users=[])
    assert code == 1 and "no --scim-groups file was given" in err
    code, _, err = cli("audit", "--domain", "acme.com", "--komeet", "k.json", "--out", "o")
    assert code == 1 and "give one source" in err
    code, _, err = cli("audit", "--domain", "acme.com")
    assert code == 1 and "required: --komeet, --out" in err


def test_a_negative_last_good_count_is_refused(cli, audit):
    code, _, err = cli(*example_args(audit.root / "out"), "--last-good-count", "-5")
    assert code == 1 and "--last-good-count -5 is negative; give the number of desired" in err
    assert len(error_lines(err)) == 1 and not (audit.root / "out").exists()


def test_an_out_folder_that_cannot_be_written_is_named(cli, audit, tmp_path):
    (tmp_path / "taken").write_text("a file, not a folder")
    code, err = run_raw(
        cli, audit, out=tmp_path / "taken", users=[], members={ALL: [member("1", "")]}
    )
    assert code == 1 and "taken" in err and "Traceback" not in err


def test_members_file_must_map_groups(cli, audit):
    audit.files(users=[], komeet=[])
    (audit.root / "members.json").write_text('[{"id": "1"}]')
    code, err = run_google_files(cli, audit)
    assert code == 1
    assert "members.json: the top level is a list; expected an object mapping each group" in err


def test_a_group_of_the_members_file_that_is_not_a_list_is_named(cli, audit):
    audit.files(users=[], komeet=[])
    (audit.root / "members.json").write_text(json.dumps({ALL: "nobody"}))
    code, err = run_google_files(cli, audit)
    assert code == 1
    assert "members.json: the value of 'all@acme.com' is a string (\"nobody\")" in err


def test_a_bad_record_lands_in_errors_and_never_stops_the_others(cli, audit):
    users = [
        google_user("1", "jane@acme.com"),
        "not a user",
        {"primaryEmail": "noid@acme.com"},
        google_user("4", "joe@acme.com", suspended="maybe"),
        google_user("5", "kim@acme.com"),
    ]
    komeet = [
        account("k1", "old@acme.com", "9"),
        {"id": "k2", "userName": 5, "active": "x"},
        ["nope"],
    ]
    audit.run(
        cli,
        users=users,
        members={ALL: [member("1", ""), member("5", ""), "junk"]},
        komeet=komeet,
    )
    assert sorted(audit.report("plan")["email"]) == [
        "jane@acme.com",
        "kim@acme.com",
        "old@acme.com",
    ]
    errors = audit.report("errors")
    assert len(errors) == 6
    assert set(errors["error"]) == {"invalid_record"}
    assert set(errors["source"]) == {"google", "komeet"}
    details = " | ".join(errors["detail"])
    for fragment in (  # records count from 1, as the files are read
        'record 2 is a string ("not a user")',
        "record 3 has no id",
        "record 4: suspended/archived",
        'member 3 of all@acme.com is a string ("junk")',
        "record 2: userName",
        "record 3 is a list",
    ):
        assert fragment in details


def test_scim_resources_with_unknown_attributes_and_string_booleans(cli, audit):
    audit.groups = []
    user = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:custom:okta:1.0"],
        "id": "s1",
        "externalId": "00u1",
        "UserName": "Ann@acme.com",
        "Active": "True",
        "name": {"givenName": "Ann", "familyName": "Lee"},
        "urn:custom:okta:1.0": {"x": 1},
        "password": "never-kept",
        "emails": [{"value": "ann.lee@acme.com", "type": "work"}],
    }
    audit.run(cli, scim_users={"Resources": [user]}, komeet=[account("k1", "ann.lee@acme.com")])
    row = audit.report("plan").iloc[0]
    assert (row.action, row.komeet_id, row.external_id) == ("update", "k1", "00u1")
    assert "matched by alias" in row.reason
    assert not (audit.root / "out" / "plan.csv").read_text().count("never-kept")


@pytest.mark.parametrize(
    ("users", "members"),
    [
        # a users.list response, and members.list responses per group
        (
            {
                "kind": "admin#directory#users",
                "users": [google_user("1", "a@acme.com"), google_user("2", "b@acme.com")],
            },
            {
                ALL: {
                    "kind": "admin#directory#members",
                    "members": [member("1", ""), member("2", "")],
                }
            },
        ),
        # lists of pages, as a paged export writes them; an empty last page has no list
        (
            [
                {"users": [google_user("1", "a@acme.com")], "nextPageToken": "p2"},
                {"users": [google_user("2", "b@acme.com")], "nextPageToken": "p3"},
                {"kind": "admin#directory#users"},
            ],
            {
                ALL: [
                    {"members": [member("1", "")], "nextPageToken": "p2"},
                    {"members": [member("2", "")]},
                ]
            },
        ),
    ],
)
def test_google_exports_in_pages_or_responses(cli, audit, users, members):
    audit.run(cli, users=users, members=members)
    assert sorted(audit.report("plan")["email"]) == ["a@acme.com", "b@acme.com"]


def test_scim_exports_as_pages_of_list_responses(cli, audit):
    audit.groups = []
    page = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": 2,
        "itemsPerPage": 1,
    }
    audit.run(
        cli,
        scim_users=[
            page
            | {
                "startIndex": 1,
                "Resources": [
                    {
                        "id": "s1",
                        "userName": "a@acme.com",
                        "name": {"givenName": "A", "familyName": "B"},
                    }
                ],
            },
            page
            | {
                "startIndex": 2,
                "Resources": [
                    {
                        "id": "s2",
                        "userName": "b@acme.com",
                        "name": {"givenName": "C", "familyName": "D"},
                    }
                ],
            },
        ],
        komeet={"Resources": [account("k1", "a@acme.com", "s1", "A", "B")]},
    )
    assert list(audit.report("plan")["email"]) == ["b@acme.com"]


def test_json_output_is_the_summary(cli, audit):
    code, summary = audit.run(
        cli, users=[google_user("1", "a@acme.com")], members={ALL: [member("1", "")]}
    )
    assert code == 0
    assert set(summary) >= {"domain", "counts", "actions", "plan_id", "held", "hold_reasons"}
    on_disk = json.loads((audit.root / "out" / "summary.json").read_text())
    assert on_disk["plan_id"] == summary["plan_id"]
