"""Per-caller request budget (token bucket), pure: the clock is passed in.

A caller whose budget is empty gets 429 with Retry-After before anything is
validated or published. Budgets are per gateway process; the app's retries
after a 429 are what the Retry-After value paces.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class RateBudget:
    capacity: float = 60.0
    refill_per_s: float = 20.0
    # Callers are forgotten once their bucket has refilled, past this many entries,
    # so a long-running gateway does not keep one entry per user ever seen.
    prune_above: int = 10_000
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)

    def take(
        self,
        caller: str,
        now: float,
        capacity: float | None = None,
        refill_per_s: float | None = None,
    ) -> float:
        """Spend one request; returns 0 if allowed, else the seconds until one is available.
        `capacity` and `refill_per_s` override the defaults for this caller's tenant."""
        capacity = self.capacity if capacity is None else capacity
        refill = self.refill_per_s if refill_per_s is None else refill_per_s
        if len(self._buckets) > self.prune_above:
            self._prune(now)
        tokens, last = self._buckets.get(caller, (capacity, now))
        tokens = min(capacity, tokens + (now - last) * refill)
        if tokens >= 1.0:
            self._buckets[caller] = (tokens - 1.0, now)
            return 0.0
        self._buckets[caller] = (tokens, now)
        return (1.0 - tokens) / refill

    def _prune(self, now: float) -> None:
        refill_time = self.capacity / self.refill_per_s
        self._buckets = {
            caller: (tokens, last)
            for caller, (tokens, last) in self._buckets.items()
            if now - last < refill_time
        }

    @staticmethod
    def retry_after_header(wait_s: float) -> str:
        return str(max(1, math.ceil(wait_s)))
