"""The DLQ depth by reason: each retained letter counted once, a partition counted again
from its new start when retention removed letters it had counted."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from streams.dlq_depth import DlqDepth, ReasonTally

Letters = dict[int, list[str]]  # partition → reasons, at offsets 0, 1, 2, …


Read = Callable[[dict[int, tuple[int, int]], int], Iterator[tuple[int, int, str | None]]]


def _read_from(log: Letters) -> Read:
    """A reader over an in-memory log, giving at most `limit` letters a call."""

    def read(
        ranges: dict[int, tuple[int, int]], limit: int
    ) -> Iterator[tuple[int, int, str | None]]:
        given = 0
        for partition, (first, end) in sorted(ranges.items()):
            for offset in range(first, end):
                if given == limit:
                    return
                given += 1
                yield partition, offset, log[partition][offset]

    return read


def test_letters_are_counted_once_across_rounds() -> None:
    tally = ReasonTally()
    for partition, offset, reason in ((0, 0, "undecodable"), (0, 1, "wrong_key")):
        tally.to_read({0: (0, 2)})
        tally.add(partition, offset, reason)
    # The next round reads nothing more: the same letters are not counted twice.
    assert tally.to_read({0: (0, 2)}) == {}
    tally.add(0, 1, "wrong_key")  # a repeat delivery below the position changes nothing
    assert tally.by_reason() == {"undecodable": 1, "wrong_key": 1}
    assert tally.behind() == 0


def test_retention_makes_a_partition_count_again_from_its_new_start() -> None:
    tally = ReasonTally()
    assert tally.to_read({0: (0, 3), 1: (0, 1)}) == {0: (0, 3), 1: (0, 1)}
    for offset, reason in enumerate(("undecodable", "undecodable", "wrong_key")):
        tally.add(0, offset, reason)
    tally.add(1, 0, "db_rejected")
    # Retention deleted partition 0's first two letters: it is read again from 2.
    assert tally.to_read({0: (2, 3), 1: (0, 1)}) == {0: (2, 3)}
    assert tally.behind() == 1
    tally.add(0, 2, "wrong_key")
    assert tally.by_reason() == {"wrong_key": 1, "db_rejected": 1}


def test_a_gap_the_reader_reports_is_skipped() -> None:
    tally = ReasonTally()
    tally.to_read({0: (0, 5)})
    tally.add(0, 0, "undecodable")
    tally.skip_to(0, 5)  # offsets 1-4 were compacted or aborted: nothing left to read
    assert tally.to_read({0: (0, 5)}) == {}
    assert tally.by_reason() == {"undecodable": 1}


def test_the_collector_exports_the_depth_by_reason_and_what_is_behind() -> None:
    log: Letters = {0: ["undecodable"] * 3 + ["wrong_key"], 1: ["unknown_tenant"]}
    offsets = {0: (0, 4), 1: (0, 1)}
    depth = DlqDepth(lambda: offsets, every_s=60, read_reasons=_read_from(log))

    def exported() -> tuple[dict[str, float], float]:
        families = {f.name: f for f in depth.collect()}
        by_reason = {
            s.labels["reason"]: s.value for s in families["sbp_dlq_depth_by_reason_records"].samples
        }
        return by_reason, families["sbp_dlq_depth_by_reason_behind_records"].samples[0].value

    depth.refresh()
    assert exported() == ({"undecodable": 3, "wrong_key": 1, "unknown_tenant": 1}, 0)
    # Two more letters arrive; the next round counts only them.
    log[0] += ["wrong_key", "not_avro_framed"]
    offsets[0] = (0, 6)
    depth.refresh()
    assert exported() == (
        {"undecodable": 3, "wrong_key": 2, "unknown_tenant": 1, "not_avro_framed": 1},
        0,
    )


def test_a_failed_read_keeps_what_was_counted() -> None:
    log: Letters = {0: ["undecodable", "wrong_key"]}

    def failing(
        ranges: dict[int, tuple[int, int]], limit: int
    ) -> Iterator[tuple[int, int, str | None]]:
        yield 0, 0, log[0][0]
        raise ConnectionError("broker gone")

    depth = DlqDepth(lambda: {0: (0, 2)}, every_s=60, read_reasons=failing)
    depth.refresh()
    families = {f.name: f for f in depth.collect()}
    assert [s.value for s in families["sbp_dlq_depth_by_reason_records"].samples] == [1]
    assert families["sbp_dlq_depth_by_reason_behind_records"].samples[0].value == 1
    assert families["sbp_dlq_depth_read_errors"].samples[0].value == 1
