"""`komeet-sync sync DOMAIN --person EMAIL` as an admin runs it: one person read from the
source (the Directory API emulator, without listing the directory; the SCIM staging
tables), the Komeet accounts that could match read by SCIM filters, decided and applied."""

from __future__ import annotations

from komeet_sync.emulators.directory import Directory
from tests.support.google_workspace import member
from tests.support.provisioning import DOMAIN, GROUP, account_for, person

ADMIN = "admin@acme.com"


def served(cli, workspace, monkeypatch, people, outside=(), *flags: str):
    """acme.com on the emulator, ``people`` in its selected group and ``outside`` in none,
    configured through the CLI; the emulator."""
    directory = Directory.from_exports(
        [*people, *outside], {GROUP: [member(user) for user in people]}, admins=[ADMIN]
    )
    started = workspace(directory)
    started.env(monkeypatch)
    code, _, err = cli("domains", "add", DOMAIN, "--source", "google", "--admin-email", ADMIN,
                       "--group", GROUP, *flags)  # fmt: skip
    assert code == 0, err
    return started.emulator


def test_one_google_person_is_created_alone_without_listing_the_directory(
    cli, acme, komeet, workspace, monkeypatch
):
    people, _ = acme
    emulator = served(cli, workspace, monkeypatch, people)
    emulator.reset()

    code, out, err = cli("sync", DOMAIN, "--person", "USER00003@acme.com")

    assert code == 0, err
    assert out.splitlines()[0].startswith("user00003@acme.com: joiner -> create")
    assert "Applied plan_" in out and "1 actions" in out
    assert sorted(komeet.by_user_name()) == ["user00003@acme.com"]
    listings = [call for call in emulator.calls if call.method == "users.list"]
    assert all(call.params.get("query") for call in listings)
    assert not any(call.method == "members.list" and call.params.get("maxResults") != "1"
                   for call in emulator.calls)  # fmt: skip

    code, out, err = cli("sync", DOMAIN, "--person", "user00003@acme.com")
    assert code == 0, err
    assert "user00003@acme.com: unchanged, nothing to do" in out


def test_a_dry_run_sends_nothing_and_an_unknown_address_is_said_so(cli, acme, komeet):
    people, serve = acme
    serve(people)

    code, out, err = cli("sync", DOMAIN, "--person", "user00001@acme.com", "--dry-run")
    assert code == 0, err
    assert "joiner -> create" in out and "Dry run: nothing was sent" in out
    assert komeet.by_user_name() == {}

    code, out, err = cli("sync", DOMAIN, "--person", "nobody@acme.com")
    assert code == 0, err
    assert "Nobody of acme.com is known by nobody@acme.com" in out


def test_a_person_in_no_selected_group_is_left_out_and_their_account_deactivated(
    cli, acme, komeet, workspace, monkeypatch
):
    people, _ = acme
    outsider = person(9)
    served(cli, workspace, monkeypatch, people, [outsider], "--max-deactivation-share", "1")
    komeet.add(**account_for(outsider))
    for user in people:
        komeet.add(**account_for(user))
    assert cli("sync", DOMAIN)[0] == 0  # the whole sync: the outsider's account deactivated
    komeet.add(**account_for(person(10)))  # a leaver the whole sync has not seen

    code, out, err = cli("sync", DOMAIN, "--person", "user00010@acme.com")

    assert code == 0, err
    assert "user00010@acme.com: leaver -> deactivate" in out
    assert komeet.by_user_name()["user00010@acme.com"]["active"] is False


def test_mistakes_are_named(cli, acme):
    people, serve = acme
    serve(people)

    code, _, err = cli("sync", DOMAIN, "--person", "not an address")
    assert code == 1
    assert "--person 'not an address'" in err and "Give the person's email address" in err
    assert "Traceback" not in err

    code, _, err = cli("sync", DOMAIN, "--person", "a@acme.com", "--out", "x")
    assert code == 1 and "--out goes with a whole sync, not with --person" in err


def test_one_scim_person_is_created_from_staging(cli, komeet, scim, monkeypatch, tmp_path):
    from tests.support.world import push_directory

    monkeypatch.setenv("KOMEET_SYNC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KOMEET_SYNC_DATABASE_URL", str(scim.engine.url))
    komeet.env(monkeypatch)
    push_directory(scim, "globex.com")

    code, out, err = cli("sync", "globex.com", "--person", "ben.weber@globex.com")

    assert code == 0, err
    assert out.startswith("ben.weber@globex.com: joiner -> create")
    assert sorted(komeet.by_user_name()) == ["ben.weber@globex.com"]
