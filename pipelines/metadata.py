"""What the UI shows of an asset's value without opening a notebook."""

from __future__ import annotations

from typing import Any

import dagster as dg
import pandas as pd

PREVIEW_ROWS = 20


def frame_metadata(frame: pd.DataFrame, **extra: Any) -> dict[str, Any]:
    """The row count and a Markdown preview of the first rows."""
    preview = frame.head(PREVIEW_ROWS).fillna("")
    return {
        "dagster/row_count": len(frame),
        "preview": dg.MetadataValue.md(
            preview.to_markdown(index=False) if len(frame) else "_no rows_"
        ),
        **extra,
    }
