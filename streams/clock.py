"""The clock that windows are computed at; injectable so results can be fixed in tests.

`SBP_CLOCK_FIXED_AT` (RFC 3339) pins the worker's clock, for demos and for
comparing windows at a fixed as-of time; otherwise it is the system clock.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


def clock_from_env() -> Clock:
    fixed = os.environ.get("SBP_CLOCK_FIXED_AT")
    if not fixed:
        return system_clock
    at = datetime.fromisoformat(fixed)
    if at.tzinfo is None:
        raise ValueError("SBP_CLOCK_FIXED_AT needs an offset, e.g. 2026-11-25T10:00:00+00:00")
    return lambda: at
