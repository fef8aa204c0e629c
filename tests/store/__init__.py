"""Tests of komeet_sync.store: the database and the result store."""
