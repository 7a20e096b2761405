"""The gateway's claim on a voteUuid: what its "already published" mark decides.

Role: after validation, the ingest step reads one mark per publishable
voteUuid (`t:{tenant}:vote:{voteUuid}`, one MGET per batch) and asks `decide`
what each means. A vote is published only when it has no mark. After Kafka
confirms, the mark is written with the zone key the vote was published under
(`tenantId|buildingId|zoneId`, the same bytes as its `votes.raw` key).

Why the mark names the zone: `votes.raw` is keyed by zone, so the worker's
authoritative dedup entry for a vote lives in its zone's partition. An honest
re-send carries the same zone and lands on that partition, where the worker
drops it. A dishonest re-send of the same voteUuid for another zone would land
on another partition, where no dedup entry exists; the gateway's mark is what
stops it, by answering it `duplicate` ("already received") and never
publishing it. The decision tells the two cases apart only so that the
cross-zone one can be logged.

Pure: no Redis, no Kafka; the caller does the round trips.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class Claim(StrEnum):
    fresh = "fresh"  # no mark: publish it
    resend = "resend"  # marked for this zone: an honest retry, answered duplicate
    other_zone = "other_zone"  # marked for another zone: answered duplicate, never published


# Gateways before zone-keyed votes.raw wrote "1" as the mark's value. Such a mark
# names no zone, so it is taken as an ordinary re-send (still a duplicate); marks
# expire after PUBLISHED_MARK_TTL_S, so they disappear on their own.
_ZONE_SEPARATOR = b"|"


def decide(mark: bytes | None, zone: bytes) -> Claim:
    """What the mark stored for a voteUuid means for an item about `zone`."""
    if mark is None:
        return Claim.fresh
    if mark == zone or _ZONE_SEPARATOR not in mark:
        return Claim.resend
    return Claim.other_zone


@dataclass
class ClaimCheck:
    """The verdict on a batch's candidates: which voteUuids are already claimed."""

    claimed: set[str] = field(default_factory=set)
    # voteUuids re-sent for a zone other than the one they were published for.
    other_zone: list[str] = field(default_factory=list)


def check_claims(
    candidates: Sequence[tuple[str, bytes]], marks: Sequence[bytes | None]
) -> ClaimCheck:
    """`candidates` are (voteUuid, zone key) pairs; `marks` the MGET answer, in the same order."""
    if len(candidates) != len(marks):
        raise ValueError("one mark per candidate")
    result = ClaimCheck()
    for (vote_uuid, zone), mark in zip(candidates, marks, strict=True):
        if mark is None:
            continue
        result.claimed.add(vote_uuid)
        if decide(mark, zone) is Claim.other_zone:
            result.other_zone.append(vote_uuid)
    return result
