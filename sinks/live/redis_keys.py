"""Every Redis key the platform uses, in one place. All start with `t:{tenantId}:`.

- `t:{tenant}:b:{building}:comfort`: hash zoneId → the zone's latest snapshot (JSON).
- `t:{tenant}:b:{building}:events`: the building's stream of live events that SSE
  replays; stream ids are the SSE event ids.
- `t:{tenant}:vote:{voteUuid}`: the gateway's report-only "already published" mark.
- `t:{tenant}:authfail:u:{userId}` and `t:{tenant}:authfail:s:{source}`: failed logins
  in the current window, per account and per source; they expire with the window.
- `t:{tenant}:sseticket:{sha256 hex}`: a single-use SSE ticket, for 30 s.
"""

from __future__ import annotations

EVENTS_MAXLEN = 10_000


def comfort_snapshots(tenant_id: str, building_id: str) -> str:
    return f"t:{tenant_id}:b:{building_id}:comfort"


def building_events(tenant_id: str, building_id: str) -> str:
    return f"t:{tenant_id}:b:{building_id}:events"


def published_vote(tenant_id: str, vote_uuid: str) -> str:
    return f"t:{tenant_id}:vote:{vote_uuid}"


def login_failures_of_account(tenant_id: str, user_id: str) -> str:
    return f"t:{tenant_id}:authfail:u:{user_id}"


def login_failures_of_source(tenant_id: str, source: str) -> str:
    return f"t:{tenant_id}:authfail:s:{source}"


def sse_ticket(tenant_id: str, ticket_hash_hex: str) -> str:
    return f"t:{tenant_id}:sseticket:{ticket_hash_hex}"
