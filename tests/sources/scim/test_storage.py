"""The staging storage follows scim2-server's storage contract, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from scim2_server.testing import ScimStorageContract

from komeet_sync.model.domain_config import DomainConfig
from komeet_sync.sources.scim.endpoint import staging_provider
from komeet_sync.sources.scim.storage import StagingStorage
from komeet_sync.store.database import open_database
from komeet_sync.store.domains import DomainStore


class TestStagingStorage(ScimStorageContract):
    @pytest.fixture
    def provider(self):
        """What the endpoint serves the storage with, instead of the contract's default."""
        return staging_provider()

    @pytest.fixture
    def storage(self, database_url, provider):
        engine = open_database(database_url)
        store = DomainStore(engine)
        store.add(DomainConfig.create("globex.com", "scim"))
        yield StagingStorage(engine, store.id_of("globex.com"), provider)
        engine.dispose()
