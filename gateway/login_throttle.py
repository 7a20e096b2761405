"""Failed-login limits per account and per source, in Redis so every gateway process
shares them (brief §4).

A fixed window: the first failure starts a 15-minute counter; at the limit, logins
for that account (or from that source, within the tenant) are refused with 429 until
the counter expires. A success clears the account's counter, not the source's, so one
known password cannot reset a spray from the same address.
"""

from __future__ import annotations

from typing import Any

from sinks.live.redis_keys import login_failures_of_account, login_failures_of_source

WINDOW_S = 15 * 60
# Ten wrong passwords lock an account for the rest of its window: enough for typos,
# far too few to guess. A source gets more, since a campus NAT is shared by many.
ACCOUNT_LIMIT = 10
SOURCE_LIMIT = 50


class RedisLoginThrottle:
    def __init__(self, redis: Any) -> None:
        self._redis = redis

    async def blocked_for(self, tenant_id: str, user_id: str, source: str) -> int:
        keys = (
            login_failures_of_account(tenant_id, user_id),
            login_failures_of_source(tenant_id, source),
        )
        account, by_source = await self._redis.mget(keys)
        limited = [
            key
            for key, count, limit in zip(
                keys, (account, by_source), (ACCOUNT_LIMIT, SOURCE_LIMIT), strict=True
            )
            if count is not None and int(count) >= limit
        ]
        if not limited:
            return 0
        ttls = [await self._redis.ttl(key) for key in limited]
        return max(1, *(int(t) for t in ttls))

    async def failed(self, tenant_id: str, user_id: str, source: str) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in (
                login_failures_of_account(tenant_id, user_id),
                login_failures_of_source(tenant_id, source),
            ):
                pipe.incr(key)
                # NX: the window runs from the first failure, later ones don't extend it.
                pipe.expire(key, WINDOW_S, nx=True)
            await pipe.execute()

    async def succeeded(self, tenant_id: str, user_id: str) -> None:
        await self._redis.delete(login_failures_of_account(tenant_id, user_id))
