"""Tests of komeet_sync.engine: every rule of the decisions, on frames."""
