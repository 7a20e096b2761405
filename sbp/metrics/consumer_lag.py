"""Consumer lag from what a consumer already knows: no broker round trip per scrape.

A consumer learns each partition's high watermark (the offset the next
produced record will get) from every fetch response. Lag is that minus the
next offset the consumer has *finished* with: for the vote stage, the next
offset its durable progress expects; for the PostgreSQL sink, the first offset
of a batch it has not yet committed, else its position. So a record read into
a batch that is still waiting on PostgreSQL counts as lag until it is stored.

The lag of a consumer that is not running is not reported here (it has no
fetches): the `up` series and the missing lag series show that case instead.
"""

from __future__ import annotations

from collections.abc import Mapping


def partition_lag(high_watermark: int | None, next_offset: int | None) -> int | None:
    """Records in the partition at or past `next_offset`; None when either is unknown.

    Never negative: a high watermark from an older fetch can trail a position
    the consumer has just moved past it.
    """
    if high_watermark is None or next_offset is None or high_watermark < 0 or next_offset < 0:
        return None
    return max(0, high_watermark - next_offset)


def unfinished_from(
    in_flight: Mapping[int, int], positions: Mapping[int, int | None]
) -> dict[int, int | None]:
    """The next offset each partition is not finished with.

    `in_flight` holds the first offset of the batch being written per partition
    (records read, not yet durable); otherwise the consumer's position counts.
    """
    return {p: in_flight.get(p, position) for p, position in positions.items()}
