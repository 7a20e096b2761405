"""A warning that repeats at most once per interval, and says how many it held back.

The ingest path can hit the same condition on every batch (Redis down, a client
re-sending votes for other zones) at a hundred batches a second. One line per
interval keeps the log readable and cheap without hiding that it goes on.
"""

from __future__ import annotations

import logging
import time


class ThrottledWarning:
    def __init__(self, log: logging.Logger, every_s: float = 10.0) -> None:
        self._log = log
        self._every = every_s
        self._last = -every_s
        self._held_back = 0

    def warn(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last < self._every:
            self._held_back += 1
            return
        if self._held_back:
            message += f" (and {self._held_back} more like it since the last report)"
        self._last, self._held_back = now, 0
        self._log.warning(message, *args)
