"""What the tests stand on: servers started for them (PostgreSQL, the SCIM endpoint, Komeet's
stand-in, dagster dev), a Google Workspace emulated for them, data made for them."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "komeet_sync" / "examples"  # the bundled exports of the offline audit
FIXTURES = ROOT / "tests" / "fixtures"
