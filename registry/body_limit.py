"""Caps every request body at `MAX_BODY_BYTES`, while it is read (ASGI middleware).

A declared `Content-Length` over the cap is refused before any of the body is
read, so no handler (and no auth check) runs. Otherwise the body is counted as
the handler reads it, and reading stops with `BodyTooLarge` at the first chunk
past the cap, which covers chunked bodies with no declared length. Handlers
check credentials before reading, so an unauthenticated write is refused
without reading its body at all.

The 413 leaves the connection open: uvicorn drains and drops the unread rest
of the body without buffering it, and a client still sending can read the
answer, which a reset connection would lose.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from registry.errors import BodyTooLarge
from registry.limits import MAX_BODY_BYTES
from registry.responses import RegistryResponse


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if declared_too_large(scope["headers"], self.max_bytes):
            refusal = BodyTooLarge()
            response = RegistryResponse(refusal.to_body(), status_code=refusal.http_status)
            await response(scope, receive, send)
            return
        received = 0

        async def capped_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Raised inside the handler's read, so the app's error
                    # handlers answer it like any other RegistryError.
                    raise BodyTooLarge()
            return message

        await self.app(scope, capped_receive, send)


def declared_too_large(headers: list[tuple[bytes, bytes]], max_bytes: int) -> bool:
    """True if any `Content-Length` header declares more than `max_bytes`.

    A header that is no decimal number is left to the HTTP server, which
    refuses it; the streaming count still applies.
    """
    for name, value in headers:
        if name.lower() != b"content-length":
            continue
        digits = value.strip()
        if not digits.isdigit():  # bytes.isdigit is ASCII-only
            continue
        # Comparing lengths first spares int() a hostile 5000-digit header.
        significant = digits.lstrip(b"0")
        if len(significant) > len(str(max_bytes)) or int(significant or b"0") > max_bytes:
            return True
    return False
