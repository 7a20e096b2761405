"""`registry.strict_json`: strict JSON for untrusted input, and its nesting measure."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from registry.limits import MAX_INT_DIGITS, MAX_JSON_DEPTH
from registry.strict_json import JsonRejected, loads, nesting_depth, preview

# What strict JSON accepts: no lone surrogates (st.text leaves them out by
# default), finite floats, integers a double's digits can spell.
plain_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**300), max_value=10**300)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=30,
)


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


@given(value=plain_values, ensure_ascii=st.booleans())
def test_strict_json_reads_what_json_writes(value: Any, ensure_ascii: bool) -> None:
    text = json.dumps(value, ensure_ascii=ensure_ascii)
    assert loads(text) == value
    assert loads(text.encode()) == value


@given(value=plain_values)
def test_nesting_depth_is_exact_for_valid_json(value: Any) -> None:
    assert nesting_depth(json.dumps(value)) == depth(value)


# Brackets, quotes and backslashes in any order: strings that open and close
# where a careless scan would not expect them.
tricky_text = st.lists(
    st.sampled_from(
        ["[", "]", "{", "}", '"', "\\", '\\"', ",", ":", "1", "a", " ", '{"a":', "[" * 300]
    ),
    max_size=60,
).map("".join)


@settings(max_examples=500)
@given(text=tricky_text)
# An escaped quote: a scan that took it for the string's end would hide the
# brackets after it, up to the next quote, while the parser descends into them.
@example('["a\\"",' + "[" * 5000 + '"z"')
def test_the_parser_never_goes_deeper_than_measured(text: str) -> None:
    # A measure below what the parser really reaches would let it recurse
    # thousands of levels: a RecursionError, not JsonRejected. (Hypothesis
    # raises the recursion limit while it runs, hence 5000 in the example.)
    with contextlib.suppress(JsonRejected):
        loads(text, max_depth=900)


def test_nesting_depth_skips_brackets_in_strings() -> None:
    assert nesting_depth('["[[[", "\\"[[", {"}}": "]"}]') == 2
    assert nesting_depth("]]]][[") == 0


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1), "nested 101 levels deep"),
        (b"[" * 200_000, "nested 200000 levels deep"),
        ("9" * (MAX_INT_DIGITS + 1), "integer of 310 digits"),
        ("-" + "9" * 5000, "integer of 5000 digits"),
        ("1e400", "out of a double's range"),
        ("[-1e999]", "out of a double's range"),
        ("NaN", "NaN is not a JSON value"),
        ('{"x": -Infinity}', "-Infinity is not a JSON value"),
        ('"\\ud800"', "lone surrogate"),
        ('{"\\udfff": 1}', "lone surrogate"),
        ('["ok", "\\ud83d x"]', "lone surrogate"),
        ("\ud800", "lone surrogate"),
        (b'"\xff"', "not UTF-8"),
        (b'"\xed\xa0\x80"', "not UTF-8"),  # a surrogate encoded as if it were a character
        (b"\xef\xbb\xbf{}", "malformed JSON"),
        ('{"a": 1, "a": 2}', "'a' appears twice"),
        ("", "malformed JSON"),
        ('{"a": ', "malformed JSON"),
    ],
)
def test_refusals_name_their_reason(data: bytes | str, reason: str) -> None:
    with pytest.raises(JsonRejected, match=reason):
        loads(data)


def test_accepts_the_edges_of_each_bound() -> None:
    nested = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert depth(loads(nested)) == MAX_JSON_DEPTH
    assert loads("9" * MAX_INT_DIGITS) == int("9" * MAX_INT_DIGITS)
    assert loads("1.7976931348623157e308") == 1.7976931348623157e308
    # A surrogate pair escape is one valid character; an escaped backslash
    # before "ud800" is plain text.
    assert loads('"\\ud83d\\ude00"') == "\N{GRINNING FACE}"
    assert loads('"\\\\ud800"') == "\\ud800"


def test_preview_cuts_long_text() -> None:
    assert preview("short") == "'short'"
    long = preview("x" * 10_000)
    assert long.endswith("... (10000 characters)")
    assert len(long) < 100
