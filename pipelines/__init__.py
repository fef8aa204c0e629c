"""Dagster definitions for komeet-sync: thin assets over the core (``komeet_sync``)."""
