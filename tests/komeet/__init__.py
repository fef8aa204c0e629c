"""Tests of komeet_sync.komeet, against scim2-server as Komeet."""
