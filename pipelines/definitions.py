"""The Dagster definitions. Assets, checks, schedules and sensors arrive with the Dagster
issue; the code location already loads so that `dagster dev -w workspace.yaml` works."""

import dagster as dg

defs = dg.Definitions()
