"""Komeet's SCIM API: the client, reading accounts, applying plans."""
