"""Emulators of the services komeet-sync talks to, for tests, benchmarks and the demo.

Each speaks the real protocol over real HTTP on loopback, so the real client libraries run
against it unchanged. The Komeet stand-in is the third-party ``scim2-server``.
"""
