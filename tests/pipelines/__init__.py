"""Tests of the Dagster definitions, materialized in process."""
