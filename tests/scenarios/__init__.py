"""End-to-end scenarios across the layers: the demo, dagster dev, the UI."""
