"""Tests of the emulators the other tests stand on."""
