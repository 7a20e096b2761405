"""One PostgreSQL connection that is re-opened on demand after any failure.

A pool's reconnect back-off grows to minutes during a long outage, which keeps
a service failing well after PostgreSQL is back. The gateway's zone lookups need
one connection at a time, so they hold exactly one and try a fresh connect
whenever the last one broke: recovery is immediate. (The PostgreSQL sink, a
synchronous process, keeps its own connection the same way: vote_store.py.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import psycopg

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
