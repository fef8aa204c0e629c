"""Tests of komeet_sync.analysis: what notebooks read."""
