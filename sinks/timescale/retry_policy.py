"""The sink's one retry policy (tenacity): capped exponential back-off until success or shutdown.

A transient failure (the database or the registry away, Kafka not confirming)
only delays the batch, so it is retried without a limit on attempts: giving up
would mean either skipping records or crashing into the same wait after a
restart. What bounds the wait is shutdown: once the stop event is set the
current sleep ends at once, one last attempt is made, and its error is raised
so the batch is left uncommitted and will be read again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_when_event_set,
    wait_exponential_jitter,
)

log = logging.getLogger(__name__)

FIRST_WAIT_S = 0.2
MAX_WAIT_S = 5.0


def until_success(
    what: str,
    retry_on: Callable[[BaseException], bool],
    stop: threading.Event,
    on_retry: Callable[[], None] = lambda: None,
) -> Retrying:
    """A `Retrying` that retries the errors `retry_on` accepts and raises any other at once."""

    def sleep(seconds: float) -> None:
        stop.wait(seconds)

    def before_sleep(state: RetryCallState) -> None:
        on_retry()
        outcome = state.outcome
        error: Any = outcome.exception() if outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        # The first failures of an outage are worth a line each; later ones every 10th.
        if state.attempt_number <= 3 or state.attempt_number % 10 == 0:
            log.warning(
                "%s failed (attempt %d), retrying in %.1fs: %s",
                what,
                state.attempt_number,
                wait,
                error,
            )

    return Retrying(
        retry=retry_if_exception(retry_on),
        wait=wait_exponential_jitter(multiplier=FIRST_WAIT_S, max=MAX_WAIT_S, jitter=0.1),
        stop=stop_when_event_set(stop),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
