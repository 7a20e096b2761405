"""The one way to make a Redis client, so every user survives a Redis restart alike.

Pooled connections go stale when Redis restarts; `health_check_interval` pings
a connection that sat idle before using it, and the retry policy re-runs a
command once a fresh connection is made, instead of failing the caller.

The URL carries the client's own ACL user (`settings.redis_url_for`), which may
run only the commands its code needs (devstack/redis_server.py). So the
CLIENT SETINFO that redis-py sends on every connect is turned off: refused, it
would be ignored by redis-py but logged by Redis 7.2+ in its ACL log, where a
refusal should mean a real bug or a probe.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


def connect(url: str, *, text: bool = False) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        url,
        decode_responses=text,
        driver_info=None,
        health_check_interval=5,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        socket_connect_timeout=2,
    )
