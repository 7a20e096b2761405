"""The worker's codec instance and the writer schema for each subject it produces."""

from __future__ import annotations

import asyncio
import logging
from functools import cache, lru_cache
from typing import Any

from sbp.settings import get_settings
from schemas import catalog
from schemas.codec import AvroCodec, RegistryUnavailable, Writer, registry_client

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def codec() -> AvroCodec:
    return AvroCodec(registry_client(get_settings()))


@cache
def writer(subject: str) -> Writer:
    """The newest schema file of `subject`, as registered (looked up once per process)."""
    return codec().writer(subject, catalog.latest(subject).text)


async def decode_with_retry(value: bytes | None) -> dict[str, Any]:
    """Decode a record; a registry outage is waited out, a bad record raises DecodeError."""
    delay = 0.5
    while True:
        try:
            return codec().decode(value).record
        except RegistryUnavailable as exc:
            log.warning("registry unavailable, retrying in %.1fs: %s", delay, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
