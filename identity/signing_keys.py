"""The platform key set that signs and verifies access tokens (Ed25519 / EdDSA).

One key set serves the whole platform (brief §4). It holds several keys at once so keys
rotate without downtime:

1. `rotate()` adds a new key and makes it the signing key. Tokens signed by older keys
   keep verifying, because those keys stay in the set (and in the JWKS).
2. Once every token of an older key has expired (access tokens live 15 minutes),
   `retire(kid)` removes it.

Storage: private keys live in `signing_keys.json` (mode 0600) under
`settings.keys_dir`, created on first use. Creation is race-safe across processes
(`keyring.read_or_create_secret_file`); rotate and retire re-read the file under an
exclusive lock and replace it atomically, so concurrent operators never lose a key.

Other processes pick up changes through `refresh()`: verification calls it on an
unknown `kid` (so a token from a freshly rotated key verifies everywhere at once), and
long-running services call it periodically so a retirement takes effect.

Invariants: a `kid` is the RFC 7638 thumbprint of its public key; the signing key is
always in the set; `jwks()` never contains private material.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import fcntl
import hashlib
import itertools
import json
import logging
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from identity.keyring import read_or_create_secret_file, read_secret_file, replace_secret_file

SIGNING_KEYS_FILE = "signing_keys.json"
ALGORITHM = "EdDSA"


class KeySetError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey
    created_at: datetime

    @classmethod
    def generate(cls, now: datetime | None = None) -> SigningKey:
        private = Ed25519PrivateKey.generate()
        return cls(_thumbprint(private.public_key()), private, now or datetime.now(UTC))

    @cached_property
    def public_key(self) -> Ed25519PublicKey:
        # Derived once: every token check asks for it, and deriving costs a scalar multiply.
        return self.private_key.public_key()

    def public_jwk(self) -> dict[str, str]:
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": _b64url(self.public_key.public_bytes_raw()),
            "kid": self.kid,
            "use": "sig",
            "alg": ALGORITHM,
        }

    def __repr__(self) -> str:
        return f"SigningKey(kid={self.kid!r}, created_at={self.created_at.isoformat()})"


@dataclass(frozen=True)
class _Snapshot:
    keys: Mapping[str, SigningKey]
    active_kid: str
    # Identity of the file this snapshot was read from, to detect changes cheaply.
    file_stamp: tuple[int, int, int] | None


class KeySet:
    """Signing and verification keys; readers see an immutable snapshot, lock-free."""

    def __init__(self, keys: list[SigningKey], active_kid: str, path: Path | None = None) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._snap = _snapshot(keys, active_kid, _stamp(path) if path else None)

    @classmethod
    def generate(cls) -> KeySet:
        """An in-memory key set with one fresh key (tests, throwaway tools)."""
        key = SigningKey.generate()
        return cls([key], key.kid)

    @classmethod
    def load_or_create(cls, keys_dir: Path) -> KeySet:
        path = keys_dir / SIGNING_KEYS_FILE
        raw = read_or_create_secret_file(path, _new_key_file)
        keys, active = _parse(raw, path)
        return cls(keys, active, path)

    @property
    def signing_key(self) -> SigningKey:
        snap = self._snap
        return snap.keys[snap.active_kid]

    @property
    def kids(self) -> list[str]:
        return list(self._snap.keys)

    def verification_key(self, kid: str) -> Ed25519PublicKey | None:
        """The public key for `kid`, or None if the set (even after a refresh) lacks it."""
        key = self._snap.keys.get(kid)
        if key is None and self.refresh():
            key = self._snap.keys.get(kid)
        return key.public_key if key is not None else None

    def jwks(self) -> dict[str, Any]:
        """The public JWKS served at `/.well-known/jwks.json`."""
        return {"keys": [key.public_jwk() for key in self._snap.keys.values()]}

    def refresh(self) -> bool:
        """Re-read the key file if it changed on disk; True if the set was reloaded."""
        if self._path is None:
            return False
        stamp = _stamp(self._path)
        if stamp == self._snap.file_stamp:
            return False
        with self._lock:
            keys, active = _parse(read_secret_file(self._path), self._path)
            self._snap = _snapshot(keys, active, stamp)
        return True

    def rotate(self) -> str:
        """Add a new key and sign with it from now on; returns its kid."""
        new = SigningKey.generate()
        with self._editing() as (keys, _active):
            keys.append(new)
            return self._commit(keys, new.kid)

    def retire_expired(self, horizon: timedelta, now: datetime | None = None) -> list[str]:
        """Retire every key that stopped signing more than `horizon` ago (the longest
        token lifetime plus clock leeway): no token it signed can still be valid."""
        with self._editing() as (keys, active):
            gone = expired_kids(keys, active, now or datetime.now(UTC), horizon)
            if gone:
                self._commit([k for k in keys if k.kid not in gone], active)
        return sorted(gone)

    def describe(self) -> list[tuple[str, datetime, bool]]:
        """(kid, created, signing?) in creation order, for operators."""
        snap = self._snap
        ordered = sorted(snap.keys.values(), key=lambda k: k.created_at)
        return [(k.kid, k.created_at, k.kid == snap.active_kid) for k in ordered]

    def retire(self, kid: str) -> None:
        """Remove a key; tokens it signed stop verifying. The signing key cannot retire."""
        with self._editing() as (keys, active):
            if kid == active:
                raise KeySetError(
                    "active_key", f"{kid} is the signing key; rotate before retiring it"
                )
            remaining = [k for k in keys if k.kid != kid]
            if len(remaining) == len(keys):
                raise KeySetError("unknown_key", f"no key with kid {kid}")
            self._commit(remaining, active)

    @contextmanager
    def _editing(self) -> Iterator[tuple[list[SigningKey], str]]:
        # The in-process lock orders threads; flock orders processes. Re-reading the
        # file under the lock means another operator's rotation is never overwritten.
        with self._lock:
            if self._path is None:
                yield list(self._snap.keys.values()), self._snap.active_kid
                return
            with _file_lock(self._path):
                keys, active = _parse(read_secret_file(self._path), self._path)
                yield keys, active

    def _commit(self, keys: list[SigningKey], active_kid: str) -> str:
        # Called inside `_editing`, so both locks are held.
        if self._path is not None:
            replace_secret_file(self._path, _serialize(keys, active_kid))
        stamp = _stamp(self._path) if self._path else None
        self._snap = _snapshot(keys, active_kid, stamp)
        return active_kid


def expired_kids(
    keys: list[SigningKey], active: str, now: datetime, horizon: timedelta
) -> set[str]:
    """Keys other than the signing one whose successor was created over `horizon` ago.
    A key signs until the next one is made, so that is when its last token was issued."""
    ordered = sorted(keys, key=lambda k: k.created_at)
    return {
        key.kid
        for key, successor in itertools.pairwise(ordered)
        if key.kid != active and now - successor.created_at > horizon
    }


def _snapshot(
    keys: list[SigningKey], active_kid: str, stamp: tuple[int, int, int] | None
) -> _Snapshot:
    by_kid = {k.kid: k for k in keys}
    if active_kid not in by_kid:
        raise KeySetError("corrupt_key_file", "the active kid is not in the key set")
    return _Snapshot(MappingProxyType(by_kid), active_kid, stamp)


def _stamp(path: Path) -> tuple[int, int, int]:
    st = os.stat(path)
    return (st.st_ino, st.st_mtime_ns, st.st_size)


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    lock_path = path.with_name(f".{path.name}.lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def _new_key_file() -> bytes:
    key = SigningKey.generate()
    return _serialize([key], key.kid)


def _serialize(keys: list[SigningKey], active_kid: str) -> bytes:
    doc = {
        "version": 1,
        "active_kid": active_kid,
        "keys": [
            {
                "kid": k.kid,
                "alg": ALGORITHM,
                "d": _b64url(k.private_key.private_bytes_raw()),
                "created_at": k.created_at.isoformat(),
            }
            for k in keys
        ],
    }
    return json.dumps(doc, indent=2).encode() + b"\n"


def _parse(raw: bytes, path: Path) -> tuple[list[SigningKey], str]:
    try:
        doc = json.loads(raw)
        if doc["version"] != 1:
            raise ValueError("unsupported version")
        keys = []
        for entry in doc["keys"]:
            private = Ed25519PrivateKey.from_private_bytes(_b64url_decode(entry["d"]))
            kid = _thumbprint(private.public_key())
            if kid != entry["kid"]:
                raise ValueError("kid does not match its key")
            keys.append(SigningKey(kid, private, datetime.fromisoformat(entry["created_at"])))
        active = doc["active_kid"]
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise KeySetError("corrupt_key_file", f"{path} is not a valid key file") from exc
    if not isinstance(active, str) or active not in {k.kid for k in keys}:
        raise KeySetError("corrupt_key_file", f"{path}: active_kid is not one of its keys")
    return keys, active


def _thumbprint(public: Ed25519PublicKey) -> str:
    # RFC 7638: SHA-256 over the required members, lexicographically ordered, no spaces.
    x = _b64url(public.public_bytes_raw())
    canonical = f'{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}'
    return _b64url(hashlib.sha256(canonical.encode()).digest())


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def refresh_periodically(keyset: KeySet, every_s: float = 30.0) -> None:
    """Pick up rotated and retired keys without a restart (a task of each service that
    verifies tokens): an unknown kid triggers a reload at once, but a retired kid is
    still known until the file is read again."""
    while True:
        await asyncio.sleep(every_s)
        try:
            keyset.refresh()
        except Exception:
            logging.getLogger(__name__).exception("signing key refresh failed")
