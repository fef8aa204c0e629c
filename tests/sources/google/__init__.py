"""Tests of komeet_sync.sources.google, against the Directory API emulator."""
