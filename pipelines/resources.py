"""The resources the assets use: the database (domain configurations, staging tables, plans
and ledger), Google Workspace, and Komeet's SCIM API. Secrets come from ``dg.EnvVar``."""

from __future__ import annotations

import dagster as dg
from pydantic import PrivateAttr
from sqlalchemy import Engine

from komeet_sync.komeet.client import KomeetClient
from komeet_sync.model.domain_config import DomainConfig, SourceKind
from komeet_sync.sources.google.reader import DirectoryReader, reader_for
from komeet_sync.store.database import open_database
from komeet_sync.store.domains import DomainStore


class DatabaseResource(dg.ConfigurableResource):
    """komeet-sync's database: ``KOMEET_SYNC_DATABASE_URL``, else the embedded SQLite under
    ``KOMEET_SYNC_HOME``."""

    url: str | None = None
    _engine: Engine | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._engine = open_database(self.url)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._engine is not None:
            self._engine.dispose()

    def engine(self) -> Engine:
        if self._engine is None:  # used outside a run (a test, a notebook)
            self._engine = open_database(self.url)
        return self._engine

    def domain(self, domain: str) -> DomainConfig:
        return DomainStore(self.engine()).get(domain)


class GoogleResource(dg.ConfigurableResource):
    """What reads Google Workspace domains: an admin's stored consent through the OAuth
    client of ``GOOGLE_OAUTH_CLIENT_FILE``, else the service account by delegation. The key file
    defaults to ``GOOGLE_SERVICE_ACCOUNT_FILE``, the endpoint to Google's own (or
    ``GOOGLE_DIRECTORY_API_ENDPOINT``)."""

    service_account_file: str | None = None
    endpoint: str | None = None

    def reader(self, config: DomainConfig, engine: Engine) -> DirectoryReader | None:
        """The reader of a Google domain, by the admin's consent the database holds for it
        when it has one, else by delegation; None for a domain that syncs by SCIM."""
        if config.source is not SourceKind.GOOGLE:
            return None
        return reader_for(config, self.service_account_file, self.endpoint, engine)


class KomeetResource(dg.ConfigurableResource):
    """Komeet's SCIM API: its URL and the sync's bearer token (a secret: ``dg.EnvVar``)."""

    url: str
    token: str
    timeout: float = 30.0

    def client(self) -> KomeetClient:
        """A client retrying as ``KOMEET_SYNC_KOMEET_ATTEMPTS`` and ``..._BACKOFF`` say,
        its settings checked as the CLI checks them."""
        return KomeetClient.checked(self.url, self.token, self.timeout)
