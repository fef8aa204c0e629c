"""Google Workspace: the Directory API reader and its resources."""
