"""A taken batch's body runs to its end through a cancel, and a failed body never goes unstopped."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from streams.batch_guard import complete_batch

EVENTS = ["e1", "e2", "e3"]


class Stops:
    """Records each `stop` call instead of ending the process."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, BaseException | None]] = []

    def __call__(self, count: int, exc: BaseException | None) -> None:
        self.calls.append((count, exc))


class Body:
    """A batch body that waits for `release`, then finishes or fails."""

    def __init__(self, fail_with: Exception | None = None) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.fail_with = fail_with
        self.seen: list[Sequence[Any]] = []
        self.finished = False

    async def __call__(self, events: Sequence[Any]) -> None:
        self.seen.append(events)
        self.started.set()
        await self.release.wait()
        if self.fail_with is not None:
            raise self.fail_with
        self.finished = True


async def settle() -> None:
    """Let every ready callback run: a few loop turns, no wall-clock wait."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_body_that_succeeds_returns_and_is_not_stopped() -> None:
    stops = Stops()
    body = Body()
    body.release.set()
    await complete_batch(body, EVENTS, stop=stops)
    assert body.seen == [EVENTS]
    assert body.finished
    assert stops.calls == []


async def test_a_body_that_raises_calls_stop_with_the_count_and_the_error() -> None:
    stops = Stops()
    error = RuntimeError("sink down")
    body = Body(fail_with=error)
    body.release.set()
    await complete_batch(body, EVENTS, stop=stops)
    assert stops.calls == [(3, error)]


async def test_a_cancel_lets_the_body_finish_then_propagates_without_stop() -> None:
    stops = Stops()
    body = Body()
    guard = asyncio.ensure_future(complete_batch(body, EVENTS, stop=stops))
    await body.started.wait()
    guard.cancel()
    await settle()
    # The cancel reached the guard, but the body is still running, uninterrupted.
    assert not guard.done()
    assert not body.finished
    body.release.set()
    with pytest.raises(asyncio.CancelledError):
        await guard
    assert body.finished
    assert stops.calls == []


async def test_a_body_that_fails_after_a_cancel_is_stopped_not_acked() -> None:
    stops = Stops()
    error = RuntimeError("produce failed")
    body = Body(fail_with=error)
    guard = asyncio.ensure_future(complete_batch(body, EVENTS, stop=stops))
    await body.started.wait()
    guard.cancel()
    await settle()
    assert not guard.done()
    assert stops.calls == []
    body.release.set()
    with pytest.raises(asyncio.CancelledError):
        await guard
    assert stops.calls == [(3, error)]


async def test_repeated_cancels_still_wait_for_the_body() -> None:
    stops = Stops()
    body = Body()
    guard = asyncio.ensure_future(complete_batch(body, EVENTS, stop=stops))
    await body.started.wait()
    for _ in range(3):
        guard.cancel()
        await settle()
        assert not guard.done()
    body.release.set()
    with pytest.raises(asyncio.CancelledError):
        await guard
    assert body.finished
    assert stops.calls == []


async def test_a_body_that_fails_after_repeated_cancels_is_stopped() -> None:
    stops = Stops()
    error = ValueError("bad state")
    body = Body(fail_with=error)
    guard = asyncio.ensure_future(complete_batch(body, EVENTS, stop=stops))
    await body.started.wait()
    guard.cancel()
    await settle()
    guard.cancel()
    await settle()
    body.release.set()
    with pytest.raises(asyncio.CancelledError):
        await guard
    assert stops.calls == [(3, error)]


async def test_a_cancel_before_the_body_starts_still_runs_it_to_the_end() -> None:
    stops = Stops()
    body = Body()
    body.release.set()
    guard = asyncio.ensure_future(complete_batch(body, EVENTS, stop=stops))
    await asyncio.sleep(0)  # the guard has scheduled the body, which has not run yet
    assert not body.started.is_set()
    guard.cancel()
    with pytest.raises(asyncio.CancelledError):
        await guard
    assert body.finished
    assert stops.calls == []


async def test_a_body_cancelled_from_within_is_stopped() -> None:
    # The body's own task ended cancelled: its work is unfinished, so no ack.
    stops = Stops()

    async def body(events: Sequence[Any]) -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await complete_batch(body, EVENTS, stop=stops)
    assert stops.calls == [(3, None)]
