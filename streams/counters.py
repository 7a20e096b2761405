"""In-process counters of what the worker did, served at the worker's `/stats` page.

They reset when the worker restarts, which is what makes them useful after a
crash: a non-zero `*_replayed` count shows records processed a second time
(at-least-once delivery) that the idempotent steps absorbed.
"""

from __future__ import annotations

from collections import Counter

counters: Counter[str] = Counter()
