"""The Redis side of the gateway's "already published" marks: one read and one write per batch.

Marks are `t:{tenant}:vote:{voteUuid}` (sinks/live/redis_keys.py), holding the
zone key the vote was published under (gateway/vote_claims.py says why), with a
TTL past the too_old horizon.

- `read`: one MGET for the whole batch, before anything is produced.
- `record`: one script call (EVAL) that SETs every confirmed vote's mark with
  EX, after Kafka confirmed them. A script is one command and one reply; a
  pipeline of one SET per vote costs redis-py about 25 µs of CPU per vote to
  pack and parse, more than everything else the gateway does for a vote.

Both commands are packed by hiredis (C) and sent on a connection of the
client's pool: redis-py's asyncio client packs arguments in Python, about
1 µs each, which for 100-300 arguments per batch was a tenth of the
gateway's CPU. Redis caches a script's compiled body by its hash, so EVAL
costs it no more than EVALSHA, and a restarted Redis needs no reload.

Marks are report-only: the worker's dedup is authoritative. So Redis being
down, slow or refusing never blocks ingestion: both calls are bounded by
`timeout_s`, and a failure is a (throttled) warning, after which the batch is
published unchecked or its marks go unrecorded. After a failure, Redis is left
alone for `cooldown_s`, so an outage costs each batch nothing rather than a
timeout or the client's reconnect back-off twice over.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import hiredis
import redis.asyncio as aioredis

from gateway.log_throttle import ThrottledWarning
from sinks.live.redis_keys import published_vote

log = logging.getLogger(__name__)

# The marks outlive the 7-day too_old horizon: a retry older than that is
# refused as too_old anyway.
PUBLISHED_MARK_TTL_S = 8 * 24 * 3600

# KEYS: the marks; ARGV[1]: the TTL in seconds; ARGV[1 + i]: the value of KEYS[i].
_RECORD_SCRIPT = """
local ttl = ARGV[1]
for i, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[i + 1], 'EX', ttl)
end
return #KEYS
"""


class MarkStore:
    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        ttl_s: int = PUBLISHED_MARK_TTL_S,
        timeout_s: float = 0.5,
        cooldown_s: float = 1.0,
    ) -> None:
        self._redis = redis
        self._ttl = ttl_s
        # Redis answers in well under a millisecond; one that hangs must not hold the batch.
        self._timeout = timeout_s
        self._cooldown = cooldown_s
        self._retry_at = 0.0  # monotonic time before which Redis is not tried
        self._read_failed = ThrottledWarning(log)
        self._record_failed = ThrottledWarning(log)

    async def read(self, tenant_id: str, vote_uuids: Sequence[str]) -> list[bytes | None] | None:
        """Each voteUuid's mark (None where there is none), or None when Redis can't answer."""
        if not vote_uuids:
            return []
        if time.monotonic() < self._retry_at:
            self._read_failed.warn("duplicate check skipped, redis unavailable (cooling down)")
            return None
        keys = [published_vote(tenant_id, vote_uuid) for vote_uuid in vote_uuids]
        try:
            async with asyncio.timeout(self._timeout):
                marks: list[bytes | None] = await self._call(b"MGET", *keys)
        except (aioredis.RedisError, TimeoutError) as exc:
            self._failed()
            self._read_failed.warn("duplicate check skipped, redis unavailable: %s", _why(exc))
            return None
        return marks

    async def record(self, tenant_id: str, published: Sequence[tuple[str, bytes]]) -> None:
        """Mark each (voteUuid, zone key) as published; a failure is only a warning."""
        if not published:
            return
        if time.monotonic() < self._retry_at:
            self._record_failed.warn(
                "duplicate marks not recorded, redis unavailable (cooling down)"
            )
            return
        keys = [published_vote(tenant_id, vote_uuid) for vote_uuid, _zone in published]
        try:
            async with asyncio.timeout(self._timeout):
                await self._call(
                    b"EVAL",
                    _RECORD_SCRIPT,
                    len(keys),
                    *keys,
                    self._ttl,
                    *(zone for _, zone in published),
                )
        except (aioredis.RedisError, TimeoutError) as exc:
            self._failed()
            self._record_failed.warn(
                "duplicate marks not recorded, redis unavailable: %s", _why(exc)
            )

    async def _call(self, *args: bytes | str | int) -> Any:
        """One command and its reply, on a connection of the client's pool.

        A connection interrupted mid-command (an error, a timeout's cancel) is
        closed before it returns to the pool, so none is reused in an unknown
        state; the pool reconnects it on its next use.
        """
        pool = self._redis.connection_pool
        connection = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            # hiredis's stub types the command as a 1-tuple; it takes any length.
            await connection.send_packed_command(hiredis.pack_command(args))  # type: ignore[arg-type]
            return await connection.read_response()
        except BaseException:
            # A write or read cut short leaves a reply in flight: never reuse it.
            await connection.disconnect(nowait=True)
            raise
        finally:
            await pool.release(connection)

    def _failed(self) -> None:
        self._retry_at = time.monotonic() + self._cooldown


def _why(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
