"""The pools the definitions' steps claim, made before any run claims them.

Dagster makes a pool's limit (from the instance's ``default_limit``) at the first claim of a
step in it. Two runs whose first claims come at once race for it on PostgreSQL: the loser's
insert breaks the pool's unique key, its transaction is aborted, and its run fails. Made once
here, by the domains sensor before any domain has a partition, no run ever races for it.
"""

import dagster as dg

from .assets.provisioning import KOMEET_POOL

POOLS = (KOMEET_POOL,)


def prepare_pools(instance: dg.DagsterInstance) -> None:
    """Makes every pool the instance does not know yet with its default limit."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return
    known = storage.get_concurrency_keys()
    for pool in POOLS:
        if pool not in known:
            storage.initialize_concurrency_limit_to_default(pool)
