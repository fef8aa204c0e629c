"""Throwaway service-account keys for the Directory API emulator: what a Google Cloud
service account's JSON key holds, with a fresh RSA key, its ``token_uri`` the emulator's."""

from __future__ import annotations

import secrets
from typing import Any


def serialization():
    """cryptography's key serialization, imported when a key is made or read."""
    from cryptography.hazmat.primitives import serialization

    return serialization


def service_account_key(token_uri: str, name: str = "komeet-sync") -> dict[str, Any]:
    """A throwaway service-account key file's content (a fresh 2048-bit RSA key) whose
    ``token_uri`` is the emulator's: for tests, benchmarks and the demo, never for Google."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    encoding = serialization()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        encoding.Encoding.PEM,
        encoding.PrivateFormat.PKCS8,
        encoding.NoEncryption(),
    ).decode()
    client_id = str(100_000_000_000_000_000_000 + secrets.randbelow(10**20))
    return {
        "type": "service_account",
        "project_id": "komeet-emulated",
        "private_key_id": secrets.token_hex(20),
        "private_key": pem,
        "client_email": f"{name}@komeet-emulated.iam.gserviceaccount.com",
        "client_id": client_id,
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
    }
