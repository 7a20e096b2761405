"""Run a `take_events()` batch body so that faust's ack can never outrun the work.

faust acks a taken batch in a `finally`, on success, on an exception and on a
cancel alike, and commits acked offsets soon after. So:

- a cancel (rebalance, shutdown) must not interrupt the body: it is let run to
  completion first, then the cancel proceeds;
- an exception the body did not handle (its transient failures are retried
  inside it) stops the process at once, before the next commit, so the batch
  is read again after the restart instead of being lost. Every step is
  idempotent under that replay.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

log = logging.getLogger(__name__)
FAIL_STOP_EXIT_CODE = 70


async def complete_batch(
    body: Callable[[Sequence[Any]], Awaitable[None]], events: Sequence[Any]
) -> None:
    task = asyncio.ensure_future(body(events))
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        while not task.done():
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                continue
        raise
    except Exception:
        log.critical(
            "batch of %d failed; stopping before its offsets commit", len(events), exc_info=True
        )
        os._exit(FAIL_STOP_EXIT_CODE)
