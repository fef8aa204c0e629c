"""The SCIM endpoint IdPs push to, its storage, and the staged snapshot."""
