"""Tests of komeet_sync.runs: a domain's sync, step by step."""
