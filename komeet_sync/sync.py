"""A domain's sync: read its directory whole, read Komeet's accounts, reconcile, and write
the reports. ``dry_run`` stops there: nothing is sent to Komeet."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from komeet_sync import settings
from komeet_sync.audit import read_komeet, write_reports
from komeet_sync.domain_config import DomainConfig, SourceKind
from komeet_sync.google_directory import (
    Backoff,
    DirectoryReader,
    GoogleError,
    GoogleExtract,
    ServiceAccountKey,
    endpoint_from_environment,
)
from komeet_sync.reconcile import Reconciliation, reconcile


@dataclass(frozen=True)
class DryRun:
    extract: GoogleExtract
    result: Reconciliation
    out: Path

    def summary(self) -> dict[str, object]:
        return self.result.summary() | {
            "snapshot": {
                "source": "google",
                "started_at": self.extract.started_at.isoformat(),
                "seconds": round(self.extract.seconds, 3),
                "requests": self.extract.requests,
                "users": self.extract.users,
                "members": self.extract.members,
            },
            "out": str(self.out),
        }


def google_reader(config: DomainConfig) -> DirectoryReader:
    """A reader for a Google domain, configured from the environment:
    ``GOOGLE_SERVICE_ACCOUNT_FILE``, ``GOOGLE_DIRECTORY_API_ENDPOINT`` and the retry
    settings of ``Backoff.from_environment``."""
    if config.source is not SourceKind.GOOGLE:
        raise GoogleError(f"{config.domain} syncs by SCIM, not from Google Workspace")
    if not config.admin_email:
        raise GoogleError(
            f"{config.domain} has no admin email: the delegation needs the super admin to act "
            "as; configure it again with --admin-email"
        )
    return DirectoryReader(
        ServiceAccountKey.load(),
        config.admin_email,
        endpoint=endpoint_from_environment(),
        backoff=Backoff.from_environment(),
    )


def reports_folder(config: DomainConfig, extract: GoogleExtract) -> Path:
    stamp = extract.started_at.strftime("%Y%m%dT%H%M%SZ")
    return settings.home() / "reports" / config.domain / stamp


def dry_run(
    config: DomainConfig,
    reader: DirectoryReader,
    komeet_file: Path,
    out: Path | None = None,
    *,
    last_good_desired: int | None = None,
) -> DryRun:
    """Extract, reconcile against the Komeet accounts in ``komeet_file``, write the reports.

    The Komeet file is read first, so that a bad one fails before a long extraction.
    """
    komeet, komeet_errors = read_komeet(komeet_file)
    extract = reader.extract(config.domains, config.groups)
    result = reconcile(
        extract.snapshot,
        komeet,
        config,
        last_good_desired=last_good_desired,
        komeet_errors=komeet_errors,
    )
    run = DryRun(extract, result, out or reports_folder(config, extract))
    write_reports(result, run.out, run.summary())
    return run
