"""The collector's time is counted per generation."""

from __future__ import annotations

import gc

from streams.gc_meter import GcMeter


def test_a_full_collection_is_counted_with_its_time() -> None:
    meter = GcMeter().install()
    try:
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        gc.collect(2)
        stats = meter.stats()
        assert stats["gc_gen2"] >= 1
        assert meter.seconds > 0
        assert set(stats) == {"gc_ms", "gc_gen0", "gc_gen1", "gc_gen2"}
    finally:
        gc.callbacks.remove(meter._on_gc)
