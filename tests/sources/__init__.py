"""Tests of komeet_sync.sources."""
