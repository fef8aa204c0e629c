"""A domain's sync: read its directory whole, read Komeet's accounts, reconcile, and write
the reports. ``dry_run`` stops there: nothing is sent to Komeet."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from komeet_sync import settings
from komeet_sync.audit import read_komeet, write_reports
from komeet_sync.backoff import Backoff
from komeet_sync.domain_config import DomainConfig, SourceKind
from komeet_sync.frames import DirectorySnapshot
from komeet_sync.google_directory import (
    ATTEMPTS_ENV,
    BACKOFF_ENV,
    DirectoryReader,
    GoogleError,
    ServiceAccountKey,
    endpoint_from_environment,
)
from komeet_sync.reconcile import Reconciliation, reconcile


@dataclass(frozen=True)
class SourceRead:
    """A complete read of a domain's source, and what it took."""

    snapshot: DirectorySnapshot
    started_at: datetime  # the snapshot's time: nothing older than this is in it
    seconds: float
    headline: str  # what was read, in words
    details: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class DryRun:
    read: SourceRead
    result: Reconciliation
    out: Path

    def summary(self) -> dict[str, object]:
        return self.result.summary() | {
            "snapshot": {
                "source": self.read.snapshot.source.value,
                "started_at": self.read.started_at.isoformat(),
                "seconds": round(self.read.seconds, 3),
            }
            | self.read.details,
            "out": str(self.out),
        }


def google_reader(config: DomainConfig) -> DirectoryReader:
    """A reader for a Google domain, configured from the environment:
    ``GOOGLE_SERVICE_ACCOUNT_FILE``, ``GOOGLE_DIRECTORY_API_ENDPOINT`` and the retry
    retry settings ``KOMEET_SYNC_GOOGLE_ATTEMPTS`` and ``KOMEET_SYNC_GOOGLE_BACKOFF``."""
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
        backoff=Backoff.from_environment(ATTEMPTS_ENV, BACKOFF_ENV, GoogleError),
    )


def read_google(config: DomainConfig, reader: DirectoryReader) -> SourceRead:
    extract = reader.extract(config.domains, config.groups)
    return SourceRead(
        snapshot=extract.snapshot,
        started_at=extract.started_at,
        seconds=extract.seconds,
        headline=(
            f"Read {config.domain} from Google Workspace: {extract.users:,} users and "
            f"{extract.members:,} group members in {extract.requests:,} requests"
        ),
        details={"requests": extract.requests, "users": extract.users, "members": extract.members},
    )


def read_scim(config: DomainConfig, engine: Engine) -> SourceRead:
    from komeet_sync.staging import read_staging

    started = datetime.now(UTC)
    snapshot = read_staging(engine, config)
    users = len(snapshot.users)
    inactive = int((~snapshot.users["active"]).sum())
    return SourceRead(
        snapshot=snapshot,
        started_at=started,
        seconds=(datetime.now(UTC) - started).total_seconds(),
        headline=(
            f"Read {config.domain} from the SCIM staging tables: {users:,} users "
            f"({inactive:,} inactive or deleted) and {len(snapshot.members):,} group members"
        ),
        details={"users": users, "members": len(snapshot.members)},
    )


def reports_folder(config: DomainConfig, read: SourceRead) -> Path:
    stamp = read.started_at.strftime("%Y%m%dT%H%M%SZ")
    return settings.home() / "reports" / config.domain / stamp


def dry_run(
    config: DomainConfig,
    read_source: Callable[[], SourceRead],
    komeet_file: Path,
    out: Path | None = None,
    *,
    last_good_desired: int | None = None,
) -> DryRun:
    """Read the source, reconcile against the Komeet accounts in ``komeet_file``, write
    the reports.

    The Komeet file is read first, so that a bad one fails before a long extraction.
    """
    komeet, komeet_errors = read_komeet(komeet_file)
    read = read_source()
    result = reconcile(
        read.snapshot,
        komeet,
        config,
        last_good_desired=last_good_desired,
        komeet_errors=komeet_errors,
    )
    run = DryRun(read, result, out or reports_folder(config, read))
    write_reports(result, run.out, run.summary())
    return run
