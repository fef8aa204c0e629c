"""Tests of komeet_sync.sources.scim: the endpoint IdPs push to."""
