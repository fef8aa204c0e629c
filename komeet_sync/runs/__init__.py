"""One domain's sync, step by step: the functions the CLI and Dagster both call."""
