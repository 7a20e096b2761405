"""The processor's authoritative dedup rule, keyed `tenantId|voteUuid`.

The table remembers where a vote was first seen (partition, offset). After a
crash, records since the last commit are processed again, and the table may
already hold their entries (the changelog write and the offset commit are not
atomic). Seeing the *same* (partition, offset) again is therefore a replay of
the first sighting and must re-emit the vote (consumers downstream are
idempotent by voteUuid), while any other offset is a true duplicate.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    FIRST = "first"
    REPLAY = "replay"
    DUPLICATE = "duplicate"


def dedup_key(tenant_id: str, vote_uuid: str) -> str:
    return f"{tenant_id}|{vote_uuid}"


def first_seen(partition: int, offset: int, at_ms: int) -> dict[str, int]:
    return {"p": partition, "o": offset, "t": at_ms}


def judge(existing: dict[str, Any] | None, partition: int, offset: int) -> Verdict:
    if existing is None:
        return Verdict.FIRST
    if existing.get("p") == partition and existing.get("o") == offset:
        return Verdict.REPLAY
    return Verdict.DUPLICATE
