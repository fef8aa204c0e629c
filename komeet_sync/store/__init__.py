"""The database and the result store."""
