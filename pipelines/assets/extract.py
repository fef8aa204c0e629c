"""Reading each domain's directory and its Komeet accounts (group ``extract``)."""

import dagster as dg

from komeet_sync.model.domain_config import SourceKind
from komeet_sync.runs.steps import KomeetRead, read_komeet
from komeet_sync.runs.sync import SourceRead, read_google, read_scim

from ..metadata import frame_metadata
from ..partitions import domains
from ..resources import DatabaseResource, GoogleResource, KomeetResource


def _read_metadata(read: SourceRead) -> dict:
    return frame_metadata(
        read.snapshot.users,
        headline=read.headline,
        snapshot_at=read.started_at.isoformat(),
        seconds=round(read.seconds, 3),
    )


@dg.asset(partitions_def=domains, group_name="extract")
def google_directory(
    context: dg.AssetExecutionContext, database: DatabaseResource, google: GoogleResource
) -> SourceRead | None:
    """The domain's Google Workspace users, groups and members, read whole (None for a
    domain that syncs by SCIM: a domain reads only its own source)."""
    config = database.domain(context.partition_key)
    if config.source is not SourceKind.GOOGLE:
        context.add_output_metadata({"read": f"no: {config.domain} syncs by SCIM"})
        return None
    read = read_google(config, google.reader(config))
    context.add_output_metadata(_read_metadata(read))
    return read


@dg.asset(partitions_def=domains, group_name="extract")
def scim_staging(
    context: dg.AssetExecutionContext, database: DatabaseResource
) -> SourceRead | None:
    """The users and groups the domain's IdP pushed to the SCIM endpoint (None for a Google
    domain)."""
    config = database.domain(context.partition_key)
    if config.source is not SourceKind.SCIM:
        context.add_output_metadata({"read": f"no: {config.domain} syncs from Google Workspace"})
        return None
    read = read_scim(config, database.engine())
    context.add_output_metadata(_read_metadata(read))
    return read


@dg.asset(partitions_def=domains, group_name="extract")
def komeet_users(
    context: dg.AssetExecutionContext, database: DatabaseResource, komeet: KomeetResource
) -> KomeetRead:
    """The domain's accounts in Komeet, read from its SCIM API."""
    config = database.domain(context.partition_key)
    read = read_komeet(komeet.client(), config)
    context.add_output_metadata(frame_metadata(read.accounts, unreadable=len(read.errors)))
    return read
