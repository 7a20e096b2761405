"""A light HTTP/1.1 keep-alive client for load generation against the local gateway.

Requests are pre-encoded bytes written straight to an asyncio stream and the
answer is read by Content-Length, so a load generator sharing the machine's
CPUs with the gateway spends little of them on its own HTTP stack. Only what
the gateway sends is understood: a status line, headers, a body with a length.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class ProtocolError(Exception):
    """The gateway's answer was not an HTTP/1.1 response this client can read."""


def http_request(host: str, port: int, path: str, body: bytes, token: str) -> bytes:
    """One complete HTTP/1.1 keep-alive POST of a JSON `body`, ready to write to a socket."""
    head = (
        f"POST {path} HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        f"Authorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    )
    return head.encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """(status, body) of the next response on a keep-alive connection."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise ProtocolError(f"bad status line {lines[0]!r}")
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length is None:
        # Starlette's JSON responses always carry a length; anything else is unexpected.
        raise ProtocolError("response without Content-Length")
    return int(parts[1]), await reader.readexactly(length)


# What a broken connection raises; the caller reconnects and counts it.
TRANSPORT_ERRORS = (OSError, asyncio.IncompleteReadError, ProtocolError)


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def run_fast(coro: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop when present: the client's loop costs CPU the gateway would otherwise have."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)
