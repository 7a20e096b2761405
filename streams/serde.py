"""The worker's codec instance and the writer schema for each subject it produces.

Writers are resolved once at worker start (`resolve_writers`), so a registry
outage later never sits between a dedup write and the emit it guards; a
decode that needs an unknown schema id waits the outage out instead of
failing the record.
"""

from __future__ import annotations

import asyncio
import logging
import time
from functools import lru_cache
from typing import Any

from sbp.settings import get_settings
from schemas import catalog
from schemas.codec import AvroCodec, RegistryUnavailable, Writer, registry_client
from streams.topics import VOTES_ACCEPTED, VOTES_DLQ

log = logging.getLogger(__name__)
PRODUCED_SUBJECTS = (
    catalog.value_subject(VOTES_ACCEPTED.name),
    catalog.value_subject(VOTES_DLQ.name),
)
_writers: dict[str, Writer] = {}


@lru_cache(maxsize=1)
def codec() -> AvroCodec:
    return AvroCodec(registry_client(get_settings()))


def resolve_writers(timeout_s: float = 120.0) -> None:
    """Look up every subject the worker produces; retried while the registry starts."""
    deadline = time.monotonic() + timeout_s
    for subject in PRODUCED_SUBJECTS:
        while subject not in _writers:
            try:
                _writers[subject] = codec().writer(subject, catalog.latest(subject).text)
            except RegistryUnavailable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


def writer(subject: str) -> Writer:
    """The writer resolved at start; a subject not resolved then is a programming error."""
    return _writers[subject]


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
