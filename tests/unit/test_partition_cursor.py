"""The partition's own progress judging every record: process, skip, or a gap to seek over."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.tables.partition_cursor import SEEK_PATIENCE_S, Admit, PartitionCursor


def test_no_progress_processes_whatever_comes_first() -> None:
    cursor = PartitionCursor.from_progress(None)
    assert cursor.expected is None
    assert cursor.admit(1234) is Admit.PROCESS
    cursor.processed(1234)
    assert cursor.expected == 1235


def test_progress_names_the_last_offset_done() -> None:
    assert PartitionCursor.from_progress(41).expected == 42
    assert PartitionCursor.from_progress(0).expected == 1


def test_the_expected_offset_is_processed_and_the_cursor_moves_on() -> None:
    cursor = PartitionCursor(expected=10)
    assert cursor.admit(10) is Admit.PROCESS
    cursor.processed(10)
    assert cursor.admit(11) is Admit.PROCESS
    cursor.processed(11)
    assert cursor.expected == 12
    assert cursor.gaps == 0


def test_admit_alone_does_not_advance() -> None:
    cursor = PartitionCursor(expected=10)
    assert cursor.admit(10) is Admit.PROCESS
    assert cursor.expected == 10
    assert cursor.admit(10) is Admit.PROCESS


def test_offsets_already_done_are_skipped() -> None:
    cursor = PartitionCursor(expected=10)
    assert cursor.admit(9) is Admit.SKIP
    assert cursor.admit(0) is Admit.SKIP
    assert cursor.expected == 10
    assert not cursor.seeking
    assert cursor.gaps == 0


def test_an_offset_past_the_expected_one_is_a_gap() -> None:
    cursor = PartitionCursor(expected=10)
    assert cursor.admit(13, now=100.0) is Admit.GAP
    assert cursor.gaps == 1
    assert cursor.expected == 10
    # The gap alone starts no seek: that is the caller's, who may first move the
    # cursor to the log start.
    assert not cursor.seeking
    # Until a seek starts, every record past the expected one is a gap, and counted.
    assert cursor.admit(14, now=100.0) is Admit.GAP
    assert cursor.gaps == 2


def test_a_seek_started_waits_for_its_target_within_the_patience() -> None:
    cursor = PartitionCursor(expected=10)
    assert cursor.admit(13, now=100.0) is Admit.GAP
    cursor.seek_started(10, now=100.0)
    assert cursor.expected == 10
    assert cursor.seeking
    assert cursor.seek_deadline == 100.0 + SEEK_PATIENCE_S
    # The caller judges the record that showed the gap again: it waits for the seek.
    assert cursor.admit(13, now=100.0) is Admit.SKIP
    assert cursor.gaps == 1


def test_while_seeking_later_records_are_skipped_not_new_gaps() -> None:
    cursor = PartitionCursor(expected=10)
    assert cursor.admit(13, now=100.0) is Admit.GAP
    cursor.seek_started(10, now=100.0)
    # Records fetched before the seek took effect keep arriving.
    assert cursor.admit(14, now=101.0) is Admit.SKIP
    assert cursor.admit(20, now=102.0) is Admit.SKIP
    assert cursor.admit(9, now=103.0) is Admit.SKIP
    assert cursor.gaps == 1
    assert cursor.seeking
    # The seek lands: the expected record ends the seeking.
    assert cursor.admit(10, now=104.0) is Admit.PROCESS
    assert not cursor.seeking
    cursor.processed(10)
    # A new gap is one at once, though the old seek's patience has not run out.
    assert cursor.admit(12, now=104.5) is Admit.GAP
    assert cursor.gaps == 2


def test_a_seek_whose_target_does_not_arrive_within_the_patience_is_a_gap_again() -> None:
    cursor = PartitionCursor(expected=10)
    cursor.seek_started(10, now=100.0)
    assert cursor.admit(11, now=100.0) is Admit.SKIP
    assert cursor.admit(12, now=100.0 + SEEK_PATIENCE_S - 0.001) is Admit.SKIP
    assert cursor.gaps == 0
    # The patience ends at its deadline: the next record past the target is a gap.
    assert cursor.admit(13, now=100.0 + SEEK_PATIENCE_S) is Admit.GAP
    assert cursor.gaps == 1
    assert cursor.expected == 10
    # Records already done are still skipped, not gaps.
    assert cursor.admit(9, now=200.0) is Admit.SKIP
    assert cursor.gaps == 1
    # The caller seeks again: a new patience, counted from the new seek.
    cursor.seek_started(10, now=106.0)
    assert cursor.seek_deadline == 106.0 + SEEK_PATIENCE_S
    assert cursor.admit(14, now=106.0 + SEEK_PATIENCE_S - 0.001) is Admit.SKIP
    assert cursor.admit(10, now=107.0) is Admit.PROCESS
    assert not cursor.seeking
    assert cursor.gaps == 1


def test_a_gap_below_the_log_start_moves_the_cursor_to_it() -> None:
    cursor = PartitionCursor(expected=10)
    assert cursor.admit(50, now=100.0) is Admit.GAP
    assert cursor.log_start_is(40)
    assert cursor.expected == 40
    assert not cursor.seeking  # log_start_is starts no seek
    cursor.seek_started(40, now=100.0)
    assert cursor.admit(50, now=100.0) is Admit.SKIP
    assert cursor.admit(40, now=101.0) is Admit.PROCESS
    assert not cursor.seeking
    assert cursor.gaps == 1


def test_the_log_start_leaves_a_seek_under_way_alone() -> None:
    cursor = PartitionCursor(expected=10)
    cursor.seek_started(10, now=100.0)
    assert cursor.admit(50, now=100.0 + SEEK_PATIENCE_S) is Admit.GAP
    assert cursor.log_start_is(40)
    assert cursor.expected == 40
    assert cursor.seeking
    assert cursor.seek_deadline == 100.0 + SEEK_PATIENCE_S


def test_retention_that_removed_exactly_the_missing_records_admits_the_record_seen() -> None:
    cursor = PartitionCursor(expected=10)
    assert cursor.admit(25, now=100.0) is Admit.GAP
    assert cursor.log_start_is(25)
    cursor.seek_started(25, now=100.0)
    assert cursor.admit(25, now=100.0) is Admit.PROCESS
    assert not cursor.seeking
    assert cursor.gaps == 1


def test_a_gap_whose_records_are_still_in_the_log_needs_a_seek() -> None:
    for log_start in (0, 9, 10):
        cursor = PartitionCursor(expected=10)
        assert cursor.admit(30, now=100.0) is Admit.GAP
        assert not cursor.log_start_is(log_start)
        assert cursor.expected == 10
        assert not cursor.seeking
        cursor.seek_started(10, now=100.0)
        assert cursor.seeking
        # The record that showed the gap is not processed: it is read again after the seek.
        assert cursor.admit(30, now=100.0) is Admit.SKIP
        assert cursor.gaps == 1


def test_log_start_means_nothing_without_progress() -> None:
    cursor = PartitionCursor(expected=None)
    assert not cursor.log_start_is(100)
    assert cursor.expected is None


# -- the cursor and its caller, over a log that faust reads unreliably ---------


class Consumer:
    """A partition's log [log_start, end) read by a consumer that skips records.

    `stale` are records fetched before the last seek: they still arrive first.
    A seek below the log start lands on the log start, as Kafka resets it.
    """

    def __init__(self, log_start: int, end: int, skips: list[int]) -> None:
        self.log_start = log_start
        self.end = end
        self.position = log_start
        self.stale: list[int] = []
        self.skips = skips

    def next(self) -> int | None:
        if self.stale:
            return self.stale.pop(0)
        if self.skips:
            # faust acks and drops records it reads during recovery. Only a later
            # record can show the gap, so the log's last record is never dropped.
            self.position = max(self.position, min(self.end - 1, self.position + self.skips.pop(0)))
        if self.position >= self.end:
            return None
        self.position += 1
        return self.position - 1

    def seek(self, offset: int, still_fetched: int) -> None:
        ahead = range(self.position, min(self.end, self.position + still_fetched))
        self.stale = [*self.stale, *ahead]
        self.position = max(offset, self.log_start)


class FakeClock:
    """The stage's monotonic clock: each record read takes `step_s`."""

    def __init__(self, now: float = 0.0, step_s: float = 1.0) -> None:
        self.now = now
        self.step_s = step_s

    def step(self) -> float:
        self.now += self.step_s
        return self.now


def seek_to_expected(
    cursor: PartitionCursor, consumer: Consumer, now: float, still_fetched: int
) -> None:
    """The stage's `_seek_to_expected`: the log start first, then the seek."""
    cursor.log_start_is(consumer.log_start)
    target = cursor.expected if cursor.expected is not None else consumer.log_start
    cursor.seek_started(target, now)
    consumer.seek(target, still_fetched)


def consume(
    cursor: PartitionCursor,
    consumer: Consumer,
    fetched: list[int],
    max_steps: int,
    clock: FakeClock | None = None,
) -> list[int]:
    """What the vote stage does with each record; returns the offsets processed.

    `fetched` says, per seek the stage makes, how many records were already
    fetched from the old position (they arrive before the seek lands).
    """
    clock = clock or FakeClock()
    processed: list[int] = []
    for _step in range(max_steps):
        offset = consumer.next()
        if offset is None:
            return processed
        now = clock.step()
        verdict = cursor.admit(offset, now)
        if verdict is Admit.GAP:
            seek_to_expected(cursor, consumer, now, fetched.pop(0) if fetched else 0)
            verdict = cursor.admit(offset, now)  # processed if it is the new log start
        if verdict is Admit.PROCESS:
            processed.append(offset)
            cursor.processed(offset)
    raise AssertionError("the consumer never reached the end of the log")


def test_records_after_the_progress_are_processed_despite_stale_fetches() -> None:
    cursor = PartitionCursor(expected=5)
    consumer = Consumer(0, 20, skips=[])
    consumer.position = 12  # faust committed past records it skipped
    clock = FakeClock(step_s=1.0)
    seek_to_expected(cursor, consumer, clock.now, still_fetched=4)  # 12..15 arrive first
    assert consume(cursor, consumer, fetched=[3], max_steps=1_000, clock=clock) == list(
        range(5, 20)
    )
    # The stale records came within the patience: skipped, no gap.
    assert cursor.gaps == 0


def test_stale_fetches_outlasting_the_patience_cost_a_seek_but_no_record() -> None:
    cursor = PartitionCursor(expected=5)
    consumer = Consumer(0, 30, skips=[])
    consumer.position = 12
    clock = FakeClock(step_s=2.0)
    seek_to_expected(cursor, consumer, clock.now, still_fetched=8)  # 12..19, 16 s of them
    processed = consume(cursor, consumer, fetched=[3], max_steps=1_000, clock=clock)
    assert processed == list(range(5, 30))
    # 12, 13 come within the patience; 14 (at 6 s) is a gap and a seek again; so is
    # 17 (at 12 s), the seek after it started at 6 s. Each seek costs time, not records.
    assert cursor.gaps == 2


def test_a_mid_stream_gap_is_sought_back_and_filled() -> None:
    cursor = PartitionCursor(expected=0)
    consumer = Consumer(0, 12, skips=[0, 0, 0, 4])  # faust drops 3..6
    assert consume(cursor, consumer, fetched=[2], max_steps=1_000) == list(range(12))
    # 7 shows the gap; 8 and 9, fetched before the seek, are skipped within the patience.
    assert cursor.gaps == 1


def test_an_assignment_seek_goes_to_the_log_start_when_retention_passed_the_progress() -> None:
    """Progress 9, but retention removed offsets 10..39 before any worker read them."""
    cursor = PartitionCursor.from_progress(9)
    consumer = Consumer(40, 60, skips=[])
    consumer.position = 40
    seek_to_expected(cursor, consumer, now=0.0, still_fetched=0)
    assert cursor.expected == 40
    assert consume(cursor, consumer, fetched=[], max_steps=1_000) == list(range(40, 60))
    assert cursor.gaps == 0


def test_a_seek_reset_past_retention_still_processes_the_log() -> None:
    """Progress 9; the stage found offset 10 in the log and sought to it.

    Retention removed 10..39 before the seek took effect, so Kafka reset the
    out-of-range position to the log start, 40. Records 40.. must be processed
    (after the patience, the stage finds the new log start), not skipped forever
    while the cursor waits for an offset that no longer exists.
    """
    cursor = PartitionCursor.from_progress(9)
    consumer = Consumer(0, 60, skips=[])
    consumer.position = 40
    seek_to_expected(cursor, consumer, now=0.0, still_fetched=0)
    assert cursor.expected == 10
    consumer.log_start = 40  # retention ran after the check...
    consumer.seek(10, still_fetched=0)  # ...and before Kafka served the seek
    assert consumer.position == 40
    assert consume(cursor, consumer, fetched=[], max_steps=1_000) == list(range(40, 60))
    assert cursor.gaps == 1


def test_a_seek_whose_target_faust_drops_again_does_not_stall_the_partition() -> None:
    """The stage seeks to 10; faust drops record 10 once more (recovery, old generation).

    Records 11.. then arrive while the cursor is seeking. They must lead to
    another seek once the patience ends, never to every later record being skipped.
    """
    cursor = PartitionCursor(expected=10)
    consumer = Consumer(0, 30, skips=[1])
    consumer.position = 10
    clock = FakeClock(step_s=1.0)
    seek_to_expected(cursor, consumer, clock.now, still_fetched=0)
    assert consume(cursor, consumer, fetched=[], max_steps=1_000, clock=clock) == list(
        range(10, 30)
    )
    # 11..14 are skipped within the patience; 15, at its end, is the one gap.
    assert cursor.gaps == 1


def timer_reseeks(cursor: PartitionCursor, consumer: Consumer, clock: FakeClock) -> None:
    """The stage's timer: a seek still waiting past its patience is made again."""
    if cursor.overdue(clock.now):
        seek_to_expected(cursor, consumer, clock.now, still_fetched=0)


def test_a_dropped_seek_target_on_a_partition_gone_quiet_is_not_left_behind() -> None:
    """The stage seeks to 10, faust drops 10 again, and 11..13 (the last records) arrive at once.

    They are skipped while the cursor waits for 10. Nothing more is written to
    the partition, so no record arrives to show the seek failed: the stage's
    timer sees the seek overdue and makes it again.
    """
    cursor = PartitionCursor(expected=10)
    consumer = Consumer(0, 14, skips=[1])
    consumer.position = 10
    clock = FakeClock(step_s=0.01)
    seek_to_expected(cursor, consumer, clock.now, still_fetched=0)
    processed = consume(cursor, consumer, fetched=[], max_steps=1_000, clock=clock)
    assert processed == []
    assert not cursor.overdue(clock.now)  # within the patience: the timer waits
    clock.now += 10 * SEEK_PATIENCE_S  # the partition stays quiet; the timer ticks
    timer_reseeks(cursor, consumer, clock)
    processed += consume(cursor, consumer, fetched=[], max_steps=1_000, clock=clock)
    assert processed == list(range(10, 14))


def test_a_seek_reset_past_retention_on_a_partition_gone_quiet_is_not_left_behind() -> None:
    """As the reset past retention above, but 40..42 are the last records and come at once.

    They are skipped while the cursor waits for 10, which left the log; the
    timer's second seek finds the log start and brings them.
    """
    cursor = PartitionCursor.from_progress(9)
    consumer = Consumer(0, 43, skips=[])
    consumer.position = 40
    clock = FakeClock(step_s=0.01)
    seek_to_expected(cursor, consumer, clock.now, still_fetched=0)
    consumer.log_start = 40
    consumer.seek(10, still_fetched=0)
    processed = consume(cursor, consumer, fetched=[], max_steps=1_000, clock=clock)
    assert processed == []
    clock.now += 10 * SEEK_PATIENCE_S
    timer_reseeks(cursor, consumer, clock)
    processed += consume(cursor, consumer, fetched=[], max_steps=1_000, clock=clock)
    assert processed == list(range(40, 43))


@settings(max_examples=400)
@given(
    log_start=st.integers(min_value=0, max_value=20),
    length=st.integers(min_value=0, max_value=40),
    progress_back=st.integers(min_value=-30, max_value=45),
    committed_ahead=st.integers(min_value=0, max_value=10),
    retention_race=st.integers(min_value=0, max_value=10),
    skips=st.lists(st.integers(min_value=0, max_value=6), max_size=20),
    fetched=st.lists(st.integers(min_value=0, max_value=8), max_size=20),
    step_s=st.sampled_from([0.01, 0.5, 1.0, 2.0, SEEK_PATIENCE_S, 7.0]),
)
def test_every_record_from_the_progress_on_is_processed_once_in_order(
    log_start: int,
    length: int,
    progress_back: int,
    committed_ahead: int,
    retention_race: int,
    skips: list[int],
    fetched: list[int],
    step_s: float,
) -> None:
    end = log_start + length
    # Stored progress inside the log, or below its start (retention removed records).
    expected = max(0, min(end, log_start + progress_back))
    cursor = PartitionCursor(expected=expected)
    clock = FakeClock(step_s=step_s)
    # On assignment the stage seeks to its progress (or the log start), while
    # records from faust's committed offset (maybe past records it skipped) are
    # already fetched. Retention may move the log start between the stage's look
    # at it and the seek (`retention_race`), and Kafka then resets the position.
    consumer = Consumer(max(0, log_start - retention_race), end, skips)
    consumer.position = min(end, max(expected, log_start) + committed_ahead)
    seek_to_expected(cursor, consumer, clock.now, committed_ahead)
    if consumer.log_start < log_start:
        consumer.log_start = log_start
        consumer.position = max(consumer.position, log_start)

    processed = consume(cursor, consumer, fetched, max_steps=10_000, clock=clock)
    # The partition keeps receiving votes: a record arriving after the patience
    # shows a seek that never landed. Each failed seek used up one of faust's
    # drops, so one late record more than there were drops is enough.
    for _late in range(len(skips) + 1):
        clock.now += SEEK_PATIENCE_S
        consumer.end += 1
        processed += consume(cursor, consumer, fetched, max_steps=10_000, clock=clock)

    assert processed == list(range(max(expected, log_start), consumer.end))


def test_an_assigned_cursor_is_quiet_overdue_only_until_its_partition_reads() -> None:
    cursor = PartitionCursor(expected=10)
    cursor.assigned(now=100.0)
    assert not cursor.quiet_overdue(100.0 + SEEK_PATIENCE_S - 0.1)
    assert cursor.quiet_overdue(100.0 + SEEK_PATIENCE_S)
    # The expected record came: faust resumed where the stage left off.
    assert cursor.admit(10) is Admit.PROCESS
    assert not cursor.quiet_overdue(1e9)


def test_reading_from_below_the_progress_ends_the_quiet_watch() -> None:
    cursor = PartitionCursor(expected=10)
    cursor.assigned(now=100.0)
    assert cursor.admit(7) is Admit.SKIP
    assert not cursor.quiet_overdue(1e9)


def test_a_gap_right_after_assignment_is_a_gap() -> None:
    cursor = PartitionCursor(expected=10)
    cursor.assigned(now=100.0)
    assert cursor.admit(12, now=100.0) is Admit.GAP
    cursor.seek_started(10, now=100.0)
    assert not cursor.quiet_overdue(1e9)
