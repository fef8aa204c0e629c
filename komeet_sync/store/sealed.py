"""Secrets komeet-sync keeps to use them again (a domain's notification URLs: an Apprise URL
holds a webhook token or an SMTP password), sealed at rest: never in clear in the database.

Sealed with Fernet (AES-128-CBC and HMAC-SHA256, from ``cryptography``) under one key:
``KOMEET_SYNC_SECRET_KEY`` when set (every machine that reads the database must have the
same one: Dagster's daemon, the worker, the CLI), else a key made once in
``KOMEET_SYNC_HOME/secret.key``, readable by its owner only. A value sealed under another
key cannot be opened: the error says which variable to set, and the value is kept.
"""

from __future__ import annotations

import os

from cryptography.fernet import Fernet, InvalidToken

from komeet_sync import settings

KEY_FILE = "secret.key"


class SealError(ValueError):
    """A sealed value that this key cannot open, or a key that is not one."""


def seal(text: str) -> str:
    return _fernet().encrypt(text.encode()).decode("ascii")


def unseal(token: str) -> str:
    fernet = _fernet()
    try:
        return fernet.decrypt(token.encode("ascii")).decode()
    except (InvalidToken, ValueError):
        raise SealError(
            f"a secret in the database was sealed under another key than {_key_source()}'s: "
            f"set {settings.SECRET_KEY_ENV} to the key it was sealed with (the "
            f"{KEY_FILE} of the machine that stored it), or store it again"
        ) from None


def _fernet() -> Fernet:
    key = settings.secret_key()
    if key is None:
        key = _key_file_key()
    try:
        return Fernet(key.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise SealError(
            f"{_key_source()} is not a key: give a Fernet key (32 url-safe base64-encoded "
            "bytes), such as one made by `python -c 'from cryptography.fernet import "
            "Fernet; print(Fernet.generate_key().decode())'`"
        ) from None


def _key_file_key() -> str:
    path = settings.home() / KEY_FILE
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written whole under another name, then linked: a second process making one at the
    # same moment keeps the first one's, and no process reads a half-written key.
    draft = path.with_name(f"{KEY_FILE}.{os.getpid()}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as file:
        file.write(Fernet.generate_key().decode("ascii"))
    try:
        os.link(draft, path)
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return path.read_text(encoding="ascii").strip()


def _key_source() -> str:
    if settings.secret_key() is not None:
        return settings.SECRET_KEY_ENV
    return str(settings.home() / KEY_FILE)
