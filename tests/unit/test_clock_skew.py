"""The clock-skew policy: exclusive limits, per-tenant tolerances, RFC 3339 parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.clock_skew import DEFAULT_POLICY, SkewPolicy, Timeliness, classify, parse_client_ts

RECEIVED = datetime(2026, 3, 10, 12, 0, 0, tzinfo=UTC)
US = timedelta(microseconds=1)

# How late a verdict is: moving client_ts earlier must never lower this.
LATENESS = {
    Timeliness.future_timestamp: 0,
    Timeliness.on_time: 1,
    Timeliness.late: 2,
    Timeliness.too_old: 3,
}


def at(offset: timedelta, policy: SkewPolicy = DEFAULT_POLICY) -> Timeliness:
    """Classify a client timestamp `offset` after RECEIVED (negative: in the past)."""
    return classify(RECEIVED + offset, RECEIVED, policy)


def test_defaults_are_the_briefs() -> None:
    assert SkewPolicy() == SkewPolicy(
        future_tolerance=timedelta(minutes=2),
        too_old=timedelta(days=7),
        late_after=timedelta(minutes=15),
    )


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (timedelta(0), Timeliness.on_time),
        # "more than 2 minutes ahead": exactly 2 minutes is allowed.
        (timedelta(minutes=2), Timeliness.on_time),
        (timedelta(minutes=2) + US, Timeliness.future_timestamp),
        (timedelta(days=365), Timeliness.future_timestamp),
        # "older than 15 minutes": exactly 15 minutes is still on time.
        (-timedelta(minutes=15), Timeliness.on_time),
        (-timedelta(minutes=15) - US, Timeliness.late),
        # "older than 7 days": exactly 7 days is late, not too old.
        (-timedelta(days=7), Timeliness.late),
        (-timedelta(days=7) - US, Timeliness.too_old),
        (-timedelta(days=3650), Timeliness.too_old),
    ],
)
def test_default_boundaries(offset: timedelta, expected: Timeliness) -> None:
    assert at(offset) is expected


def test_custom_tenant_policy_moves_every_boundary() -> None:
    strict = SkewPolicy(
        future_tolerance=timedelta(seconds=10),
        too_old=timedelta(hours=1),
        late_after=timedelta(minutes=1),
    )
    assert at(timedelta(seconds=10), strict) is Timeliness.on_time
    assert at(timedelta(seconds=11), strict) is Timeliness.future_timestamp
    assert at(-timedelta(minutes=1), strict) is Timeliness.on_time
    assert at(-timedelta(minutes=2), strict) is Timeliness.late
    assert at(-timedelta(hours=1), strict) is Timeliness.late
    assert at(-timedelta(hours=2), strict) is Timeliness.too_old
    # The same instants under the defaults, so the policy is what decided.
    assert at(timedelta(seconds=11)) is Timeliness.on_time
    assert at(-timedelta(hours=2)) is Timeliness.late


def test_zero_tolerances_are_allowed() -> None:
    exact = SkewPolicy(future_tolerance=timedelta(0), too_old=timedelta(0), late_after=timedelta(0))
    assert at(timedelta(0), exact) is Timeliness.on_time
    assert at(US, exact) is Timeliness.future_timestamp
    assert at(-US, exact) is Timeliness.too_old


@pytest.mark.parametrize(
    "kwargs",
    [
        {"future_tolerance": timedelta(seconds=-1)},
        {"late_after": timedelta(seconds=-1)},
        {"late_after": timedelta(days=8)},  # beyond the default too_old of 7 days
    ],
)
def test_nonsensical_policy_is_refused(kwargs: dict[str, timedelta]) -> None:
    with pytest.raises(ValueError):
        SkewPolicy(**kwargs)


def test_client_offset_does_not_change_the_verdict() -> None:
    # 16 minutes old, written in UTC+05:30 and in UTC-08:00.
    instant = RECEIVED - timedelta(minutes=16)
    for tz in (timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))):
        assert classify(instant.astimezone(tz), RECEIVED, DEFAULT_POLICY) is Timeliness.late
    # 1 minute ahead in a far-east offset is on time, although its wall clock reads hours ahead.
    ahead = (RECEIVED + timedelta(minutes=1)).astimezone(timezone(timedelta(hours=14)))
    assert classify(ahead, RECEIVED, DEFAULT_POLICY) is Timeliness.on_time


def test_naive_datetimes_raise() -> None:
    naive = datetime(2026, 3, 10, 12, 0, 0)
    with pytest.raises(ValueError, match="client_ts"):
        classify(naive, RECEIVED, DEFAULT_POLICY)
    with pytest.raises(ValueError, match="received_at"):
        classify(RECEIVED, naive, DEFAULT_POLICY)


def test_extreme_years_do_not_overflow() -> None:
    far_past = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=23, minutes=59)))
    far_future = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(-timedelta(hours=23)))
    assert classify(far_past, RECEIVED, DEFAULT_POLICY) is Timeliness.too_old
    assert classify(far_future, RECEIVED, DEFAULT_POLICY) is Timeliness.future_timestamp


policies = st.builds(
    lambda future, late, extra: SkewPolicy(future, late + extra, late),
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=1)),
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=2)),
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30)),
)
offsets = st.timedeltas(min_value=-timedelta(days=60), max_value=timedelta(days=2))


@given(policy=policies, a=offsets, b=offsets)
def test_moving_client_ts_earlier_never_makes_a_vote_less_late(
    policy: SkewPolicy, a: timedelta, b: timedelta
) -> None:
    earlier, later = sorted((a, b))
    assert LATENESS[at(earlier, policy)] >= LATENESS[at(later, policy)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-10T12:00:00Z", datetime(2026, 3, 10, 12, 0, 0, tzinfo=UTC)),
        ("2026-03-10t12:00:00z", datetime(2026, 3, 10, 12, 0, 0, tzinfo=UTC)),
        (
            "2026-03-10T17:30:00.5+05:30",
            datetime(2026, 3, 10, 17, 30, 0, 500000, tzinfo=timezone(timedelta(hours=5.5))),
        ),
        (
            "2026-03-10T04:00:00.123456789-08:00",
            datetime(2026, 3, 10, 4, 0, 0, 123456, tzinfo=timezone(timedelta(hours=-8))),
        ),
        ("2026-03-10T12:00:00-00:00", datetime(2026, 3, 10, 12, 0, 0, tzinfo=UTC)),
    ],
)
def test_parse_client_ts_keeps_the_offset(text: str, expected: datetime) -> None:
    parsed = parse_client_ts(text)
    assert parsed == expected
    assert parsed.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(
    "text",
    [
        "2026-03-10T12:00:00",  # naive
        "2026-03-10 12:00:00Z",  # space separator
        "2026-03-10",
        "2026-03-10T12:00Z",  # no seconds
        "2026-02-30T12:00:00Z",
        "2026-13-01T12:00:00Z",
        "2026-03-10T24:00:00Z",
        "2026-12-31T23:59:60Z",  # leap second
        "2026-03-10T12:00:00+24:00",
        "2026-03-10T12:00:00+05:60",
        "2026-03-10T12:00:00+0530",
        "2026-03-10T12:00:00.1234567890Z",  # more than 9 fraction digits
        "2026-03-10T12:00:00Z\n",
        " 2026-03-10T12:00:00Z",
        "2026-03-1\u0661T12:00:00Z",  # an Arabic-Indic digit
        "0000-01-01T00:00:00Z",
        "yesterday",
        "",
    ],
)
def test_parse_client_ts_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_client_ts(text)
