"""Run a `take_events()` batch body so that faust's ack can never outrun the work.

faust acks a taken batch in a `finally`, on success, on an exception and on a
cancel alike, and commits acked offsets soon after. The vote stage keeps its
own progress and does not depend on faust's commits, but a batch that failed
half-way must still not be mistaken for done. So:

- a cancel (rebalance, shutdown) must not interrupt the body: it is let run to
  completion first, then the cancel proceeds;
- a body that fails, whether on its own or while a cancel waited for it, stops
  the process at once, so nothing after the failure runs and the batch is read
  again after the restart. Every step is idempotent under that replay.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

log = logging.getLogger(__name__)
FAIL_STOP_EXIT_CODE = 70


def fail_stop(count: int, exc: BaseException | None) -> None:
    log.critical("batch of %d failed; stopping before anything else runs", count, exc_info=exc)
    os._exit(FAIL_STOP_EXIT_CODE)


async def complete_batch(
    body: Callable[[Sequence[Any]], Awaitable[None]],
    events: Sequence[Any],
    stop: Callable[[int, BaseException | None], None] = fail_stop,
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
            except Exception:
                break
        if task.cancelled() or task.exception() is not None:
            # Unfinished or failed while the cancel waited: faust would ack it on the way out.
            stop(len(events), None if task.cancelled() else task.exception())
        raise
    except Exception as exc:
        stop(len(events), exc)
