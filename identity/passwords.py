"""Password (and sensor secret) hashing: argon2id, off the event loop.

Parameters are the floor brief §4 sets (m = 19 MiB, t = 2, one lane): about 20 to 40 ms
of one core each here, so hashing always runs in a thread and never blocks the loop.
A login for an unknown account still verifies against a dummy hash, so the answer
takes as long as for a wrong password and does not tell which accounts exist.
"""

from __future__ import annotations

import asyncio
import os
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MEMORY_KIB = 19 * 1024
TIME_COST = 2
PARALLELISM = 1
# Long enough for any passphrase; bounds the work an unauthenticated caller can cause.
MAX_PASSWORD_CHARS = 256
MIN_PASSWORD_CHARS = 12

# At most half the cores hash at once, so a wave of logins (a shift change, a lecture
# hall) never takes every core from the event loops serving votes.
_SLOTS = threading.BoundedSemaphore(max(1, (os.cpu_count() or 2) // 2))

_HASHER = PasswordHasher(time_cost=TIME_COST, memory_cost=MEMORY_KIB, parallelism=PARALLELISM)
_DUMMY_HASH = _HASHER.hash("sbp-dummy-password-for-unknown-accounts")


class WeakPassword(ValueError):
    """A new password that the platform refuses to store."""


def check_new_password(password: str) -> None:
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise WeakPassword(
            f"a password has {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"
        )


def hash_password(password: str) -> str:
    check_new_password(password)
    with _SLOTS:
        return _HASHER.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True if `password` matches; `None` (no such account) costs the same and is False."""
    if len(password) > MAX_PASSWORD_CHARS:
        return False
    try:
        with _SLOTS:
            matched = _HASHER.verify(stored_hash or _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return False
    return matched and stored_hash is not None


async def verify_password_async(stored_hash: str | None, password: str) -> bool:
    return await asyncio.to_thread(verify_password, stored_hash, password)


async def hash_password_async(password: str) -> str:
    return await asyncio.to_thread(hash_password, password)
