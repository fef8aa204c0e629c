"""Komeet's service account for Google Workspace: its key file, the read-only scopes it is
authorised for by domain-wide delegation, and which Directory API endpoint it reads.

The key file is ``GOOGLE_SERVICE_ACCOUNT_FILE``; ``GOOGLE_DIRECTORY_API_ENDPOINT`` names
another endpoint than Google's (the emulator). A key's content never appears in a repr or a
message: it holds the private key.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.oauth2 import service_account

from komeet_sync.settings import is_http_url

KEY_FILE_ENV = "GOOGLE_SERVICE_ACCOUNT_FILE"
ENDPOINT_ENV = "GOOGLE_DIRECTORY_API_ENDPOINT"

# Read-only: the sync never writes to the customer's directory.
SCOPES = (
    "https://www.googleapis.com/auth/admin.directory.user.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.member.readonly",
)


class GoogleError(Exception):
    """Google could not be read; the message says what failed and what to do."""


class KeyFileError(GoogleError):
    """The service-account key file is missing or is not a key."""


@dataclass(frozen=True)
class ClientFile:
    """A JSON file Google Cloud console gives one of Komeet's clients: a service-account key,
    or an OAuth client's secrets. Its content never appears in a repr or a message."""

    path: str
    info: dict[str, Any] = field(repr=False)

    @property
    def client_id(self) -> str:
        return str(self.info["client_id"])

    @property
    def token_uri(self) -> str:
        return str(self.info["token_uri"])


def read_client_file(
    variable: str, where: str, what: str, advice: str, error: type[GoogleError]
) -> Any:
    """The JSON of the file ``variable`` names (``what`` it must be), or ``error`` saying
    why it cannot be read and, when it is not JSON, what to give (``advice``)."""
    try:
        return json.loads(Path(where).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{variable}={where}: no such file") from None
    except IsADirectoryError:
        raise error(f"{variable}={where}: is a folder, not {what}") from None
    except (ValueError, UnicodeDecodeError):
        raise error(f"{variable}={where} is not JSON; {advice}") from None


@dataclass(frozen=True)
class ServiceAccountKey(ClientFile):
    """Komeet's service-account key file (JSON): it holds the private key."""

    @classmethod
    def load(cls, path: str | Path | None = None) -> ServiceAccountKey:
        """The key file at ``path``, else at ``GOOGLE_SERVICE_ACCOUNT_FILE``."""
        where = str(path or os.environ.get(KEY_FILE_ENV) or "")
        if not where:
            raise KeyFileError(
                f"set {KEY_FILE_ENV} to the path of Komeet's service-account key file (JSON), "
                "the one whose client id the customer authorised for domain-wide delegation"
            )
        info = read_client_file(
            KEY_FILE_ENV,
            where,
            "a key file",
            "give the JSON key of the service account (Google Cloud console > IAM > Service "
            "accounts > Keys)",
            KeyFileError,
        )
        missing = [
            name
            for name in ("type", "client_email", "client_id", "private_key", "token_uri")
            if not isinstance(info, dict) or not info.get(name)
        ]
        if missing or info.get("type") != "service_account":
            raise KeyFileError(
                f"{KEY_FILE_ENV}={where} is not a service-account key file (missing: "
                f"{', '.join(missing) or 'type service_account'}); give the JSON key of the "
                "service account (Google Cloud console > IAM > Service accounts > Keys)"
            )
        return cls(where, info)

    def delegated(self, subject: str) -> service_account.Credentials:
        """Credentials acting as ``subject`` for the read-only scopes."""
        try:
            return service_account.Credentials.from_service_account_info(
                self.info, scopes=list(SCOPES), subject=subject
            )
        except (ValueError, KeyError) as exc:  # the private key does not parse
            raise KeyFileError(
                f"{KEY_FILE_ENV}={self.path}: its private key cannot be read "
                f"({type(exc).__name__}); download a new key for the service account"
            ) from None


def endpoint_from_environment() -> str | None:
    """``GOOGLE_DIRECTORY_API_ENDPOINT`` checked, or None for Google's own."""
    value = os.environ.get(ENDPOINT_ENV, "").strip()
    if not value:
        return None
    if not is_http_url(value):
        raise GoogleError(
            f"{ENDPOINT_ENV}={value!r} is not a URL; give one like http://127.0.0.1:8085, "
            "or unset it to use Google"
        )
    return value.rstrip("/") + "/"
