"""Time the worker spends in Python's cyclic garbage collector, for /stats.

The worker allocates several objects per record (faust's events and messages,
decoded votes), so the collector runs often: with Python's default thresholds
it took 5.7 s of a 60 s, 200k-vote run (about 10% of the event loop).
"""

from __future__ import annotations

import gc
import time
from typing import Any

# Collections start after this many new container objects instead of 700.
# Most of the worker's objects die young by reference counting (events,
# decoded records), so a larger first generation lets them go before any
# collection has to look at them, and the older generations fill more slowly.
GEN0_THRESHOLD = 20_000


def tune_collector() -> None:
    """Larger thresholds, and what start-up built (modules, the app) kept out of them."""
    _gen0, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
    gc.freeze()


class GcMeter:
    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = [0, 0, 0]
        self._started: float | None = None

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started is not None:
            self.seconds += time.perf_counter() - self._started
            self.collections[int(info["generation"])] += 1
            self._started = None

    def install(self) -> GcMeter:
        gc.callbacks.append(self._on_gc)
        return self

    def stats(self) -> dict[str, int]:
        return {
            "gc_ms": round(self.seconds * 1000),
            **{f"gc_gen{g}": n for g, n in enumerate(self.collections)},
        }
