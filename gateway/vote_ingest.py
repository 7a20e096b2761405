"""The vote ingestion step behind both vote endpoints: validate, check, publish, record.

Per batch there is one Redis round trip to find voteUuids already published
(report-only: the processor's dedup table is authoritative), one produce of
all publishable records with their delivery reports awaited together, and one
Redis round trip to record what Kafka confirmed. Losing Redis can only turn a
`duplicate` answer into `accepted`; it never blocks ingestion.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

from gateway.clock_skew import SkewPolicy
from gateway.publisher import KafkaPublisher, OutboundRecord
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
from sinks.live.redis_keys import published_vote
from streams.tables.dedup import dedup_key
from streams.topics import VOTES_RAW

log = logging.getLogger(__name__)
# The gateway's duplicate marks outlive the 7-day too_old horizon: a retry older
# than that is refused as too_old anyway.
PUBLISHED_MARK_TTL_S = 8 * 24 * 3600


@dataclass(frozen=True)
class IngestContext:
    codec: AvroCodec
    raw_writers: dict[int, Writer]  # schema version (1, 2) → writer schema of votes.raw
    publisher: KafkaPublisher
    redis: aioredis.Redis
    keyring: Keyring
    policy: SkewPolicy


def zone_lookup(principal: Principal, zones: TenantZones) -> Any:
    def lookup(building_id: str, zone_id: str) -> ZoneAccess:
        access = building_access(principal, building_id, zones.has_building(building_id))
        if access is BuildingAccess.UNKNOWN:
            return ZoneAccess.unknown_zone
        if access is BuildingAccess.FORBIDDEN:
            return ZoneAccess.forbidden_building
        return ZoneAccess.ok if zones.has_zone(building_id, zone_id) else ZoneAccess.unknown_zone

    return lookup


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


async def _already_published(ctx: IngestContext, tenant_id: str, uuids: list[str]) -> set[str]:
    if not uuids:
        return set()
    try:
        async with ctx.redis.pipeline(transaction=False) as pipe:
            for vote_uuid in uuids:
                pipe.exists(published_vote(tenant_id, vote_uuid))
            found = await pipe.execute()
    except aioredis.RedisError as exc:
        log.warning("duplicate check skipped, redis unavailable: %s", exc)
        return set()
    return {u for u, hit in zip(uuids, found, strict=True) if hit}


async def _record_published(ctx: IngestContext, tenant_id: str, uuids: list[str]) -> None:
    if not uuids:
        return
    try:
        async with ctx.redis.pipeline(transaction=False) as pipe:
            for vote_uuid in uuids:
                pipe.set(published_vote(tenant_id, vote_uuid), b"1", ex=PUBLISHED_MARK_TTL_S)
            await pipe.execute()
    except aioredis.RedisError as exc:
        log.warning("duplicate marks not recorded, redis unavailable: %s", exc)


async def ingest(
    ctx: IngestContext, principal: Principal, zones: TenantZones, items: list[object]
) -> list[ItemOutcome]:
    received_at = datetime.now(UTC)
    lookup = zone_lookup(principal, zones)
    outcomes = [
        validate_item(i, item, received_at=received_at, policy=ctx.policy, zone_lookup=lookup)
        for i, item in enumerate(items)
    ]
    mark_duplicates_in_batch(outcomes)
    candidates = [o.vote_uuid for o in outcomes if o.publishable and o.vote_uuid]
    apply_seen(outcomes, await _already_published(ctx, principal.tenant_id, candidates))

    to_send = [o for o in outcomes if o.vote is not None]
    user_ref = ctx.keyring.pseudonym(principal.tenant_id, principal.user_id)
    records = []
    for outcome in to_send:
        vote = outcome.vote
        assert vote is not None
        cipher = (
            ctx.keyring.encrypt_comment(principal.tenant_id, vote.comment) if vote.comment else None
        )
        value = ctx.codec.encode(
            ctx.raw_writers[vote.schema_version],
            raw_record(vote, principal, user_ref, cipher, received_at, outcome.late),
        )
        key = dedup_key(principal.tenant_id, vote.vote_uuid).encode()
        records.append(OutboundRecord(VOTES_RAW.name, key, value))

    delivered = await ctx.publisher.publish(records)
    failed = {o.vote_uuid for o, ok in zip(to_send, delivered, strict=True) if not ok}
    if failed:
        reject_uuids(
            outcomes,
            {u for u in failed if u},
            ItemError.unavailable,
            "Kafka did not confirm this vote in time; retry it",
        )
    await _record_published(
        ctx,
        principal.tenant_id,
        [o.vote_uuid for o, ok in zip(to_send, delivered, strict=True) if ok and o.vote_uuid],
    )
    return outcomes
