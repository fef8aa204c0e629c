"""One dynamic partition per configured domain, kept in step with the domain configurations
by ``sensors.domain_partitions``. No time dimension: every materialization of a domain is
kept, so its history stays retrievable."""

import dagster as dg

domains = dg.DynamicPartitionsDefinition(name="domains")
