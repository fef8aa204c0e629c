"""Secrets komeet-sync keeps to use them again, sealed at rest: never in clear in the
database. A domain's notification URLs (an Apprise URL holds a webhook token or an SMTP
password) and the refresh token of a Google admin's OAuth consent (``store.authorizations``).

Sealed with Fernet (AES-128-CBC and HMAC-SHA256, from ``cryptography``). The keys are
``KOMEET_SYNC_SECRET_KEY`` when set (every machine that reads the database must have the
same ones: Dagster's daemon, the worker, the CLI). It may hold several keys separated by
commas, newest first: a value is sealed under the first and opened with any of them
(``MultiFernet``), so a key is rotated by putting the new one first, then dropping the old
one once ``reseal`` has sealed every stored value again under the new one.

Without ``KOMEET_SYNC_SECRET_KEY``, notification URLs fall back to a key made once in
``KOMEET_SYNC_HOME/secret.key``, readable by its owner only; a refresh token does not
(``require_key``): it grants reading a customer's whole directory, so its key must be one an
operator chose and keeps apart from the database's folder. A value sealed under other keys
cannot be opened: the error says which variable to set, and the value is kept.
"""

from __future__ import annotations

import os

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from komeet_sync import settings

KEY_FILE = "secret.key"
NEW_KEY = (
    "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`"
)


class SealError(ValueError):
    """A sealed value that these keys cannot open, or a key that is not one."""


class MissingKey(SealError):
    """A secret that is sealed only under a key an operator set, and none is set."""


def seal(text: str, *, require_key: bool = False) -> str:
    """``text`` sealed under the first key (``require_key``: refused without
    ``KOMEET_SYNC_SECRET_KEY``, MissingKey)."""
    return _fernet(require_key).encrypt(text.encode()).decode("ascii")


def unseal(token: str, *, require_key: bool = False) -> str:
    """The text sealed in ``token``, opened with any of the keys."""
    fernet = _fernet(require_key)
    try:
        return fernet.decrypt(token.encode("ascii")).decode()
    except (InvalidToken, ValueError):
        raise SealError(
            f"a secret in the database was sealed under another key than {_key_source()}'s: "
            f"set {settings.SECRET_KEY_ENV} to the key it was sealed with (the "
            f"{KEY_FILE} of the machine that stored it), or store it again"
        ) from None


def reseal(token: str, *, require_key: bool = False) -> str | None:
    """``token`` sealed again under the first key (a rotation's second step); None when the
    first key sealed it already."""
    keys = _keys(require_key)
    fernet = MultiFernet(keys)
    try:
        keys[0].decrypt(token.encode("ascii"))
        return None
    except (InvalidToken, ValueError):
        pass
    try:
        return fernet.rotate(token.encode("ascii")).decode("ascii")
    except (InvalidToken, ValueError):
        unseal(token, require_key=require_key)  # raises the error that names the key
        raise


def check_keys(*, require_key: bool = False) -> None:
    """Refuse now (MissingKey, SealError) what ``seal`` would refuse later."""
    _keys(require_key)


def _fernet(require_key: bool) -> MultiFernet:
    return MultiFernet(_keys(require_key))


def _keys(require_key: bool) -> list[Fernet]:
    """The keys, newest first."""
    keys = settings.secret_keys()
    if not keys:
        if require_key:
            raise MissingKey(
                f"set {settings.SECRET_KEY_ENV} to a Fernet key first, the same on every "
                f"machine that syncs (make one with {NEW_KEY}): a refresh token is stored only "
                "sealed under a key an operator keeps"
            )
        keys = (_key_file_key(),)
    fernets: list[Fernet] = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key.encode("ascii")))
        except (ValueError, UnicodeEncodeError):
            which = f"key {position} of {_key_source()}" if len(keys) > 1 else _key_source()
            raise SealError(
                f"{which} is not a key: give a Fernet key (32 url-safe base64-encoded "
                f"bytes), such as one made by {NEW_KEY}"
            ) from None
    return fernets


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
    if settings.secret_keys():
        return settings.SECRET_KEY_ENV
    return str(settings.home() / KEY_FILE)
