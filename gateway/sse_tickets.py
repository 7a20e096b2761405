"""Single-use SSE tickets for browsers (brief §4).

`EventSource` cannot send an Authorization header, so a signed-in page trades its
access token for a ticket and opens `.../stream?ticket=...`. A ticket:
- is `st1.<tenantId>.<random>`; Redis keeps only its SHA-256, under the tenant's prefix;
- lasts 30 s and is consumed by GETDEL, so a second use (or a copy from a log or a
  Referer) finds nothing;
- carries the access token's own claims and expiry, so the stream it opens has the
  same scope and closes when that token would have expired.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime
from typing import Any

import orjson

from identity.principal import Principal, Role, is_valid_id
from sinks.live.redis_keys import sse_ticket

TICKET_TTL_S = 30
PREFIX = "st1"


class TicketError(Exception):
    pass


def _key(ticket: str) -> str:
    prefix, _, rest = ticket.partition(".")
    tenant_id, _, secret = rest.partition(".")
    if prefix != PREFIX or not is_valid_id(tenant_id) or not 40 <= len(secret) <= 64:
        raise TicketError("not a ticket")
    return sse_ticket(tenant_id, hashlib.sha256(ticket.encode()).hexdigest())


async def issue(redis: Any, principal: Principal) -> str:
    ticket = f"{PREFIX}.{principal.tenant_id}.{secrets.token_urlsafe(32)}"
    claims = {
        "tenantId": principal.tenant_id,
        "userId": principal.user_id,
        "role": principal.role.value,
        "buildingIds": sorted(principal.building_ids),
        "sid": principal.session_id,
        "jti": principal.token_id,
        "exp": principal.expires_at.timestamp(),
    }
    await redis.set(_key(ticket), orjson.dumps(claims), ex=TICKET_TTL_S)
    return ticket


async def redeem(redis: Any, ticket: str) -> Principal:
    """The ticket's principal; raises TicketError if it is unknown, used or expired."""
    raw = await redis.getdel(_key(ticket))
    if raw is None:
        raise TicketError("unknown, used or expired ticket")
    claims = orjson.loads(raw)
    return Principal(
        tenant_id=claims["tenantId"],
        user_id=claims["userId"],
        role=Role(claims["role"]),
        building_ids=frozenset(claims["buildingIds"]),
        session_id=claims["sid"],
        token_id=claims["jti"],
        expires_at=datetime.fromtimestamp(claims["exp"], UTC),
    )
