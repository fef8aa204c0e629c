"""`komeet-sync domains ...` on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from sqlalchemy import text

from tests.support.scim_server import GROUP as SCIM_GROUP
from tests.support.scim_server import USER as SCIM_USER

GOOGLE = ["--source", "google", "--admin-email", "admin@acme.com", "--group", "all@acme.com"]


def nothing_yet(domain: str = "acme.com") -> dict:
    """What `domains show` adds to a configuration that has had no failure, no event, no
    quarantine and no notification URL."""
    return {
        "quarantine": None,
        "recent_failures": [],
        "recent_events": [],
        "notify": [],
        "notify_from": f"none: set them with `komeet-sync domains set {domain} --notify URL` "
        "or KOMEET_SYNC_NOTIFY",
    }


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
    assert cli.json("domains", "show", "acme.com") == added | nothing_yet()

    assert cli.json("domains", "disable", "acme.com")["enabled"] is False
    assert cli.json("domains", "show", "acme.com")["enabled"] is False
    assert cli.json("domains", "enable", "ACME.com")["enabled"] is True

    assert cli.json("domains", "remove", "globex.com", "--yes")["domain"] == "globex.com"
    assert [d["domain"] for d in cli.json("domains", "list")] == ["acme.com"]


def test_a_change_of_settings_keeps_the_quarantine(cli, komeet_env):
    from komeet_sync.store.database import open_database
    from komeet_sync.store.domains import DomainStore

    cli("domains", "add", "acme.com", *GOOGLE)
    store = DomainStore(open_database(komeet_env))
    quarantine = store.quarantine("acme.com", "5 syncs failed in a row")

    changed = cli.json("domains", "set", "acme.com", "--add-group", "sales@acme.com")

    assert changed["groups"] == ["all@acme.com", "sales@acme.com"]
    assert store.get("acme.com").quarantine == quarantine
    assert cli.json("domains", "show", "acme.com")["quarantine"] == quarantine.as_dict()
    code, out, _ = cli("domains", "list")
    assert code == 0 and "enabled, QUARANTINED" in out


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
        (["acme..com", *GOOGLE], "invalid domain 'acme..com': it has two dots in a row"),
        (["acme", *GOOGLE], "invalid domain 'acme': it has no dot"),
        (["ac me.com", *GOOGLE], "invalid domain 'ac me.com': it has characters no domain"),
        (["acme.local", *GOOGLE], "invalid domain 'acme.local': it is a special-use name"),
        (["xn--zz.com", *GOOGLE], "invalid domain 'xn--zz.com': it is not a valid international"),
        (["acme.com", *GOOGLE, "--alias-domain", "acme"], "invalid alias domain 'acme'"),
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
    if "domain '" in message:  # in a domain's words, never an email's
        assert "@-sign" not in err and "like acme.com or bücher.example" in err
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


# A domain in Unicode and in punycode is one domain.


BUCHER = "xn--bcher-kva.example"


def test_unicode_and_punycode_reach_the_same_configuration(cli, komeet_env):
    added = cli.json("domains", "add", "Bücher.example", "--source", "scim")
    assert added.pop("domain") == BUCHER and added.pop("secret")
    assert added.pop("scim_url").endswith(f"/scim/{BUCHER}/v2")
    added["domain"] = BUCHER
    effective = {"per_second": 50, "burst": 100, "default": True}

    for name in ("bücher.example", "BÜCHER.EXAMPLE", BUCHER, "XN--BCHER-KVA.example."):
        shown = cli.json("domains", "show", name)
        assert shown == added | {"effective_scim_rate_limit": effective} | nothing_yet(BUCHER)
    code, out, _ = cli("domains", "show", "BÜCHER.example")
    assert code == 0 and f"{BUCHER} (bücher.example)" in out
    code, out, _ = cli("domains", "list")
    assert code == 0 and f"{BUCHER} (bücher.example)" in out

    code, _, err = cli("domains", "add", BUCHER.upper(), "--source", "scim")
    assert code == 1 and f"{BUCHER} is already configured" in err
    cli("domains", "add", "acme.com", *GOOGLE, "--alias-domain", "Bücher.io")
    code, _, err = cli("domains", "show", "xn--bcher-kva.io")
    assert code == 1 and "xn--bcher-kva.io is an alias domain of acme.com" in err


def test_a_value_that_is_no_domain_is_named_in_a_domains_words(cli, komeet_env):
    code, _, err = cli("domains", "show", "acme..com")
    assert code == 1
    assert "'acme..com' is not a valid domain name: it has two dots in a row" in err
    assert "@-sign" not in err and "Traceback" not in err


# domains set: a configuration changed in place.


def acme(cli) -> dict:
    return cli.json(
        "domains", "add", "acme.com", *GOOGLE, "--group", "eng@acme.com",
        "--alias-domain", "acme.io", "--protect", "ceo@acme.com",
    )  # fmt: skip


def test_set_changes_only_what_is_given(cli, komeet_env):
    before = acme(cli)

    after = cli.json(
        "domains", "set", "ACME.com", "--add-group", "Sales@acme.com",
        "--max-deactivations", "40",
    )  # fmt: skip

    assert after == before | {
        "groups": ["all@acme.com", "eng@acme.com", "sales@acme.com"],
        "max_deactivations": 40,
    }
    assert cli.json("domains", "show", "acme.com") == after | nothing_yet()

    code, out, err = cli("domains", "set", "acme.com", "--max-deactivation-share", "0.05")
    assert code == 0, err
    assert out.startswith("Changed the configuration of acme.com:")
    assert "max_deactivation_share  0.2  ->  0.05" in out
    assert "groups" not in out and "protected" not in out  # only what changed

    code, out, _ = cli("domains", "set", "acme.com", "--max-deactivation-share", "0.05")
    assert code == 0 and "Nothing changed: acme.com already has these settings." in out


@pytest.mark.parametrize(
    ("options", "changed"),
    [
        (
            ["--group", "x@acme.com", "--group", "y@acme.com"],
            {"groups": ["x@acme.com", "y@acme.com"]},
        ),
        (["--remove-group", "ENG@acme.com"], {"groups": ["all@acme.com"]}),
        (
            ["--remove-group", "eng@acme.com", "--add-group", "ops@acme.com"],
            {"groups": ["all@acme.com", "ops@acme.com"]},
        ),
        (["--add-group", "all@acme.com"], {}),  # already there: nothing repeated
        (["--alias-domain", "acme.de"], {"alias_domains": ["acme.de"]}),
        (["--add-alias-domain", "Bücher.example"], {"alias_domains": ["acme.io", BUCHER]}),
        (["--add-alias-domain", "acme.de"], {"alias_domains": ["acme.de", "acme.io"]}),
        (["--no-alias-domains"], {"alias_domains": []}),
        (["--remove-alias-domain", "ACME.io"], {"alias_domains": []}),
        (["--no-protect"], {"protected": []}),
        (["--add-protect", "CFO@acme.com"], {"protected": ["ceo@acme.com", "cfo@acme.com"]}),
        (["--remove-protect", "ceo@acme.com"], {"protected": []}),
        (["--admin-email", "Root@acme.com"], {"admin_email": "root@acme.com"}),
    ],
)
def test_set_edits_each_list(cli, komeet_env, options, changed):
    before = acme(cli)
    after = cli.json("domains", "set", "acme.com", *options)
    assert after == before | changed
    assert cli.json("domains", "show", "acme.com") == after | nothing_yet()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ([], "nothing to change for acme.com: give what changes"),
        (["--group", "all@@acme.com"], "invalid group email 'all@@acme.com'"),
        (["--no-groups"], "a Google domain needs at least one --group"),
        (["--max-deactivation-share", "3"], "not a share"),
        (["--max-deactivations", "-1"], "is negative"),
        (["--alias-domain", "acme.com"], "is the domain itself"),
        (["--alias-domain", "acme"], "invalid alias domain 'acme': it has no dot"),
        (["--alias-domain", "globex.com"], "globex.com is already configured: the scim"),
        (["--add-alias-domain", "globex.io"], "globex.io is already configured"),
        (["--protect", "ceo"], "invalid protected email 'ceo'"),
        (
            ["--remove-group", "ops@acme.com"],
            "'ops@acme.com' is not among the selected groups of acme.com, so it cannot be "
            "removed; its selected groups: 'all@acme.com', 'eng@acme.com'",
        ),
        (["--remove-protect", "cfo@acme.com"], "its protected accounts: 'ceo@acme.com'"),
        (["--group", "x@acme.com", "--add-group", "y@acme.com"], "not both"),
        (["--group", "x@acme.com", "--no-groups"], "not allowed with argument --group"),
        (["--scim-rate-limit", "20"], "--scim-rate-limit is for SCIM domains"),
        (["--scim-rate-limit", "default"], "acme.com is read from Google Workspace"),
    ],
)
def test_set_is_refused_as_add_is_and_changes_nothing(cli, komeet_env, options, message):
    acme(cli)
    cli("domains", "add", "globex.com", "--source", "scim", "--alias-domain", "globex.io")
    before = cli.json("domains", "list")

    code, _, err = cli("domains", "set", "acme.com", *options)

    assert code == 1
    assert message in err and "Traceback" not in err
    assert cli.json("domains", "list") == before


def test_a_scim_domains_rate_limit_is_set_shown_and_given_back(cli, komeet_env, monkeypatch):
    cli("domains", "add", "globex.com", "--source", "scim")
    shown = cli.json("domains", "show", "globex.com")
    assert shown["scim_rate_limit"] is None
    assert shown["effective_scim_rate_limit"] == {"per_second": 50, "burst": 100, "default": True}
    code, out, _ = cli("domains", "show", "globex.com")
    assert code == 0 and "scim_rate_limit         50 requests/s, bursts of 100 (the default)" in out

    code, out, err = cli("domains", "set", "globex.com", "--scim-rate-limit", "20")
    assert code == 0, err
    assert "scim_rate_limit  default  ->  20 requests/s, bursts of 40" in out
    shown = cli.json("domains", "show", "globex.com")
    assert shown["scim_rate_limit"] == 20
    assert shown["effective_scim_rate_limit"] == {"per_second": 20, "burst": 40, "default": False}

    monkeypatch.setenv("KOMEET_SYNC_SCIM_RATE_LIMIT", "80")
    back = cli.json("domains", "set", "globex.com", "--scim-rate-limit", "DEFAULT")
    assert back["scim_rate_limit"] is None
    code, out, _ = cli("domains", "show", "globex.com")
    assert "scim_rate_limit         80 requests/s, bursts of 160 (the default)" in out

    monkeypatch.setenv("KOMEET_SYNC_SCIM_RATE_LIMIT", "fast")
    code, _, err = cli("domains", "show", "globex.com")
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert "KOMEET_SYNC_SCIM_RATE_LIMIT='fast' is not a number of requests a second" in err


def test_a_rate_limit_that_is_no_number_of_requests_is_refused(cli, komeet_env):
    cli("domains", "add", "globex.com", "--source", "scim")
    for value in ("0", "-5", "fast", "2.5", "10001", "", "٣"):
        code, _, err = cli("domains", "set", "globex.com", "--scim-rate-limit", value)
        assert code == 1 and err.count("\n") == 1 and "Traceback" not in err, value
        assert f"--scim-rate-limit: {value!r} is not a number of requests a second" in err
        assert "give a whole number from 1 to 10,000, or 'default'" in err
    assert cli.json("domains", "show", "globex.com")["scim_rate_limit"] is None


def test_set_on_a_scim_domain_refuses_an_admin(cli, komeet_env):
    cli("domains", "add", "globex.com", "--source", "scim")
    code, _, err = cli("domains", "set", "globex.com", "--admin-email", "a@globex.com")
    assert code == 1 and "--admin-email is for Google domains" in err
    code, _, err = cli("domains", "set", "initech.com", "--group", "x")
    assert code == 1 and "no configuration for initech.com (configured: globex.com)" in err


def test_set_keeps_the_scim_secret_and_what_the_idp_pushed(cli, komeet_env, scim):
    added = cli.json("domains", "add", "globex.com", "--source", "scim", "--group", "Staff")
    with scim.client("globex.com", secret=added["secret"]) as client:
        ana = client.post("/Users", json=user("ana@globex.com"))
        refused = client.post("/Users", json=user("ben@globex.io"))
    assert ana.status_code == 201 and refused.status_code == 400

    code, out, err = cli(
        "domains", "set", "globex.com", "--group", "Komeet  users", "--group", "komeet USERS",
        "--add-alias-domain", "globex.io", "--max-deactivations", "5",
    )  # fmt: skip

    assert code == 0, err
    assert "its SCIM secret and the users and groups its IdP pushed are kept" in out
    assert "groups             Staff   ->  Komeet users" in out  # one group, however spelt
    with scim.client("globex.com", secret=added["secret"]) as client:
        listed = client.get("/Users")
        ben = client.post("/Users", json=user("ben@globex.io"))  # the alias holds at once
    assert listed.status_code == 200
    assert [u["userName"] for u in listed.json()["Resources"]] == ["ana@globex.com"]
    assert ben.status_code == 201


def user(user_name: str) -> dict:
    return {
        "schemas": [SCIM_USER],
        "userName": user_name,
        "name": {"givenName": "A", "familyName": "B"},
    }


# domains remove: what it deletes, counted, before it asks.


TABLES = (
    "domain_configs", "domain_names", "scim_resources", "scim_memberships",
    "scim_unique_values", "scim_requests", "plans", "plan_actions", "applications", "ledger",
    "sync_failures",
)  # fmt: skip


def rows_of(engine, domain: str) -> dict[str, int]:
    """The rows the database holds for a domain, counted by each table's own link to it."""
    of_config = "JOIN domain_configs d ON t.domain_id = d.id WHERE d.domain = :d"
    of_plan = "JOIN plans p ON t.plan_id = p.plan_id WHERE p.domain = :d"
    queries = {
        "staged_users": f"FROM scim_resources t {of_config} AND t.resource_type = 'User'",
        "staged_groups": f"FROM scim_resources t {of_config} AND t.resource_type = 'Group'",
        "scim_memberships": f"FROM scim_memberships t {of_config}",
        "scim_unique_values": f"FROM scim_unique_values t {of_config}",
        "plans": "FROM plans WHERE domain = :d",
        "plan_actions": f"FROM plan_actions t {of_plan}",
        "applications": f"FROM applications t {of_plan}",
        "ledger_entries": f"FROM ledger t {of_plan}",
        "failures": "FROM sync_failures WHERE domain = :d",
        "requests_logged": "FROM scim_requests WHERE domain = :d",
        "domain_configs": "FROM domain_configs WHERE domain = :d",
        "domain_names": "FROM domain_names t JOIN domain_configs d ON t.config_id = d.id "
        "WHERE d.domain = :d",
    }
    with engine.connect() as connection:
        return {
            name: connection.execute(text(f"SELECT count(*) {query}"), {"d": domain}).scalar_one()
            for name, query in queries.items()
        }


def table_sizes(engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in TABLES
        }


def test_remove_says_what_it_deletes_and_deletes_exactly_that(
    cli, komeet_env, scim, komeet, monkeypatch, tmp_path
):
    from komeet_sync.store.failures import record_failure

    komeet.env(monkeypatch)
    secrets = {}
    for domain in ("globex.com", "initech.com"):
        secrets[domain] = cli.json("domains", "add", domain, "--source", "scim")["secret"]
        with scim.client(domain, secret=secrets[domain]) as client:
            ids = [
                client.post("/Users", json=user(f"{name}@{domain}")).json()["id"]
                for name in ("ana", "ben", "eva")
            ]
            client.post(
                "/Groups",
                json={
                    "schemas": [SCIM_GROUP],
                    "displayName": "Staff",
                    "members": [{"value": i} for i in ids],
                },
            )
            client.delete(f"/Users/{ids[2]}")  # a leaver: deleted rows are staged too
        record_failure(scim.engine, domain, "run-1", "sync", "Komeet answered 503")
    code, _, err = cli("sync", "globex.com")
    assert code == 0, err
    scim.flush_log()
    before = rows_of(scim.engine, "globex.com")
    initech = rows_of(scim.engine, "initech.com")
    sizes = table_sizes(scim.engine)
    assert before["staged_users"] == 3 and before["staged_groups"] == 1
    assert before["plans"] == 1 and before["ledger_entries"] == 2
    syncs = tmp_path / "home" / "syncs" / "globex.com"
    kept = [folder.name for folder in syncs.iterdir()]
    assert len(kept) == 1

    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    code, _, err = cli("domains", "remove", "globex.com")
    assert code == 1 and "removing globex.com when not run on a terminal needs --yes" in err
    assert "3 staged users, 1 staged group, its SCIM secret, 1 plan, 2 ledger entries" in err
    code, out, _ = cli("domains", "remove", "globex.com", "--json")
    assert code == 1 and "with --json needs --yes" in json.loads(out)["error"]
    assert rows_of(scim.engine, "globex.com") == before

    removed = cli.json("domains", "remove", "GLOBEX.com", "--yes")

    assert removed["domain"] == "globex.com"
    assert removed["deleted"] == {
        "staged_users": before["staged_users"],
        "staged_groups": before["staged_groups"],
        "scim_secret": True,
        "plans": before["plans"],
        "ledger_entries": before["ledger_entries"],
        "failures": before["failures"],
        "requests_logged": before["requests_logged"],
    }
    assert removed["kept"] == {"syncs": 1, "folder": str(syncs.resolve())}
    assert set(rows_of(scim.engine, "globex.com").values()) == {0}
    assert rows_of(scim.engine, "initech.com") == initech
    # Nothing of it is left behind, not even a row its table no longer links to it.
    of_globex = {
        "scim_resources": before["staged_users"] + before["staged_groups"],
        "scim_requests": before["requests_logged"],
        "ledger": before["ledger_entries"],
        "sync_failures": before["failures"],
    }
    assert table_sizes(scim.engine) == {
        table: size - of_globex.get(table, before.get(table, 0)) for table, size in sizes.items()
    }
    assert [folder.name for folder in syncs.iterdir()] == kept  # the files stay

    # Added again, it starts afresh: a new secret, nothing staged, no plan, no failure.
    again = cli.json("domains", "add", "globex.com", "--source", "scim")
    assert cli.json("domains", "show", "globex.com")["recent_failures"] == []
    assert cli.json("plans", "list", "--domain", "globex.com") == []
    with scim.client("globex.com", secret=secrets["globex.com"]) as client:
        assert client.get("/Users").status_code == 401
    with scim.client("globex.com", secret=again["secret"]) as client:
        assert client.get("/Users").json()["totalResults"] == 0


def test_remove_asks_on_a_terminal_after_saying_what_goes(cli, komeet_env, monkeypatch):
    cli("domains", "add", "Bücher.example", "--source", "scim")
    monkeypatch.setattr("sys.stdin", io.StringIO("bucher.example\n"))
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)

    code, out, err = cli("domains", "remove", "bücher.example")

    assert code == 1 and f"not removed: 'bucher.example' is not {BUCHER} (bücher.example)" in err
    assert f"Removing the configuration of {BUCHER} (bücher.example) deletes" in out
    assert "0 staged users and 0 staged groups its IdP pushed" in out
    assert "its SCIM secret" in out and "0 plans" in out
    assert cli.json("domains", "show", BUCHER)["domain"] == BUCHER

    monkeypatch.setattr("sys.stdin", io.StringIO("BÜCHER.example\n"))
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    code, out, err = cli("domains", "remove", BUCHER)

    assert code == 0, err
    assert f"Removed the configuration of {BUCHER} (bücher.example): deleted 0 staged" in out
    assert cli.json("domains", "list") == []


# A Unicode domain in a sync, its plans and its reports.


def test_a_unicode_domain_syncs_and_its_plans_are_found_by_either_name(
    cli, komeet_env, scim, komeet, monkeypatch, tmp_path
):
    komeet.env(monkeypatch)
    secret = cli.json("domains", "add", "Bücher.example", "--source", "scim")["secret"]
    with scim.client(BUCHER, secret=secret) as client:
        for name in ("ana@bücher.example", "ben@BÜCHER.example", f"eva@{BUCHER}"):
            assert client.post("/Users", json=user(name)).status_code == 201

    code, _, err = cli("sync", "BÜCHER.example")

    assert code == 0, err
    assert len(komeet.users()) == 3
    plans = cli.json("plans", "list", "--domain", BUCHER)
    assert [plan["domain"] for plan in plans] == [BUCHER]
    assert cli.json("plans", "list", "--domain", "Bücher.Example") == plans
    assert [folder.parent.name for folder in (tmp_path / "home" / "syncs").glob("*/*")] == [BUCHER]


def test_a_report_names_a_unicode_domain_in_both_forms(cli, tmp_path):
    from tests.support.exports import Audit, google_user, member

    audit = Audit(tmp_path, domain="Bücher.example", groups=["all@bücher.example"])
    _, summary = audit.run(
        cli,
        users=[google_user("1", "ana@bücher.example"), google_user("2", "eve@partner.example")],
        members={
            "all@bücher.example": [
                member("1", "ana@bücher.example"),
                member("2", "eve@partner.example"),
            ]
        },
    )

    assert summary["domain"] == BUCHER
    joiners = pd.read_csv(tmp_path / "out" / "joiners.csv")
    assert list(joiners["email"]) == [f"ana@{BUCHER}"]
    errors = pd.read_csv(tmp_path / "out" / "errors.csv")
    assert list(errors["email"]) == ["eve@partner.example"]
    assert f"{BUCHER} (bücher.example)" in errors["detail"][0]


# --preview: a new selection against today's, saved only when confirmed --------------------


@pytest.fixture
def previewing(workspace, komeet_env, komeet, monkeypatch, cli):
    """acme.com selecting all@acme.com in the Workspace of ``groups_directory``, and a
    Komeet holding ann's account and old.timer's (a managed account whose person left)."""
    from tests.support.google_workspace import ADMIN, groups_directory, komeet_accounts

    workspace(groups_directory()).env(monkeypatch)
    komeet_accounts(komeet)
    komeet.env(monkeypatch)
    code, _, err = cli(
        "domains", "add", "acme.com", "--source", "google", "--admin-email", ADMIN,
        "--group", "all@acme.com", "--max-deactivations", "5", "--max-deactivation-share", "0.5",
    )  # fmt: skip
    assert code == 0, err
    return komeet


class Terminal(io.StringIO):
    """Standard input on a terminal, holding what the user types."""

    def isatty(self) -> bool:
        return True


def groups_of(cli) -> list[str]:
    return cli.json("domains", "show", "acme.com")["groups"]


def test_preview_of_adding_a_group_saves_nothing_off_a_terminal(cli, previewing):
    code, out, err = cli("domains", "set", "acme.com", "--add-group", "sales@acme.com", "--preview")

    assert code == 1
    assert "groups proposed:  all@acme.com, sales@acme.com" in out
    assert "desired people:   2 -> 4 (+2)" in out
    assert "2 of them new:" in out and "dan.fox@acme.com: joiner, member of sales" in out
    assert "eve.kim@acme.com: joiner" in out
    # old.timer is a leaver today already: the new selection adds none.
    assert "Leavers (accounts to deactivate): 1 today, 1 with the proposed" in out
    assert "No guard would hold" in out
    assert "nothing saved; run the same command with --yes" in err
    assert groups_of(cli) == ["all@acme.com"]
    assert len(previewing.users()) == 2  # nothing sent to Komeet


def test_preview_shows_leavers_people_out_of_scope_and_the_guard(cli, previewing, monkeypatch):
    monkeypatch.setattr("sys.stdin", Terminal("n\n"))

    code, out, err = cli("domains", "set", "acme.com", "--group", "sales@acme.com", "--preview")

    assert code == 1 and "nothing saved" in err
    assert "Save this selection? [y/N]" in out
    assert "Leavers (accounts to deactivate): 1 today, 2 with the proposed" in out
    assert "ann.lee@acme.com: in none of the selected groups (sales@acme.com)" in out
    assert "Moving out of scope (desired today, in none of the proposed groups): 2:" in out
    assert "cat.day@acme.com" in out
    assert "A guard would HOLD" in out and "deactivation_budget" in out
    assert groups_of(cli) == ["all@acme.com"]


def test_preview_saves_when_confirmed(cli, previewing, monkeypatch):
    monkeypatch.setattr("sys.stdin", Terminal("y\n"))
    code, out, err = cli("domains", "set", "acme.com", "--add-group", "board@acme.com", "--preview")
    assert code == 0, err
    assert "Changed the configuration of acme.com" in out
    assert groups_of(cli) == ["all@acme.com", "board@acme.com"]

    saved = cli.json(
        "domains", "set", "acme.com", "--remove-group", "board@acme.com", "--preview", "--yes"
    )
    assert saved["saved"] is True and saved["groups"] == ["all@acme.com"]
    preview = saved["preview"]
    assert (preview["joiners"]["today"], preview["joiners"]["proposed"]) == (2, 1)  # cat, eve
    [eve] = preview["out_of_scope"]["first"]  # desired through board@, no longer
    assert eve["email"] == "eve.kim@acme.com" and preview["out_of_scope"]["added"] == 1


def test_add_with_preview(cli, workspace, komeet_env, komeet, monkeypatch):
    from tests.support.google_workspace import ADMIN, groups_directory

    workspace(groups_directory()).env(monkeypatch)
    komeet.env(monkeypatch)
    add = ["domains", "add", "acme.com", "--source", "google", "--admin-email", ADMIN,
           "--group", "eng@acme.com", "--preview"]  # fmt: skip

    code, out, err = cli(*add)
    assert code == 1 and "nothing saved" in err
    assert "groups today:     (not configured)" in out and "cat.day@acme.com: joiner" in out
    assert cli("domains", "list", "--json")[1].strip() == "[]"

    added = cli.json(*add, "--yes")
    assert added["saved"] is True and added["groups"] == ["eng@acme.com"]
    assert added["preview"]["joiners"]["added"] == 1


def test_yes_without_preview_is_refused(cli, komeet_env):
    code, _, err = cli("domains", "add", "acme.com", *GOOGLE, "--yes")

    assert code == 1 and "--yes confirms a --preview" in err
    assert cli("domains", "list", "--json")[1].strip() == "[]"


def test_preview_of_a_new_scim_domain_says_there_is_nothing_to_read(cli, komeet_env):
    code, _, err = cli("domains", "add", "globex.com", "--source", "scim", "--preview")

    assert code == 1 and "nothing to read for a new SCIM domain" in err
    assert "Traceback" not in err


def test_preview_of_a_scim_domain_reads_what_its_idp_pushed(
    cli, komeet_env, scim, komeet, monkeypatch
):
    komeet.env(monkeypatch)
    added = cli.json("domains", "add", "globex.com", "--source", "scim", "--group", "Staff")
    with scim.client("globex.com", secret=added["secret"]) as client:
        ids = {
            name: client.post("/Users", json=user(f"{name}@globex.com")).json()["id"]
            for name in ("ana", "ben", "eva")
        }
        for group, names in (("Staff", ["ana", "ben"]), ("Sales", ["eva"])):
            members = [{"value": ids[name]} for name in names]
            client.post(
                "/Groups", json={"schemas": [SCIM_GROUP], "displayName": group, "members": members}
            )

    saved = cli.json("domains", "set", "globex.com", "--add-group", "Sales", "--preview", "--yes")

    joiners = saved["preview"]["joiners"]
    assert (joiners["today"], joiners["proposed"], joiners["added"]) == (2, 3, 1)
    assert joiners["first"][0]["email"] == "eva@globex.com"
    assert saved["saved"] is True and saved["groups"] == ["Staff", "Sales"]
