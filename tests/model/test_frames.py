"""The column helpers the engine computes with, against the pandas they stand for."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from komeet_sync.model.frames import blank, factorize, labels, to_arrow

# Every whitespace Unicode knows, and a few characters that are not whitespace.
SPACES = "".join(chr(c) for c in range(0x3000 + 1) if chr(c).isspace()) + "\u200b\u180ea"
TEXTS = st.lists(st.none() | st.text(alphabet=SPACES, max_size=4), max_size=20)


@settings(max_examples=200, deadline=None)
@given(TEXTS)
def test_blank_is_what_trimming_leaves_empty(values):
    column = pd.Series(values, dtype="str")

    trimmed = column.fillna("").str.strip().eq("").to_numpy()

    assert (blank(column) == trimmed).all()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.none() | st.sampled_from(["a", "b", "", "ä", "a "]), max_size=8)))
def test_factorize_numbers_columns_as_pandas_numbers_them_joined(columns):
    series = [pd.Series(values, dtype="str") for values in columns]
    joined = pd.concat(series, ignore_index=True) if series else pd.Series([], dtype="str")

    codes, uniques = factorize([to_arrow(values) for values in series])

    expected_codes, expected_uniques = pd.factorize(joined)
    assert list(codes) == list(expected_codes)
    assert uniques.to_pylist() == list(expected_uniques)


def test_labels_are_names_by_code_and_missing_for_minus_one():
    column = labels(np.array([1, 0, -1, 1]), ["joiner", "leaver"])

    assert list(pd.Series(column).fillna("NA")) == ["leaver", "joiner", "NA", "leaver"]
    assert pd.Series(column).dtype == pd.Series([], dtype="str").dtype
    assert isinstance(to_arrow(column), pa.ChunkedArray)
