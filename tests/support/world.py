"""A world for the Dagster definitions: acme.com on the Google Workspace emulator, SCIM
domains pushed by their IdP to our endpoint, Komeet the scim2-server stand-in, and the
environment pointing at all of them, as ``dagster dev`` or the schedule would see them."""

from __future__ import annotations

from komeet_sync.emulators.directory import Directory
from komeet_sync.model.domain_config import DomainConfig
from komeet_sync.store.domains import DomainStore
from pipelines.definitions import defs
from tests.support.google_workspace import member
from tests.support.provisioning import person

ADMIN = "admin@acme.com"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
NAMES = ("anna.schmidt", "ben.weber", "clara.wagner")


def build_world(
    monkeypatch, tmp_path, workspace, komeet, scim, scim_domains=("globex.com",), guests=()
):
    """acme.com (Google, 6 people, and ``guests``: addresses of other domains in its group)
    and SCIM domains (3 people pushed each, by their IdP to our endpoint), an empty Komeet,
    and the environment pointing at all of them."""
    monkeypatch.setenv("KOMEET_SYNC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KOMEET_SYNC_DATABASE_URL", str(scim.engine.url))
    people = [person(0, ADMIN), *(person(i) for i in range(1, 6))]
    outsiders = [{"id": f"guest{n}", "email": email} for n, email in enumerate(guests)]
    directory = Directory.from_exports(
        people,
        {"all@acme.com": [member(user) for user in people] + [member(o) for o in outsiders]},
        admins=[ADMIN],
    )
    workspace(directory).env(monkeypatch)
    komeet.env(monkeypatch)
    DomainStore(scim.engine).add(
        DomainConfig.create("acme.com", "google", admin_email=ADMIN, groups=["all@acme.com"])
    )
    for domain in scim_domains:
        push_directory(scim, domain)
    return people


def push_directory(scim, domain, names=NAMES):
    """What an IdP pushes for a domain of ``names`` (3 people by default) in the group
    "Komeet Users"."""
    secret = scim.add_domain(domain, groups=["Komeet Users"])
    with scim.client(domain, secret) as idp:
        ids = []
        for name in names:
            given, family = name.split(".")
            created = idp.post(
                "/Users",
                json={
                    "schemas": [USER],
                    "userName": f"{name}@{domain}",
                    "externalId": f"entra-{name}",
                    "name": {"givenName": given.title(), "familyName": family.title()},
                    "active": True,
                },
            )
            assert created.status_code == 201, created.text
            ids.append(created.json()["id"])
        group = idp.post(
            "/Groups",
            json={
                "schemas": [GROUP],
                "displayName": "Komeet Users",
                "members": [{"value": value} for value in ids],
            },
        )
        assert group.status_code == 201, group.text
    scim.flush_log()


def run(instance, domain, run_config=None):
    job = defs.resolve_job_def("sync_domain")
    return job.execute_in_process(
        instance=instance, partition_key=domain, run_config=run_config, raise_on_error=False
    )
