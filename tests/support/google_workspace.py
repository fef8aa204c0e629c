"""A Google Workspace for tests: the Directory API emulator on loopback, a throwaway
service-account key authorised for domain-wide delegation, and readers that use them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests

from komeet_sync.backoff import Backoff
from komeet_sync.emulators.directory import Directory
from komeet_sync.emulators.directory_api import READ_ONLY_SCOPES, DirectoryEmulator
from komeet_sync.emulators.service_account import service_account_key
from komeet_sync.sources.google.credentials import ServiceAccountKey
from komeet_sync.sources.google.reader import DirectoryReader

FAST = Backoff(attempts=4, base=0.001, cap=0.004)


@dataclass
class Workspace:
    emulator: DirectoryEmulator
    key_file: Path
    key: dict[str, Any]
    waits: list[float] = field(default_factory=list)  # the backoff waits readers asked for

    def reader(self, subject: str, **options: Any) -> DirectoryReader:
        options.setdefault("backoff", FAST)
        return DirectoryReader(
            ServiceAccountKey.load(self.key_file),
            subject,
            endpoint=self.emulator.url,
            sleep=self.waits.append,
            seed=7,
            **options,
        )

    def oauth_env(self, monkeypatch, secret_key: str | None = None) -> Path:
        """Komeet's OAuth client (a Desktop app client of this emulator) and the key that
        seals refresh tokens, as an operator sets them; the client-secrets file."""
        from cryptography.fernet import Fernet

        client_file = self.key_file.with_name("oauth-client.json")
        client_file.write_text(json.dumps(self.emulator.oauth_client()))
        monkeypatch.setenv("GOOGLE_OAUTH_CLIENT_FILE", str(client_file))
        monkeypatch.setenv("KOMEET_SYNC_SECRET_KEY", secret_key or Fernet.generate_key().decode())
        return client_file

    def env(self, monkeypatch) -> None:
        """Point the CLI at this workspace, as an operator would, with quick retries."""
        monkeypatch.setenv("GOOGLE_SERVICE_ACCOUNT_FILE", str(self.key_file))
        monkeypatch.setenv("GOOGLE_DIRECTORY_API_ENDPOINT", self.emulator.url)
        monkeypatch.setenv("KOMEET_SYNC_GOOGLE_ATTEMPTS", str(FAST.attempts))
        monkeypatch.setenv("KOMEET_SYNC_GOOGLE_BACKOFF", str(FAST.base))


def start_workspace(
    directory: Directory, folder: Path, key: dict[str, Any] | None, scopes=READ_ONLY_SCOPES
) -> Workspace:
    emulator = DirectoryEmulator(directory).start()
    # One RSA key per session: its token_uri is rewritten for each emulator.
    info = dict(key or service_account_key(emulator.token_uri))
    info["token_uri"] = emulator.token_uri
    emulator.register_service_account(info)
    emulator.authorise(info["client_id"], scopes)
    key_file = folder / "service-account.json"
    key_file.write_text(json.dumps(info))
    return Workspace(emulator, key_file, info)


def acme_example(admin: str) -> Directory:
    """The bundled acme.com example (``komeet_sync/examples/acme``) as a directory, ``admin``
    its super admin."""
    from tests.support import EXAMPLES

    return Directory.from_exports(
        json.loads((EXAMPLES / "acme" / "users.json").read_text()),
        json.loads((EXAMPLES / "acme" / "members.json").read_text()),
        admins=[admin],
    )


def consent(address: str, email: str, allow: bool = True) -> str:
    """An admin's answer on the emulator's consent page at ``address``, by plain HTTP as a
    browser posts the form: the address the browser is redirected to."""
    page = requests.get(address, timeout=10)
    page.raise_for_status()
    assert "Allow" in page.text and "admin.directory.user.readonly" in page.text
    form = dict(parse_qsl(urlsplit(address).query))
    form |= {"email": email, "decision": "allow" if allow else "deny"}
    answer = requests.post(address.split("?")[0], data=form, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


def consent_address(printed: str) -> str:
    """The consent page's address in what ``google authorize`` printed."""
    found = re.search(r"http://\S+/o/oauth2/auth\?\S+", printed)
    assert found, printed
    return found.group()


def user(number: int, email: str, **fields: Any) -> dict[str, Any]:
    given, _, family = email.split("@")[0].partition(".")
    return {
        "id": str(number),
        "primaryEmail": email,
        "name": {"givenName": given.title(), "familyName": family.title() or "Person"},
        **fields,
    }


def member(resource: dict[str, Any], kind: str = "USER") -> dict[str, Any]:
    return {
        "id": resource["id"],
        "email": resource.get("primaryEmail", resource.get("email")),
        "type": kind,
    }


ADMIN = "alice.martin@acme.com"


def groups_directory() -> Directory:
    """A small Workspace of acme.com to choose groups from: All Staff (ann, and Engineering
    nested), Engineering (cat, bob suspended, zed without a family name), Sales (dan, eve,
    a guest of partner.example), Board (eve); alice, the admin, is in none."""
    users = [
        user(1, ADMIN, isAdmin=True),
        user(2, "ann.lee@acme.com"),
        user(3, "bob.ray@acme.com", suspended=True),
        user(4, "cat.day@acme.com"),
        user(5, "dan.fox@acme.com"),
        user(6, "eve.kim@acme.com"),
        {"id": "7", "primaryEmail": "zed@acme.com", "name": {"givenName": "Zed"}},
    ]
    ann, bob, cat, dan, eve, zed = users[1:]
    guest = {"id": "90", "email": "guest@partner.example", "type": "USER"}

    def group(number: int, email: str, name: str, members: list) -> dict[str, Any]:
        return {"id": f"g{number}", "email": email, "name": name, "members": members}

    engineering = group(2, "eng@acme.com", "Engineering", [member(cat), member(bob), member(zed)])
    return Directory(
        users=users,
        groups=[
            group(1, "all@acme.com", "All Staff", [member(ann), member(engineering, "GROUP")]),
            engineering,
            group(3, "sales@acme.com", "Sales", [member(dan), member(eve), guest]),
            group(4, "board@acme.com", "Board", [member(eve)]),
        ],
    )


def komeet_accounts(tenant) -> None:
    """Komeet's accounts for ``groups_directory``: ann's (managed), and old.timer's, a
    managed account whose person left."""
    tenant.add(
        "ann.lee@acme.com",
        externalId="2",
        active=True,
        name={"givenName": "Ann", "familyName": "Lee"},
    )
    tenant.add(
        "old.timer@acme.com",
        externalId="99",
        active=True,
        name={"givenName": "Old", "familyName": "Timer"},
    )
