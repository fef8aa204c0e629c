"""Tests of komeet_sync.model: the vocabulary."""
