"""The sync's assets, one domain a partition: ``extract``, ``reports``, ``provisioning``."""
