"""A repeated warning is logged at most once per interval, with the count it held back."""

from __future__ import annotations

import logging
import time

import pytest

from gateway.log_throttle import ThrottledWarning


def test_repeats_within_the_interval_are_held_back_and_then_counted(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    warning = ThrottledWarning(logging.getLogger("test.throttle"), every_s=10.0)
    with caplog.at_level(logging.WARNING, logger="test.throttle"):
        warning.warn("redis down: %s", "refused")
        clock[0] += 5
        warning.warn("redis down: %s", "refused")
        warning.warn("redis down: %s", "refused")
        clock[0] += 5
        warning.warn("redis down: %s", "timeout")
    assert [r.getMessage() for r in caplog.records] == [
        "redis down: refused",
        "redis down: timeout (and 2 more like it since the last report)",
    ]
