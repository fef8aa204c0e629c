"""`komeet-sync domains ...` on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import json

import pytest

GOOGLE = ["--source", "google", "--admin-email", "admin@acme.com", "--group", "all@acme.com"]


def test_add_list_show_enable_disable_remove(cli, komeet_env):
    added = cli.json(
        "domains",
        "add",
        "Acme.COM",
        *GOOGLE,
        "--group",
        "Sales@acme.com",
        "--alias-domain",
        "acme.io",
        "--protect",
        "CEO@acme.com",
        "--max-deactivations",
        "50",
        "--max-deactivation-share",
        "0.1",
    )
    assert added == {
        "domain": "acme.com",
        "source": "google",
        "groups": ["all@acme.com", "sales@acme.com"],
        "alias_domains": ["acme.io"],
        "protected": ["ceo@acme.com"],
        "admin_email": "admin@acme.com",
        "enabled": True,
        "max_deactivations": 50,
        "max_deactivation_share": 0.1,
    }
    scim = cli.json("domains", "add", "globex.com", "--source", "scim", "--group", "Komeet Users")
    assert scim["groups"] == ["Komeet Users"] and scim["max_deactivations"] == 500

    listed = cli.json("domains", "list")
    assert [d["domain"] for d in listed] == ["acme.com", "globex.com"]
    assert cli.json("domains", "show", "acme.com") == added | {"recent_failures": []}

    assert cli.json("domains", "disable", "acme.com")["enabled"] is False
    assert cli.json("domains", "show", "acme.com")["enabled"] is False
    assert cli.json("domains", "enable", "ACME.com")["enabled"] is True

    assert cli.json("domains", "remove", "globex.com", "--yes")["domain"] == "globex.com"
    assert [d["domain"] for d in cli.json("domains", "list")] == ["acme.com"]


def test_human_output_lists_domains(cli, komeet_env):
    code, out, _ = cli("domains", "list")
    assert code == 0 and "No domain is configured" in out
    cli("domains", "add", "acme.com", *GOOGLE)
    code, out, _ = cli("domains", "list")
    assert code == 0
    assert "acme.com" in out and "google" in out and "all@acme.com" in out


@pytest.mark.parametrize(
    ("second", "names"),
    [
        (["acme.com", "--source", "scim"], "acme.com"),
        (["ACME.com.", "--source", "scim"], "acme.com"),
        (["acme.io", "--source", "scim"], "acme.io"),
        (["globex.com", "--source", "scim", "--alias-domain", "acme.com"], "acme.com"),
        (["globex.com", "--source", "scim", "--alias-domain", "acme.io"], "acme.io"),
    ],
)
def test_a_second_configuration_for_a_domain_is_refused(cli, komeet_env, second, names):
    cli("domains", "add", "acme.com", *GOOGLE, "--alias-domain", "acme.io")
    before = cli.json("domains", "list")
    code, _out, err = cli("domains", "add", *second)
    assert code == 1
    assert f"{names} is already configured" in err
    assert "google configuration of acme.com" in err
    assert "Traceback" not in err
    assert cli.json("domains", "list") == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["acme..com", *GOOGLE], "invalid domain 'acme..com'"),
        (["jane@acme.com", *GOOGLE], "give the domain alone"),
        (
            [
                "acme.com",
                "--source",
                "google",
                "--admin-email",
                "admin@acme.com",
                "--group",
                "all@@acme.com",
            ],
            "invalid group email 'all@@acme.com'",
        ),
        (["acme.com", "--source", "google", "--group", "all@acme.com"], "needs --admin-email"),
        (["acme.com", "--source", "google", "--admin-email", "a@acme.com"], "at least one --group"),
        (["acme.com", "--source", "ldap"], "invalid choice: 'ldap'"),
        (["acme.com", *GOOGLE, "--max-deactivation-share", "20"], "not a share"),
        (["acme.com", *GOOGLE, "--max-deactivations", "-1"], "is negative"),
        (["acme.com", *GOOGLE, "--alias-domain", "acme.com"], "is the domain itself"),
        (["acme.com", *GOOGLE, "--protect", "ceo"], "invalid protected email 'ceo'"),
    ],
)
def test_invalid_input_is_refused_and_changes_nothing(cli, komeet_env, args, message):
    code, _out, err = cli("domains", "add", *args)
    assert code == 1
    assert message in err
    assert "Traceback" not in err
    assert cli.json("domains", "list") == []


def test_unknown_domain_names_the_configured_ones(cli, komeet_env):
    cli("domains", "add", "acme.com", *GOOGLE, "--alias-domain", "acme.io")
    code, _, err = cli("domains", "show", "globex.com")
    assert code == 1 and "no configuration for globex.com (configured: acme.com)" in err
    code, _, err = cli("domains", "disable", "acme.io")
    assert code == 1 and "acme.io is an alias domain of acme.com" in err


def test_errors_are_json_too(cli, komeet_env):
    code, out, _ = cli("domains", "show", "globex.com", "--json")
    assert code == 1
    assert "no configuration for globex.com" in json.loads(out)["error"]


def test_remove_needs_confirmation_off_a_terminal(cli, komeet_env, monkeypatch):
    cli("domains", "add", "acme.com", *GOOGLE)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    code, _, err = cli("domains", "remove", "acme.com")
    assert code == 1 and "needs --yes" in err
    assert [d["domain"] for d in cli.json("domains", "list")] == ["acme.com"]


def test_disabled_on_add(cli, komeet_env):
    assert cli.json("domains", "add", "acme.com", *GOOGLE, "--disabled")["enabled"] is False
