"""Reading each domain's directory and its Komeet accounts (group ``extract``)."""

import dagster as dg

from komeet_sync.model.snapshots import DirectorySnapshot, KomeetAccounts
from komeet_sync.runs import sync

from .. import checks, tags
from ..metadata import frame_metadata
from ..partitions import domains
from ..resources import DatabaseResource, GoogleResource, KomeetResource


@dg.asset(partitions_def=domains, group_name="extract", check_specs=[checks.SOURCE_READ_COMPLETE])
def snapshot(context: dg.AssetExecutionContext, database: DatabaseResource, google: GoogleResource):
    """The domain's directory, read whole from its own source: Google Workspace, or what its
    IdP pushed to the SCIM endpoint."""
    config = database.domain(context.partition_key)
    tags.tag_run(context, tags.domain_tags(config))
    read: DirectorySnapshot = sync.read_source(
        config, database.engine(), google.reader(config, database.engine())
    )
    yield dg.Output(
        read,
        metadata=frame_metadata(
            read.users[["email", "given_name", "family_name", "org_unit", "active"]],
            headline=read.describe(config.domain),
            source=read.source.value,
            snapshot_at=read.started_at.isoformat() if read.started_at else "",
            seconds=round(read.seconds, 3),
        ),
    )
    yield checks.source_read_complete(read, config.domain)


@dg.asset(partitions_def=domains, group_name="extract")
def komeet_accounts(
    context: dg.AssetExecutionContext, database: DatabaseResource, komeet: KomeetResource
) -> KomeetAccounts:
    """The domain's accounts in Komeet, read whole from its SCIM API."""
    config = database.domain(context.partition_key)
    read = sync.read_komeet(komeet.client(), config)
    context.add_output_metadata(frame_metadata(read.accounts, unreadable=len(read.unreadable)))
    return read
