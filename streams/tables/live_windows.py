"""The live windows of each zone and kind, kept up to date instead of summed each second.

A window of L minutes ending at minute M is its past (minutes M-L+1 .. M-1)
plus M's bucket. The pasts change little: a tick adds the current bucket to
them, a late vote replaces one past bucket (which only grew, so the past takes
the difference), and a new minute moves one bucket into the pasts and one out
of each. Only a zone and kind seen for the first time, or a bucket that lost
something, makes the pasts be summed from scratch.

The results are exactly those of summing each window's buckets from scratch:
value, preference and remote counts are sums of ints (order does not matter),
and unique voters are counted, never estimated. A past remembers which bucket
objects it summed and checks them against the buckets it is given on every
use, so it cannot show a replaced bucket: LiveBuckets replaces a bucket on
every batch and never changes one in place.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

from streams.tables.comfort_buckets import (
    LONGEST_WINDOW_MIN,
    WINDOWS_MIN,
    BucketSums,
    window_minutes,
)

Bucket = Mapping[str, Any]
# Windows by index in every list below, shortest first.
_LENGTHS = tuple(sorted(WINDOWS_MIN))
_LONGEST = len(_LENGTHS) - 1


@dataclass
class CurrentVoters:
    """The current bucket's voters looked up so far, and how many each past lacked.

    The current bucket grows between ticks, so a tick looks up only the voters
    it gained, not the hundreds it already had.
    """

    seen: set[str] = field(default_factory=set)
    newcomers: list[int] = field(default_factory=lambda: [0] * len(_LENGTHS))


@dataclass
class PastWindows:
    """Every window's past when `minute` is current: the sums of its buckets, and its voters.

    A voter is in a window's past when the newest past minute they voted in
    (`last_vote`) is in it, so one dict serves every window, and a new minute
    takes out only the voters whose newest vote has just left a window.
    """

    minute: int
    buckets: dict[int, Bucket] = field(default_factory=dict)  # minute → bucket summed in
    sums: list[BucketSums] = field(default_factory=lambda: [BucketSums() for _ in _LENGTHS])
    last_vote: dict[str, int] = field(default_factory=dict)  # voter → newest past minute
    unique: list[int] = field(default_factory=lambda: [0] * len(_LENGTHS))
    current: CurrentVoters = field(default_factory=CurrentVoters)

    @classmethod
    def summed(cls, buckets_by_minute: Mapping[int, Bucket], now_minute: int) -> PastWindows:
        """The pasts at `now_minute`, summed from scratch in one pass over their minutes."""
        past = cls(now_minute)
        sums = BucketSums()
        last_vote: dict[str, int] = {}
        newer = 1  # the current minute is in no past
        for i, length in enumerate(_LENGTHS):
            # The minutes this window's past has and the shorter one's lacks.
            older: dict[str, int] = {}
            for minute in window_minutes(now_minute - newer, length - newer):
                bucket = buckets_by_minute.get(minute)
                if bucket is not None:
                    sums.add(bucket)
                    past.buckets[minute] = bucket
                    # Oldest minute first, so each voter is left with their newest.
                    older.update(zip(bucket["u"], repeat(minute)))
            older.update(last_vote)  # the shorter window's minutes are newer still
            last_vote = older
            past.sums[i], past.unique[i] = sums, len(last_vote)
            sums = sums.copy()  # the next window goes on from these sums, leaving them be
            newer = length
        past.last_vote = last_vote
        return past

    def _oldest(self) -> list[int]:
        """The oldest minute of each window's past."""
        return [self.minute - length + 1 for length in _LENGTHS]

    def advance(self, now_minute: int) -> bool:
        """Slide the pasts to `now_minute`; False if summing from scratch is due instead."""
        if now_minute == self.minute:
            return True
        if not self.minute < now_minute < self.minute + LONGEST_WINDOW_MIN:
            return False  # the clock went back, or every bucket has left
        while self.minute < now_minute:
            self.minute += 1
            for i, length in enumerate(_LENGTHS):
                leaving = self.minute - length  # the oldest minute of the past before
                bucket = self.buckets.get(leaving)
                if bucket is not None:
                    self._take_out(i, leaving, bucket)
            self.buckets.pop(self.minute - LONGEST_WINDOW_MIN, None)
        # The bucket that was current has become past; refresh() adds it.
        self.current = CurrentVoters()
        return True

    def _take_out(self, i: int, minute: int, bucket: Bucket) -> None:
        """Take the bucket of `minute`, which has just left window i's past, out of it."""
        sums = self.sums[i]
        sums.subtract(bucket)
        # Summing from scratch shows a value or preference that some bucket of
        # the window has, even at a count of 0, and none that no bucket has.
        zero_values = {k for k in {int(v) for v in bucket["v"]} if sums.distribution[k] == 0}
        zero_prefs = {p for p in bucket["p"] if sums.preferences[p] == 0}
        if zero_values or zero_prefs:
            low = self.minute - _LENGTHS[i] + 1
            held = [b for m, b in self.buckets.items() if low <= m < self.minute]
            for key in zero_values - {int(v) for b in held for v in b["v"]}:
                del sums.distribution[key]
            for pref in zero_prefs - {p for b in held for p in b["p"]}:
                del sums.preferences[pref]
        # Those whose newest vote was in that minute have left; the rest voted since.
        last_vote = self.last_vote
        gone = [voter for voter in set(bucket["u"]) if last_vote.get(voter) == minute]
        self.unique[i] -= len(gone)
        if i == _LONGEST:
            for voter in gone:
                del last_vote[voter]

    def refresh(self, buckets_by_minute: Mapping[int, Bucket]) -> bool:
        """Take in the past buckets that are new or replaced the summed ones.

        False when that cannot be exact (a summed bucket is gone, or was
        replaced by one that lacks some of its keys or voters); this past may
        then be half updated and must be summed from scratch.
        """
        oldest = self.minute - LONGEST_WINDOW_MIN + 1
        given = {m: b for m, b in buckets_by_minute.items() if oldest <= m < self.minute}
        # The usual case, compared in C: the same bucket objects (equal ones
        # would do as well: they sum the same).
        if given == self.buckets:
            return True
        kept = 0
        changed: list[tuple[int, Bucket | None, Bucket]] = []
        for minute, bucket in given.items():
            old = self.buckets.get(minute)
            if old is not None:
                kept += 1
            if old is not bucket:
                changed.append((minute, old, bucket))
        if kept != len(self.buckets):
            return False
        for minute, old, new in changed:
            gained = _voters_gained(new, old)
            if gained is None:
                return False
            for sums, low in zip(self.sums, self._oldest(), strict=True):
                if minute >= low:
                    if old is not None:
                        sums.subtract(old)
                    sums.add(new)
            self._add_voters(minute, gained)
            self.buckets[minute] = new
        return True

    def _add_voters(self, minute: int, voters: Iterable[str]) -> None:
        """Count voters who voted in past `minute` into the pasts they were not in yet."""
        holding = [(i, low) for i, low in enumerate(self._oldest()) if minute >= low]
        last_vote, unique = self.last_vote, self.unique
        seen, newcomers = self.current.seen, self.current.newcomers
        for voter in voters:
            before = last_vote.get(voter)
            if before is not None and before >= minute:
                continue  # in every past that holds `minute` already
            last_vote[voter] = minute
            for i, low in holding:
                if before is None or before < low:
                    unique[i] += 1
                    if voter in seen:
                        newcomers[i] -= 1  # counted as new to that past until now

    def windows(self, kind: str, current: Bucket | None) -> dict[str, dict[str, Any]]:
        """`WindowStats.to_json()` of each window (by "5m", "15m", "60m"): past plus current."""
        unique = self._unique_with(current["u"] if current is not None else ())
        by_length: dict[int, dict[str, Any]] = {}
        for length, past_sums, voters in zip(_LENGTHS, self.sums, unique, strict=True):
            sums = past_sums
            if current is not None:
                sums = past_sums.copy()
                sums.add(current)
            by_length[length] = sums.stats(kind, voters).to_json()
        return {f"{length}m": by_length[length] for length in WINDOWS_MIN}

    def _unique_with(self, voters: Iterable[str]) -> list[int]:
        """Each window's unique voters: its past's, and the current ones its past lacks."""
        current = set(voters)
        counted = self.current
        if not counted.seen <= current:
            # Not the bucket counted before, grown: count it all again.
            counted = self.current = CurrentVoters()
        oldest = list(enumerate(self._oldest()))
        last_vote, newcomers = self.last_vote, counted.newcomers
        for voter in current.difference(counted.seen):
            last = last_vote.get(voter)
            for i, low in oldest:
                if last is None or last < low:
                    newcomers[i] += 1
        counted.seen = current
        return [past + new for past, new in zip(self.unique, counted.newcomers, strict=True)]


def _voters_gained(new: Bucket, old: Bucket | None) -> set[str] | None:
    """The voters `new` has that `old` lacked; None if `new` lacks any key or voter of `old`.

    A bucket that only grew can replace `old` in a past by taking `old` from the
    sums, adding `new`, and adding the voters gained: none of `old`'s keys or
    voters can have left, so that is what summing from scratch would give.
    """
    voters = set(new["u"])
    if old is None:
        return voters
    if not (
        new["v"].keys() >= old["v"].keys()
        and new["p"].keys() >= old["p"].keys()
        and voters.issuperset(old["u"])
    ):
        return None
    return voters.difference(old["u"])


@dataclass
class LiveWindows:
    """The pasts by zone and kind, kept from one tick to the next.

    Give `of` the live buckets as LiveBuckets holds them (or a copy of that
    mapping, as LiveBuckets.due returns): a bucket is replaced, never changed.
    """

    pasts: dict[str, dict[str, PastWindows]] = field(default_factory=dict)
    minute: int | None = None

    def of(
        self, zone: str, kind: str, buckets_by_minute: Mapping[int, Bucket], now_minute: int
    ) -> dict[str, dict[str, Any]]:
        """The windows at `now_minute` of one zone and kind's live buckets.

        Exactly what summing each window's buckets from scratch would give.
        """
        if now_minute != self.minute:
            self.minute = now_minute
            self._sweep(now_minute)
        kinds = self.pasts.setdefault(zone, {})
        past = kinds.get(kind)
        if past is None or not past.advance(now_minute) or not past.refresh(buckets_by_minute):
            past = PastWindows.summed(buckets_by_minute, now_minute)
            kinds[kind] = past
        result = past.windows(kind, buckets_by_minute.get(now_minute))
        if not past.buckets:
            # Nothing left to save, and a kind published a last time (empty)
            # before it is forgotten would leave it behind.
            del kinds[kind]
        if not kinds:
            del self.pasts[zone]
        return result

    def _sweep(self, now_minute: int) -> None:
        """Forget pasts not used for as long as the longest window: they would be summed anew."""
        for zone, kinds in list(self.pasts.items()):
            for kind, past in list(kinds.items()):
                if past.minute <= now_minute - LONGEST_WINDOW_MIN:
                    del kinds[kind]
            if not kinds:
                del self.pasts[zone]

    def forget(self, zone: str) -> None:
        self.pasts.pop(zone, None)
