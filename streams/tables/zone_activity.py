"""Which zones to publish, and when: coalescing at most one snapshot per zone per flush.

A zone is dirty after a vote lands in it. Each flush (once a second) publishes
the dirty zones and forgets them. When the clock's minute changes, every zone
with a vote in the longest window is dirty again, because its windows slid.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from streams.tables.comfort_buckets import LONGEST_WINDOW_MIN


@dataclass
class ZoneActivity:
    # zone key → kind → newest bucket minute seen
    latest: dict[str, dict[str, int]] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set)
    last_minute: int | None = None

    def touch(self, zone: str, kind: str, minute: int) -> None:
        kinds = self.latest.setdefault(zone, {})
        kinds[kind] = max(kinds.get(kind, minute), minute)
        self.dirty.add(zone)

    def due(self, now_minute: int) -> dict[str, list[str]]:
        """Zones to publish now, with their kinds; clears the dirty set."""
        if self.last_minute != now_minute:
            self.last_minute = now_minute
            self.dirty.update(self.latest)
        horizon = now_minute - LONGEST_WINDOW_MIN
        due: dict[str, list[str]] = {}
        for zone in sorted(self.dirty):
            kinds = self.latest.get(zone, {})
            # A kind whose newest bucket left every window is published once more
            # (as empty) and then dropped.
            due[zone] = sorted(kinds)
            for kind in [k for k, m in kinds.items() if m <= horizon]:
                del kinds[kind]
            if not kinds:
                self.latest.pop(zone, None)
        self.dirty.clear()
        return due
