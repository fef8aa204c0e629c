"""One domain's sync, step by step: the functions the CLI and Dagster both call."""

# ``google groups`` reads member counts for at most this many groups at once (``selection``;
# here so that the command's help, built at every start, names it without importing them).
COUNTED_AT_MOST = 200
