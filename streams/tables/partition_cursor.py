"""Where a partition's processing stands, and what to do with the next record.

faust can skip (and ack) records it reads during recovery or from an old
consumer generation, and can commit offsets past records never processed. The
vote stage therefore keeps its own progress in its changelogged state and
judges every record against it:

- an offset below the next expected one was already processed: skip it;
- the expected offset: process it;
- an offset above it is a gap: the caller seeks back to the expected offset
  (or to the log start, when retention removed the missing records) and
  records are skipped until the expected one arrives. Should it not arrive
  within `SEEK_PATIENCE_S` (faust dropped it again, or the position was reset
  elsewhere), the next record past it is a gap again and the seek is repeated.

A newly assigned partition is not sought: a seek throws away everything the
consumer has already fetched for it, and faust resumes at its committed
offset, which is the stage's own progress in the common case. The first
record tells: at the expected offset, go on; past it, a gap. A partition that
stays quiet shows nothing, so after the patience the caller compares the
expected offset with the log end (`quiet_overdue`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

SEEK_PATIENCE_S = 5.0


class Admit(StrEnum):
    PROCESS = "process"
    SKIP = "skip"
    GAP = "gap"


@dataclass
class PartitionCursor:
    # The next offset to process; None until the first record (no progress yet).
    expected: int | None
    seeking: bool = False
    seek_deadline: float = 0.0
    # A seek is owed (a gap, or a new assignment); the stage's keeper makes it.
    seek_needed: bool = False
    # How often this cursor found a gap.
    gaps: int = 0
    # Assigned and not sought: when to check the log end if the expected
    # offset has not arrived by then.
    quiet_deadline: float | None = None

    def admit(self, offset: int, now: float = 0.0) -> Admit:
        if self.expected is None or offset == self.expected:
            self.seeking = False
            self.quiet_deadline = None
            return Admit.PROCESS
        if offset < self.expected:
            # Reading from below the progress: it will reach the expected offset.
            self.quiet_deadline = None
            return Admit.SKIP
        if self.seeking and now < self.seek_deadline:
            return Admit.SKIP
        self.gaps += 1
        return Admit.GAP

    def seek_started(self, target: int, now: float) -> None:
        """The caller asked the consumer for `target`; skip until it arrives (or patience ends)."""
        self.expected = target
        self.seeking = True
        self.seek_deadline = now + SEEK_PATIENCE_S
        self.quiet_deadline = None

    def assigned(self, now: float) -> None:
        """Newly held, not sought: wait for the first record to tell where faust resumed."""
        self.quiet_deadline = now + SEEK_PATIENCE_S

    def quiet_overdue(self, now: float) -> bool:
        """Assigned a while ago and the expected offset never came: check the log end."""
        return self.quiet_deadline is not None and now >= self.quiet_deadline

    def overdue(self, now: float) -> bool:
        """Still waiting for a sought offset past the patience: the caller seeks again.

        A partition that goes quiet after a failed seek delivers no record that
        would show it, so the stage asks this on a timer too.
        """
        return self.seeking and now >= self.seek_deadline

    def processed(self, offset: int) -> None:
        self.expected = offset + 1

    def log_start_is(self, log_start: int) -> bool:
        """True (and the cursor moved there) when retention removed the expected records."""
        if self.expected is not None and log_start > self.expected:
            self.expected = log_start
            return True
        return False

    @staticmethod
    def from_progress(last_done: int | None) -> PartitionCursor:
        return PartitionCursor(expected=None if last_done is None else last_done + 1)
