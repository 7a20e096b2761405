"""Writing faust table keys at the end of a batch, each within its own partition.

faust routes a table write to the changelog partition of the *current event*,
and refuses writes when there is none, which is the case inside `take_events()`
batches (faust #497). Writing each key once per batch, with the current event
set to an event of that key's partition, keeps the changelog co-partitioned
with the source topic and turns N writes of a hot key into one.

It relies on faust's `_current_event` context variable, the same one faust sets
while iterating a stream; `tests/integration/test_crash_recovery.py` proves the
pattern exact under SIGKILL.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from faust import streams as faust_streams


@contextmanager
def within_partition_of(event: Any) -> Iterator[None]:
    token = faust_streams._current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        faust_streams._current_event.reset(token)
