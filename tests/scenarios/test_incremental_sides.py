"""An incremental sync on the real sides decides for the people who changed what a whole sync
decides for them, disputes included (ARCHITECTURE.md, "Full and incremental syncs"): generated
staging states written through the endpoint's storage, on SQLite and PostgreSQL, generated
Komeet accounts in the scim2-server stand-in read by SCIM filters over HTTP (hypothesis).
``tests/runs/test_incremental.py`` proves the same in memory over many more states."""

from __future__ import annotations

import os

import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from komeet_sync.engine.reconcile import reconcile
from komeet_sync.komeet.accounts import KomeetSide, read_accounts
from komeet_sync.runs.incremental import sync_people
from komeet_sync.sources.scim.people import StagedPeople
from komeet_sync.sources.scim.staging import read_staging
from tests.komeet.test_key_reads import accounts_strategy, seeded
from tests.runs.test_incremental import COMPARED, identity
from tests.sources.scim.test_people import CONFIG, Staging, state_strategy

# Each example writes a database and a Komeet over HTTP: a few suffice beside the in-memory
# property test's hundreds.
EXAMPLES = int(os.environ.get("HYPOTHESIS_EXAMPLES", "8"))


@pytest.fixture
def staging(database_url):
    found = Staging(database_url)
    yield found
    found.engine.dispose()


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # each example writes a database
)
@given(state=state_strategy, generated_accounts=accounts_strategy, data=st.data())
def test_the_decision_for_changed_people_is_the_whole_syncs(
    staging, komeet_server, state, generated_accounts, data
):
    staging.clear()
    staging.push(state)
    komeet = komeet_server.tenant()
    seeded(komeet, generated_accounts)
    client = komeet.client()
    whole = reconcile(read_staging(staging.engine, CONFIG), read_accounts(client, CONFIG), CONFIG)
    staged = list(whole.rows["account_id"].dropna())
    if not staged:
        return
    changed = data.draw(st.lists(st.sampled_from(staged), min_size=1, max_size=3, unique=True))

    done = sync_people(
        CONFIG,
        staging.engine,
        None,
        StagedPeople(staging.engine, CONFIG),
        KomeetSide(client, CONFIG),
        ids=changed,
        dry_run=True,
    )

    part = done.reconciliation.rows
    assert set(changed) <= set(part["account_id"].dropna())
    theirs = whole.rows.assign(identity=identity(whole.rows)).set_index("identity")
    ours = part.assign(identity=identity(part)).set_index("identity")
    assert ours.index.is_unique
    pd.testing.assert_frame_equal(
        ours[COMPARED].sort_index(),
        theirs.loc[ours.index, COMPARED].sort_index(),
        check_dtype=False,
    )
    assert done.applied is None  # a dry run sends nothing
