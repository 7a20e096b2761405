"""The vote ingestion step behind both vote endpoints: validate, claim, publish, record.

Per batch:
1. every item is validated (gateway/vote_validation.py), and a voteUuid that
   repeats within the batch is a duplicate;
2. one Redis round trip (MGET) reads the "already published" mark of every
   publishable voteUuid. A voteUuid with a mark is answered `duplicate` and not
   published, whether the mark names this item's zone or another one;
3. one produce of all the rest to `votes.raw`, keyed `tenantId|buildingId|zoneId`
   (murmur2, as every producer of that topic), whose delivery reports are
   awaited together;
4. one Redis round trip records, for each vote Kafka confirmed, a mark holding
   the zone key it was published under.

The claim across zones. `votes.raw` is keyed by zone, so the worker's dedup
entry for a vote lives in its zone's partition: an honest re-send (same zone)
lands there and is dropped by the worker, but a dishonest re-send of the same
voteUuid for another zone would land on a partition that has never seen it.
The mark is what stops that re-send from being counted twice: it is answered
`duplicate` (the voteUuid was already received) and never published. Its
limits, which docs/topics.md states too:
- while Redis is unavailable there are no marks, so a cross-zone re-send in
  that window is published and counted in both zones;
- the mark is written after Kafka confirms, so two requests carrying the same
  voteUuid for different zones at the same moment can both pass the check.
Losing Redis can otherwise only turn a `duplicate` answer into `accepted`, and
it never blocks ingestion (gateway/mark_store.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from gateway.clock_skew import SkewPolicy
from gateway.log_throttle import ThrottledWarning
from gateway.mark_store import MarkStore
from gateway.publisher import OutboundRecord, Publisher
from gateway.vote_claims import check_claims
from gateway.vote_validation import (
    ItemError,
    ItemOutcome,
    ValidVote,
    ZoneAccess,
    apply_seen,
    mark_duplicates_in_batch,
    reject_uuids,
    validate_item,
)
from gateway.zone_directory import TenantZones
from identity.keyring import Keyring
from identity.principal import Principal
from identity.rbac import BuildingAccess, building_access
from schemas.codec import AvroCodec, Writer
from streams.tables.comfort_buckets import zone_key
from streams.topics import VOTES_RAW

log = logging.getLogger(__name__)
_cross_zone = ThrottledWarning(log)


@dataclass(frozen=True)
class IngestContext:
    codec: AvroCodec
    raw_writers: dict[int, Writer]  # schema version (1, 2) → writer schema of votes.raw
    publisher: Publisher
    marks: MarkStore
    keyring: Keyring
    policy: SkewPolicy


def zone_lookup(principal: Principal, zones: TenantZones) -> Callable[[str, str], ZoneAccess]:
    """The token's view of its tenant's zones, remembered per (building, zone) for one batch."""
    seen: dict[tuple[str, str], ZoneAccess] = {}

    def lookup(building_id: str, zone_id: str) -> ZoneAccess:
        access = seen.get((building_id, zone_id))
        if access is None:
            access = _access(principal, zones, building_id, zone_id)
            seen[building_id, zone_id] = access
        return access

    return lookup


def _access(principal: Principal, zones: TenantZones, building_id: str, zone_id: str) -> ZoneAccess:
    access = building_access(principal, building_id, zones.has_building(building_id))
    if access is BuildingAccess.UNKNOWN:
        return ZoneAccess.unknown_zone
    if access is BuildingAccess.FORBIDDEN:
        return ZoneAccess.forbidden_building
    return ZoneAccess.ok if zones.has_zone(building_id, zone_id) else ZoneAccess.unknown_zone


def raw_record(
    vote: ValidVote,
    principal: Principal,
    user_ref: str,
    comment_cipher: bytes | None,
    received_at: datetime,
    late: bool,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "tenantId": principal.tenant_id,
        "userRef": user_ref,
        "receivedAt": received_at,
        "late": late,
        "voteUuid": vote.vote_uuid,
        "buildingId": vote.building_id,
        "zoneId": vote.zone_id,
        "value": vote.value,
        "clientTs": vote.client_ts,
        "deviceId": vote.device_id,
        "appVersion": vote.app_version,
        "commentCipher": comment_cipher,
        "schemaVersion": vote.schema_version,
    }
    if vote.schema_version >= 2:
        record["kind"] = vote.kind.value
        record["preference"] = vote.preference
    return record


class _Candidate(NamedTuple):
    """A publishable item, with its vote and the zone key it is published (and marked) under."""

    outcome: ItemOutcome
    vote: ValidVote
    zone: bytes


async def ingest(
    ctx: IngestContext,
    principal: Principal,
    zones: TenantZones,
    items: list[object],
    policy: SkewPolicy | None = None,
) -> list[ItemOutcome]:
    """Validate, deduplicate and publish; `policy` is the tenant's (default: ctx's)."""
    received_at = datetime.now(UTC)
    lookup = zone_lookup(principal, zones)
    policy = policy or ctx.policy
    outcomes = [
        validate_item(i, item, received_at=received_at, policy=policy, zone_lookup=lookup)
        for i, item in enumerate(items)
    ]
    mark_duplicates_in_batch(outcomes)
    tenant_id = principal.tenant_id
    candidates = await _unclaimed(ctx, tenant_id, outcomes, _candidates(tenant_id, outcomes))

    delivered = await ctx.publisher.publish(_encode(ctx, principal, candidates, received_at))
    confirmed = [c for c, ok in zip(candidates, delivered, strict=True) if ok]
    if len(confirmed) < len(candidates):
        failed = {c.vote.vote_uuid for c, ok in zip(candidates, delivered, strict=True) if not ok}
        reject_uuids(
            outcomes,
            failed,
            ItemError.unavailable,
            "Kafka did not confirm this vote in time; retry it",
        )
    await ctx.marks.record(tenant_id, [(c.vote.vote_uuid, c.zone) for c in confirmed])
    return outcomes


def _candidates(tenant_id: str, outcomes: list[ItemOutcome]) -> list[_Candidate]:
    zone_keys: dict[tuple[str, str], bytes] = {}
    candidates = []
    for outcome in outcomes:
        vote = outcome.vote
        if vote is None:
            continue
        key = zone_keys.get((vote.building_id, vote.zone_id))
        if key is None:
            key = zone_key(tenant_id, vote.building_id, vote.zone_id).encode()
            zone_keys[vote.building_id, vote.zone_id] = key
        candidates.append(_Candidate(outcome, vote, key))
    return candidates


async def _unclaimed(
    ctx: IngestContext, tenant_id: str, outcomes: list[ItemOutcome], candidates: list[_Candidate]
) -> list[_Candidate]:
    """The candidates no mark claims; the claimed ones become `duplicate` (one MGET)."""
    marks = await ctx.marks.read(tenant_id, [c.vote.vote_uuid for c in candidates])
    if not marks:  # nothing to check, or Redis could not answer (already warned)
        return candidates
    claims = check_claims([(c.vote.vote_uuid, c.zone) for c in candidates], marks)
    if claims.other_zone:
        _cross_zone.warn(
            "tenant %s re-sent %d published voteUuid(s) for another zone, e.g. %s; "
            "answered duplicate, not published",
            tenant_id,
            len(claims.other_zone),
            claims.other_zone[0],
        )
    if not claims.claimed:
        return candidates
    apply_seen(outcomes, claims.claimed)
    return [c for c in candidates if c.outcome.publishable]


def _encode(
    ctx: IngestContext, principal: Principal, candidates: list[_Candidate], received_at: datetime
) -> list[OutboundRecord]:
    if not candidates:
        return []
    tenant_id = principal.tenant_id
    # One pseudonym per batch: every vote of a request is the same caller's.
    user_ref = ctx.keyring.pseudonym(tenant_id, principal.user_id)
    encode, writers, topic = ctx.codec.encode, ctx.raw_writers, VOTES_RAW.name
    records = []
    for outcome, vote, zone in candidates:
        cipher = ctx.keyring.encrypt_comment(tenant_id, vote.comment) if vote.comment else None
        record = raw_record(vote, principal, user_ref, cipher, received_at, outcome.late)
        records.append(OutboundRecord(topic, zone, encode(writers[vote.schema_version], record)))
    return records
