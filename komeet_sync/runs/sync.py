"""A domain's sync: read its directory whole, read Komeet's accounts, reconcile, write the
reports, store the plan and apply it unless a guard holds it. ``dry_run`` stops before
storing the plan: nothing is sent to Komeet."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine

from komeet_sync import settings
from komeet_sync.backoff import Backoff
from komeet_sync.engine.reconcile import Reconciliation, reconcile
from komeet_sync.komeet.apply import DEFAULT_CONCURRENCY, ApplyResult, Mode, NotApplied, apply_plan
from komeet_sync.komeet.client import KomeetClient
from komeet_sync.model.domain_config import DomainConfig, SourceKind
from komeet_sync.model.frames import DirectorySnapshot
from komeet_sync.runs.audit import read_komeet, write_reports
from komeet_sync.sources.google.reader import (
    ATTEMPTS_ENV,
    BACKOFF_ENV,
    DirectoryReader,
    GoogleError,
    ServiceAccountKey,
    endpoint_from_environment,
)
from komeet_sync.sources.scim import resources as scim_resources
from komeet_sync.store.ledger import Ledger
from komeet_sync.store.plans import PlanStore, StoredPlan


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


def google_reader(
    config: DomainConfig, key_file: str | None = None, endpoint: str | None = None
) -> DirectoryReader:
    """A reader for a Google domain. The key file and the endpoint, unless given, come from
    ``GOOGLE_SERVICE_ACCOUNT_FILE`` and ``GOOGLE_DIRECTORY_API_ENDPOINT``; the retry
    settings from ``KOMEET_SYNC_GOOGLE_ATTEMPTS`` and ``KOMEET_SYNC_GOOGLE_BACKOFF``."""
    if config.source is not SourceKind.GOOGLE:
        raise GoogleError(f"{config.domain} syncs by SCIM, not from Google Workspace")
    if not config.admin_email:
        raise GoogleError(
            f"{config.domain} has no admin email: the delegation needs the super admin to act "
            "as; configure it again with --admin-email"
        )
    return DirectoryReader(
        ServiceAccountKey.load(key_file),
        config.admin_email,
        endpoint=endpoint or endpoint_from_environment(),
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
    from komeet_sync.sources.scim.staging import read_staging

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


FAILED_ACTION = "action_failed"  # the errors report's error for an action Komeet refused
KomeetAccounts = tuple[pd.DataFrame, pd.DataFrame]  # KOMEET_USERS, and READ_ERRORS


def komeet_file_reader(path: Path) -> Callable[[], KomeetAccounts]:
    """Komeet's accounts from an export of its SCIM API (GET /Users), read at once so that
    a bad file fails before a long extraction."""
    accounts = read_komeet(path)
    return lambda: accounts


def komeet_api_reader(client: KomeetClient, config: DomainConfig) -> Callable[[], KomeetAccounts]:
    """The domain's Komeet accounts, read from the SCIM API when called (``komeet_users``)."""
    return lambda: komeet_users(client, config)


def komeet_users(client: KomeetClient, config: DomainConfig) -> KomeetAccounts:
    """The domain's accounts in Komeet as the engine's frame (KOMEET_USERS), and those that
    could not be read. Accounts outside the domain and its alias domains are left out by
    the engine; unmanaged ones are kept, so that a person can be matched to them, and are
    never touched otherwise (ARCHITECTURE.md, "Situations")."""
    return scim_resources.komeet_users(client.list_users(config.domains))


def dry_run(
    config: DomainConfig,
    read_source: Callable[[], SourceRead],
    read_komeet_accounts: Callable[[], KomeetAccounts],
    out: Path | None = None,
    *,
    last_good_desired: int | None = None,
) -> DryRun:
    """Read the source and Komeet's accounts, reconcile, write the reports."""
    read = read_source()
    komeet, komeet_errors = read_komeet_accounts()
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


@dataclass(frozen=True)
class SyncRun:
    """A sync that went as far as the guards let it."""

    run: DryRun
    plan: StoredPlan
    applied: ApplyResult | None  # None: nothing was sent, ``stopped`` says why
    stopped: NotApplied | None

    def summary(self) -> dict[str, object]:
        return self.run.summary() | {
            "applied": self.applied.summary() if self.applied else None,
            "stopped": {"kind": self.stopped.kind, "detail": str(self.stopped)}
            if self.stopped
            else None,
        }


def sync(
    config: DomainConfig,
    read_source: Callable[[], SourceRead],
    client: KomeetClient,
    engine: Engine,
    out: Path | None = None,
    *,
    last_good_desired: int | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    mode: Mode | None = None,
    trigger: str = "sync",
    progress: Callable[[int, int], None] | None = None,
) -> SyncRun:
    """Extract, reconcile, plan and apply one domain.

    Komeet's discovery is read first, so that a wrong URL or token fails before a long
    extraction; its accounts are read after the source, as late as possible. The plan is
    stored whatever happens next; the shrink guard compares with the desired count of the
    last plan that was applied in full, unless ``last_good_desired`` is given.
    """
    client.capabilities()
    plans = PlanStore(engine)
    if last_good_desired is None:
        last_good_desired = plans.last_good_desired(config.domain)
    run = dry_run(
        config,
        read_source,
        komeet_api_reader(client, config),
        out,
        last_good_desired=last_good_desired,
    )
    stored = plans.save(
        run.result.plan,
        source=run.read.snapshot.source.value,
        snapshot_at=run.read.started_at,
        desired=run.result.stats["desired"],
        reports=str(run.out),
    )
    try:
        applied = apply_plan(
            engine,
            stored.plan_id,
            client,
            concurrency=concurrency,
            mode=mode,
            trigger=trigger,
            again=True,
            progress=progress,
        )
    except NotApplied as stopped:
        return SyncRun(run, stored, None, stopped)
    write_results(engine, applied, run.out)
    return SyncRun(run, stored, applied, None)


def write_results(engine: Engine, applied: ApplyResult, out: Path) -> Path:
    """Every action's outcome (the ledger rows of the application) beside the plan's
    reports, as ``results.csv`` and ``results.parquet``: the provisioning results. The
    actions that failed are added to the errors report there (ARCHITECTURE.md, "Reports":
    errors include failed actions)."""
    entries = Ledger(engine).entries(applied.plan_id, applied.application_id)
    out.mkdir(parents=True, exist_ok=True)
    entries.to_csv(out / "results.csv", index=False)
    entries.to_parquet(out / "results.parquet", index=False)
    failed = entries[entries["status"] == "failed"]
    errors_file = out / "errors.parquet"
    if len(failed) and errors_file.exists():
        errors = pd.read_parquet(errors_file)
        errors = errors[errors["error"] != FAILED_ACTION]  # an earlier apply's, replaced
        added = pd.DataFrame(
            {
                "source": "komeet",
                "account_id": failed["komeet_id"],
                "email": failed["user_name"],
                "error": FAILED_ACTION,
                "detail": failed["outcome"],
                "reason": failed["action"] + " failed; see results.csv for the response",
            }
        ).astype(errors.dtypes.to_dict())
        errors = pd.concat([errors, added], ignore_index=True)
        errors.to_csv(out / "errors.csv", index=False)
        errors.to_parquet(errors_file, index=False)
    return out / "results.csv"
