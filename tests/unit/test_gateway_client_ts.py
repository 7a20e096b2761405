"""`parse_client_ts` reads every RFC 3339 shape exactly as a field-by-field reading would.

The gateway hands the text to `datetime.fromisoformat` once its pattern has
matched, for speed. This checks that shortcut against a plain reference
reading of the fields, over generated date-times that include every edge the
pattern lets through: lowercase separators, 1-9 fraction digits, "-00:00",
offsets out of range, and dates and times that do not exist.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.clock_skew import parse_client_ts


def reference(
    year: int,
    month: int,
    day: int,
    hour: int,
    minute: int,
    second: int,
    fraction: str,
    offset: str,
) -> datetime:
    """RFC 3339 read field by field: fractions truncated to microseconds."""
    micros = int(fraction[:6].ljust(6, "0")) if fraction else 0
    if offset in ("Z", "z"):
        tz = UTC
    else:
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        if hours > 23 or minutes > 59:
            raise ValueError("offset out of range")
        delta = timedelta(hours=hours, minutes=minutes)
        tz = timezone(-delta if offset[0] == "-" else delta)
    return datetime(year, month, day, hour, minute, second, micros, tzinfo=tz)


def two(n: int) -> str:
    return f"{n:02d}"


offsets = st.one_of(
    st.sampled_from(["Z", "z", "+00:00", "-00:00", "+23:59", "-23:59", "+24:00", "+05:60"]),
    st.builds(
        lambda sign, h, m: f"{sign}{two(h)}:{two(m)}",
        st.sampled_from("+-"),
        st.integers(0, 29),
        st.integers(0, 69),
    ),
)
date_times = st.tuples(
    st.integers(0, 9999),
    st.integers(0, 13),
    st.integers(0, 32),
    st.integers(0, 24),
    st.integers(0, 60),
    st.integers(0, 60),
    st.text(alphabet="0123456789", min_size=0, max_size=9),
    st.sampled_from("Tt"),
    offsets,
)


@settings(max_examples=2000)
@given(parts=date_times)
def test_parse_matches_the_field_by_field_reading(
    parts: tuple[int, int, int, int, int, int, str, str, str],
) -> None:
    year, month, day, hour, minute, second, fraction, separator, offset = parts
    text = (
        f"{year:04d}-{two(month)}-{two(day)}{separator}{two(hour)}:{two(minute)}:{two(second)}"
        + (f".{fraction}" if fraction else "")
        + offset
    )
    try:
        expected = reference(year, month, day, hour, minute, second, fraction, offset)
    except ValueError:
        with pytest.raises(ValueError):
            parse_client_ts(text)
        return
    parsed = parse_client_ts(text)
    assert parsed == expected
    assert parsed.utcoffset() == expected.utcoffset()
    assert (parsed.year, parsed.month, parsed.day) == (year, month, day)
    assert (parsed.hour, parsed.minute, parsed.second) == (hour, minute, second)
    assert parsed.microsecond == expected.microsecond


@pytest.mark.parametrize(
    "text",
    [
        "2026-03-10T11:59:00",  # no offset
        "2026-03-10 11:59:00Z",  # fromisoformat would take the space; RFC 3339 does not here
        "20260310T115900Z",  # basic format
        "2026-03-10T11:59Z",  # no seconds
        "2026-03-10T11:59:00.Z",  # empty fraction
        "2026-03-10T11:59:00.1234567890Z",  # ten fraction digits
        "2026-03-10T11:59:00+0530",  # offset without a colon
        "2026-03-10T11:59:00+05",
        "2026-03-10T11:59:00,5Z",  # comma fraction
        "2026-W10-2T11:59:00Z",  # week date
        "\uff12\uff10\uff12\uff16-03-10T11:59:00Z",  # fullwidth (non-ASCII) digits
    ],
)
def test_shapes_fromisoformat_would_accept_are_still_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_client_ts(text)
