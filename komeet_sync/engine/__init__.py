"""Pure decisions, no I/O: scope, matching, reconciliation, guards, the plan."""
