"""Every Redis key the platform uses, in one place. All start with `t:{tenantId}:`.

- `t:{tenant}:b:{building}:comfort`: hash zoneId → the zone's latest snapshot (JSON).
- `t:{tenant}:b:{building}:events`: the building's stream of live events that SSE
  replays; stream ids are the SSE event ids.
- `t:{tenant}:vote:{voteUuid}`: the gateway's report-only "already published" mark.
"""

from __future__ import annotations

EVENTS_MAXLEN = 10_000


def comfort_snapshots(tenant_id: str, building_id: str) -> str:
    return f"t:{tenant_id}:b:{building_id}:comfort"


def building_events(tenant_id: str, building_id: str) -> str:
    return f"t:{tenant_id}:b:{building_id}:events"


def published_vote(tenant_id: str, vote_uuid: str) -> str:
    return f"t:{tenant_id}:vote:{vote_uuid}"
