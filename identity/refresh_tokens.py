"""Refresh tokens: their format and the rotation decision (brief §4). Pure.

A refresh token is opaque: `rt1.<tenantId>.<43 base64url chars of randomness>`. The
tenant part lets the store scope its lookup (RLS) before anything is trusted; only
the SHA-256 of the whole token is stored. It is never a JWT, so it can never pass
for an access token.

Each use rotates it. What a presented token gets:

| the stored token                          | outcome            |
|-------------------------------------------|--------------------|
| unknown, or its family revoked            | refused            |
| expired                                   | refused            |
| never used                                | ROTATE: a successor|
| used ≤ 30 s ago (a retry of a lost reply) | the SAME successor |
| used > 30 s ago                           | REUSE: the family is revoked and audited |
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from identity.principal import is_valid_id

PREFIX = "rt1"
LIFETIME = timedelta(days=30)
RETRY_GRACE = timedelta(seconds=30)
_SECRET_BYTES = 32
MAX_TOKEN_CHARS = 3 + 1 + 64 + 1 + 64


class RefreshTokenError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ParsedRefresh:
    tenant_id: str
    token_hash: bytes


def new_refresh_token(tenant_id: str) -> str:
    if not is_valid_id(tenant_id):
        raise ValueError("tenant_id is not a valid id")
    return f"{PREFIX}.{tenant_id}.{secrets.token_urlsafe(_SECRET_BYTES)}"


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def parse_refresh_token(token: object) -> ParsedRefresh:
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS:
        raise RefreshTokenError("invalid_refresh_token", "refreshToken is not a refresh token")
    prefix, _, rest = token.partition(".")
    tenant_id, _, secret = rest.partition(".")
    if prefix != PREFIX or not is_valid_id(tenant_id) or len(secret) < 40:
        raise RefreshTokenError("invalid_refresh_token", "refreshToken is not a refresh token")
    return ParsedRefresh(tenant_id, token_hash(token))


class Outcome(StrEnum):
    ROTATE = "rotate"
    SAME_SUCCESSOR = "same_successor"
    REUSE = "reuse"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True)
class StoredRefresh:
    expires_at: datetime
    rotated_at: datetime | None
    has_successor: bool
    family_revoked: bool


def decide(stored: StoredRefresh, now: datetime) -> Outcome:
    if stored.family_revoked:
        return Outcome.REVOKED
    if stored.rotated_at is not None:
        # A used token is checked before expiry: presenting a used token is reuse
        # even if it has expired since, and must revoke what it belonged to.
        within_grace = now - stored.rotated_at <= RETRY_GRACE
        return Outcome.SAME_SUCCESSOR if within_grace and stored.has_successor else Outcome.REUSE
    if now >= stored.expires_at:
        return Outcome.EXPIRED
    return Outcome.ROTATE


REFUSALS = {
    Outcome.REUSE: RefreshTokenError(
        "refresh_reused", "this refresh token was already used; the session is revoked"
    ),
    Outcome.EXPIRED: RefreshTokenError("refresh_expired", "the refresh token has expired"),
    Outcome.REVOKED: RefreshTokenError("refresh_revoked", "the session was revoked"),
}
