"""Clock-skew policy: what a client's clock says, and whether it is on time.

Role: the gateway parses every vote's `clientTs` (RFC 3339, offset required)
and classifies it against its own receive time before publishing (brief §5).
Offline phones upload hours after the fact and phone clocks drift, so the
policy tolerates both, within limits that each tenant may tune;
`SkewPolicy()` holds the platform defaults.

Invariants:
- Every limit is exclusive ("more than", as the brief words it). A vote
  exactly `future_tolerance` ahead is accepted; one exactly `late_after` old
  is on time; one exactly `too_old` old is late, not too old. Precision is
  the microsecond, `datetime`'s own.
- Both instants must be timezone-aware (naive raises ValueError). They are
  compared as absolute instants, so the client's UTC offset never changes
  the verdict.
- Monotonic: moving `client_ts` earlier never makes the verdict less late, in
  the order future_timestamp < on_time < late < too_old.
- Pure: no clock reads; the caller passes `received_at`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

_ZERO = timedelta(0)
# RFC 3339 date-time. The offset is mandatory; "T" and "Z" may be lowercase
# (RFC 3339 §5.6). Explicit [0-9], because \d would match non-ASCII digits.
_RFC3339_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(?:\.[0-9]{1,9})?"
    r"(?:[Zz]|[+-](?P<off_h>[0-9]{2}):(?P<off_m>[0-9]{2}))"
)


@dataclass(frozen=True)
class SkewPolicy:
    """One tenant's tolerances. The defaults are the brief's."""

    future_tolerance: timedelta = timedelta(minutes=2)
    too_old: timedelta = timedelta(days=7)
    late_after: timedelta = timedelta(minutes=15)

    def __post_init__(self) -> None:
        # A misconfigured tenant must fail loudly when its config is loaded,
        # not silently reject (or accept) every vote.
        if self.future_tolerance < _ZERO:
            raise ValueError("future_tolerance must not be negative")
        if self.late_after < _ZERO:
            raise ValueError("late_after must not be negative")
        if self.late_after > self.too_old:
            raise ValueError("late_after must not exceed too_old")


DEFAULT_POLICY = SkewPolicy()


class Timeliness(StrEnum):
    on_time = "on_time"
    late = "late"
    future_timestamp = "future_timestamp"
    too_old = "too_old"


def classify(client_ts: datetime, received_at: datetime, policy: SkewPolicy) -> Timeliness:
    """Classify `client_ts` against the server's `received_at` under `policy`."""
    _require_aware(client_ts, "client_ts")
    _require_aware(received_at, "received_at")
    # Aware subtraction compares absolute instants and never overflows, even
    # for year-1 or year-9999 timestamps with extreme offsets.
    age = received_at - client_ts
    if -age > policy.future_tolerance:
        return Timeliness.future_timestamp
    if age > policy.too_old:
        return Timeliness.too_old
    if age > policy.late_after:
        return Timeliness.late
    return Timeliness.on_time


def _require_aware(value: datetime, name: str) -> None:
    # A naive time has no defined instant: comparing it would silently assume
    # the server's zone, which is exactly the bug this policy exists to avoid.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


def parse_client_ts(text: str) -> datetime:
    """Parse an RFC 3339 date-time that carries an offset; keep the client's offset.

    Fractions of up to 9 digits (nanoseconds) are accepted and truncated to
    microseconds. Raises ValueError for anything else: a naive time, a date
    that does not exist, an offset beyond ±23:59, or a leap second (:60),
    which datetime cannot represent and phones smear away anyway.
    """
    match = _RFC3339_RE.fullmatch(text)
    if match is None:
        raise ValueError("not an RFC 3339 date-time with an offset")
    off_h, off_m = match.group("off_h", "off_m")
    # Two ASCII digits each, so comparing the text compares the numbers.
    if off_h is not None and (off_h > "23" or off_m > "59"):
        raise ValueError("offset out of range")
    # The pattern has pinned the text down to a shape that fromisoformat reads
    # as RFC 3339 does, except for a lowercase "z", which it refuses. It keeps
    # the client's offset, reads "-00:00" as UTC (the instant, RFC 3339 §4.3),
    # truncates fractions to microseconds (rounding up could push a vote into
    # the future), and refuses month 13, Feb 30, hour 24 and second 60.
    if text[-1] == "z":
        text = text[:-1] + "Z"
    return datetime.fromisoformat(text)
