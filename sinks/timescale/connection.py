"""One PostgreSQL connection that is re-opened on demand after any failure.

A pool's reconnect back-off grows to minutes during a long outage, which keeps
a service failing well after PostgreSQL is back. These users (the vote sink, the
gateway's zone lookups) need one connection at a time, so they hold exactly one
and try a fresh connect whenever the last one broke: recovery is immediate.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import psycopg

log = logging.getLogger(__name__)
Conn = psycopg.AsyncConnection[Any]


class ReconnectingConnection:
    def __init__(
        self, dsn: str, on_connect: Callable[[Conn], Awaitable[Any]] | None = None
    ) -> None:
        self._dsn = dsn
        self._on_connect = on_connect
        self._conn: Conn | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> Conn:
        """The open connection, or one new connect attempt (raises OperationalError)."""
        if self._conn is None or self._conn.closed:
            self._conn = None
            conn = await psycopg.AsyncConnection.connect(self._dsn, connect_timeout=3)
            try:
                if self._on_connect is not None:
                    await self._on_connect(conn)
            except BaseException:
                await conn.close()
                raise
            self._conn = conn
        return self._conn

    async def get_retrying(self) -> Conn:
        """Wait, with back-off capped at 5 s, until a connection is open and set up.

        Any failure here is the database's state, not a row's: it is retried,
        never treated as a reason to dead-letter data.
        """
        delay = 0.2
        while True:
            try:
                return await self.get()
            except psycopg.Error as exc:
                log.warning("postgres unavailable, retrying in %.1fs: %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def reset(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            await conn.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Conn]:
        """A transaction on the shared connection, one caller at a time; a failure
        drops the connection so the next caller reconnects."""
        async with self._lock:
            try:
                conn = await self.get()
                async with conn.transaction():
                    yield conn
            except psycopg.OperationalError:
                await self.reset()
                raise

    async def close(self) -> None:
        await self.reset()
