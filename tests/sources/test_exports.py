"""Exported files decode to exactly what ``json`` gives, whichever decoder read them."""

from __future__ import annotations

import codecs
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from komeet_sync.sources.exports import load_json
from tests.support.scale import at_scale

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()  # beyond 64 bits too: kept whole, never made a float
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),  # lone surrogates too (json writes them as \ud800 escapes)
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=12,
)


def same(left, right) -> bool:
    """Equal, NaN equal to NaN (json reads NaN, which equals nothing)."""
    if isinstance(left, float) and isinstance(right, float) and math.isnan(left):
        return math.isnan(right)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(same, left, right))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(same(left[k], right[k]) for k in left)
    return type(left) is type(right) and left == right


@settings(max_examples=at_scale(100, 300), deadline=None)
@given(JSON_VALUES, st.booleans(), st.booleans())
def test_a_file_decodes_as_json_decodes_it(tmp_path_factory, value, ascii_only, bom):
    path = tmp_path_factory.mktemp("export") / "file.json"
    text = json.dumps(value, ensure_ascii=ascii_only)
    path.write_bytes((codecs.BOM_UTF8 if bom else b"") + text.encode("utf-8", "surrogatepass"))
    try:
        expected = json.loads(text)
    except json.JSONDecodeError:
        return
    if not ascii_only and any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        return  # a lone surrogate written raw is not UTF-8: refused, as before
    assert same(load_json(path, "anything"), expected)


@pytest.mark.parametrize(
    "text",
    ['{"id": 100000000000000000001}', "[-9223372036854775809]", "[NaN, Infinity]", '"\\ud800"'],
)
def test_what_only_json_takes_is_read_as_json_reads_it(tmp_path, text):
    path = tmp_path / "file.json"
    path.write_text(text)
    assert same(load_json(path, "anything"), json.loads(text))
