"""Tests of the komeet-sync command line, run as a user types it."""
