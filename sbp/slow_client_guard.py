"""uvicorn's httptools protocol with read deadlines, for the gateway and the registry.

uvicorn closes idle keep-alive connections, but waits forever for a request's
headers and body: a client that sends one byte a second (slowloris) holds a
connection, its buffers and an open request for as long as it likes, and a few
thousand such clients exhaust the process. This protocol closes a connection whose
headers have not all arrived `HEADER_TIMEOUT_S` after its request began (or after it
connected), or whose body has not all arrived `BODY_TIMEOUT_S` after its headers.
It also closes one whose request line and headers pass `MAX_HEADER_BYTES`, which the
parser would otherwise buffer whole (90 MiB of URL took a process to 215 MiB).

Run with `uvicorn --http sbp.slow_client_guard:GuardedHttpToolsProtocol`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEADER_TIMEOUT_S = 10.0
# The request line and headers together; uvicorn's parser would buffer any amount
# before the app runs. Real requests here carry a token of about 1 KiB.
MAX_HEADER_BYTES = 64 * 1024
# A full 100-vote batch is at most 800 KiB: 30 s allows a link of about 27 KiB/s.
BODY_TIMEOUT_S = 30.0


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    _deadline: asyncio.TimerHandle | None = None
    # Bytes received while a request's headers are incomplete; None once they are.
    _header_bytes: int | None = 0
    closed_for_slowness = 0  # per process, for tests and /stats

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._header_bytes = 0
        self._arm(HEADER_TIMEOUT_S)

    def data_received(self, data: bytes) -> None:
        if self._header_bytes is not None:
            self._header_bytes += len(data)
        # The chunk is parsed first: one read is bounded by the transport, and a chunk
        # that holds the end of the headers and the start of the body is legitimate.
        super().data_received(data)
        if (
            self._header_bytes is not None
            and self._header_bytes > MAX_HEADER_BYTES
            and not self.transport.is_closing()
        ):
            # Still no end of headers after this much: not a request of this API. Drop
            # the connection before the parser buffers any more of it.
            self._disarm()
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm(HEADER_TIMEOUT_S)

    def on_headers_complete(self) -> None:
        self._header_bytes = None
        super().on_headers_complete()
        self._arm(BODY_TIMEOUT_S)

    def on_message_complete(self) -> None:
        self._disarm()
        self._header_bytes = 0
        super().on_message_complete()

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            GuardedHttpToolsProtocol.closed_for_slowness += 1
            self.transport.close()
