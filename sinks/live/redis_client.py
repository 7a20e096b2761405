"""The one way to make a Redis client, so every user survives a Redis restart alike.

Pooled connections go stale when Redis restarts; `health_check_interval` pings
a connection that sat idle before using it, and the retry policy re-runs a
command once a fresh connection is made, instead of failing the caller.

The pool is bounded and blocking: at most `max_connections` connections, and a
caller that finds them all busy waits up to `pool_timeout_s` for one, then gets
a `redis.ConnectionError` (a `RedisError`, which every caller already handles as
"Redis unavailable"). redis-py's default pool instead opens up to 100
connections and then fails at once with "Too many connections": of 300 SSE
connects at once, 199 got 503. One connection serves thousands of short
commands a second, so a few dozen cover any burst a process can parse; a wait
that lasts seconds means Redis itself is slow, and the caller's own error path
is the right answer.

`socket_timeout_s` is how long a reply may take before the connection is
considered dead. A client whose commands block on purpose (XREAD BLOCK) passes
None and bounds each command itself (gateway/live_fanout.py): with a socket
timeout, redis-py sends every command under `asyncio.wait_for`, which on Python
3.11 loses a cancellation that arrives just as the send completes.

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

MAX_CONNECTIONS = 32
POOL_TIMEOUT_S = 5.0
SOCKET_TIMEOUT_S = 5.0  # redis-py's default, made explicit


def connect(
    url: str,
    *,
    text: bool = False,
    max_connections: int = MAX_CONNECTIONS,
    pool_timeout_s: float = POOL_TIMEOUT_S,
    socket_timeout_s: float | None = SOCKET_TIMEOUT_S,
) -> aioredis.Redis:
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=pool_timeout_s,
        decode_responses=text,
        driver_info=None,
        health_check_interval=5,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        socket_connect_timeout=2,
        socket_timeout=socket_timeout_s,
    )
    # from_pool: closing the client closes its pool, which no one else shares.
    return aioredis.Redis.from_pool(pool)
