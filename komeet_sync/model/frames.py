"""The frames the engine reads, each declared once and checked where it enters the core.

A directory snapshot (Google or SCIM) and Komeet's accounts (``snapshots``) reach the engine
as these frames, whatever they were read from: exported files, the Directory API, the SCIM
staging tables or the Komeet SCIM API.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


class Source(StrEnum):
    """Where a person or an account comes from."""

    GOOGLE = "google"
    SCIM = "scim"
    KOMEET = "komeet"


# column -> dtype. "str" is pandas' string dtype; missing values are NA.
DIRECTORY_USERS: dict[str, str] = {
    "source": "str",  # google | scim
    "account_id": "str",  # Google user id, or the SCIM resource id
    "stable_id": "str",  # matching rule 1: Google id; the IdP's externalId, else the resource id
    "email": "str",  # primary email as given (Google primaryEmail, SCIM userName)
    "given_name": "str",
    "family_name": "str",
    "active": "bool",
    "inactive_reason": "str",  # why not active, in words (suspended, archived, active=false)
    "employee_id": "str",
    # Shown in the reports, so that an analyst sees where a person sits and whether they
    # ever signed in. Google: orgUnitPath, creationTime, lastLoginTime; SCIM: the enterprise
    # department and meta.created. Missing (NA) when the source does not say.
    "org_unit": "str",
    "created_at": "str",  # ISO 8601
    "last_login_at": "str",  # ISO 8601; NA when never
}
# Columns a directory users frame may leave out: they are then all NA.
OPTIONAL_USER_COLUMNS = ("org_unit", "created_at", "last_login_at")

# One row per address a person is also known by (Google aliases and nonEditableAliases,
# SCIM emails[].value): matching rule 3.
DIRECTORY_ALIASES: dict[str, str] = {
    "account_id": "str",
    "alias": "str",
}

# One row per member of a selected group, nested groups already flattened (Directory API
# members.list with includeDerivedMembership=true; SCIM groups expanded).
GROUP_MEMBERS: dict[str, str] = {
    "group": "str",  # Google group email, or SCIM group displayName
    "member_id": "str",
    "member_email": "str",
    "member_type": "str",  # USER | GROUP | CUSTOMER | EXTERNAL (Directory API Member.type)
}

# One row per selected group that the source was asked for.
GROUPS: dict[str, str] = {
    "group": "str",
    "found": "bool",
}

KOMEET_ACCOUNTS: dict[str, str] = {
    "komeet_id": "str",
    "user_name": "str",
    "email": "str",  # the account's primary email, if any
    "external_id": "str",
    "given_name": "str",
    "family_name": "str",
    "active": "bool",
    "employee_id": "str",
}

# Problems found while reading a source, before the engine runs: each becomes a row of the
# errors report.
READ_ERRORS: dict[str, str] = {
    "source": "str",
    "account_id": "str",
    "email": "str",
    "error": "str",
    "detail": "str",
}


Rows = TypeVar("Rows", pd.DataFrame, pd.Series)


class FrameError(ValueError):
    """A frame that does not have the columns the engine needs."""


def contains(values: pd.Series, pool: pd.Series) -> np.ndarray:
    """``values.isin(pool)`` for text, computed in Arrow: pandas' ``isin`` on Arrow-backed
    strings converts the pool one element at a time (seconds for a million)."""
    value_set = pa.array(pd.Series(pool, dtype="str").dropna().unique(), type=pa.large_string())
    return flags(pc.is_in(to_arrow(values), value_set=value_set))


_TEXT = pd.StringDtype("pyarrow", na_value=np.nan)  # pandas' default "str" dtype


def text_array(values: np.ndarray | list) -> pd.api.extensions.ExtensionArray:
    """Python strings (None for missing) as a "str" column, converted once in Arrow."""
    return from_arrow(pa.array(values, type=pa.large_string(), from_pandas=True))


def to_arrow(values: pd.Series | pd.api.extensions.ExtensionArray) -> pa.ChunkedArray:
    """A text column as the Arrow array behind it (converted first if it is not text), for
    the Arrow compute functions, without copying it."""
    return pd.Series(values, dtype="str", copy=False).array.__arrow_array__()


def factorize(columns: Sequence[pa.Array | pa.ChunkedArray]) -> tuple[np.ndarray, pa.Array]:
    """Each value's code (-1 when missing) and the distinct values, in order of first
    appearance (as ``pd.factorize``): one hash pass over the columns, without joining them
    into one column first."""
    chunks = [chunk for column in columns for chunk in getattr(column, "chunks", [column])]
    encoded = pa.chunked_array(chunks, pa.large_string()).dictionary_encode().chunks
    if not encoded:
        return np.array([], dtype=np.int64), pa.array([], pa.large_string())
    code = np.concatenate(
        [np.asarray(chunk.indices.fill_null(-1), dtype=np.int64) for chunk in encoded]
    )
    return code, encoded[0].dictionary  # the chunks share one dictionary


def blank(values: pd.Series) -> np.ndarray:
    """Missing, empty or only whitespace: what is empty once trimmed (without trimming)."""
    text = to_arrow(values)
    return np.asarray(
        pc.fill_null(pc.or_(pc.equal(text, ""), pc.utf8_is_space(text)), True), dtype=bool
    )


def where(frame: Rows, mask: np.ndarray) -> Rows:
    """The rows of ``frame`` where ``mask`` holds: the frame itself, not a copy of a million
    rows, when it holds for all (as it mostly does: a Google snapshot lists the selected
    groups' members alone, Komeet's accounts are mostly the domain's)."""
    return frame if mask.all() else frame[mask]


def flags(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """An Arrow boolean result as a NumPy mask; missing counts as false."""
    return np.asarray(pc.fill_null(values, False), dtype=bool)


def from_arrow(array: pa.Array | pa.ChunkedArray) -> pd.api.extensions.ExtensionArray:
    """An Arrow text array as a "str" column, without copying it."""
    return pd.arrays.ArrowStringArray(array, dtype=_TEXT)  # type: ignore[call-arg]


def labels(codes: np.ndarray, names: Sequence[str | None]) -> pd.api.extensions.ExtensionArray:
    """``names[code]`` for each code as a "str" column, NA where the code is -1: a column
    of a few distinct values made without a Python string per row."""
    indices = pa.array(codes, mask=np.asarray(codes) < 0, type=pa.int64())
    return from_arrow(pc.take(pa.array(names, type=pa.large_string()), indices))


def empty_frame(schema: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in schema.items()})


def conform(
    frame: pd.DataFrame, schema: dict[str, str], name: str, optional: tuple[str, ...] = ()
) -> pd.DataFrame:
    """The frame's schema columns with their declared dtypes, on a fresh RangeIndex.

    Raises FrameError naming the missing columns: a frame enters the core only whole, but
    for the ``optional`` text columns, which are then NA.
    """
    absent = [column for column in optional if column not in frame.columns]
    if absent:
        frame = frame.assign(**{column: pd.Series(pd.NA, index=frame.index) for column in absent})
    missing = [column for column in schema if column not in frame.columns]
    if missing:
        raise FrameError(
            f"{name} lacks the column(s) {', '.join(missing)}; "
            f"expected the columns {', '.join(schema)}"
        )
    columns: dict[str, Any] = {}
    for column, dtype in schema.items():
        values = frame[column]
        if dtype == "bool":
            if values.isna().any():
                raise FrameError(f"{name}.{column} has missing values; expected true or false")
            columns[column] = values.astype(bool).to_numpy()
        else:
            columns[column] = values.astype("str").array
    return pd.DataFrame(columns)
