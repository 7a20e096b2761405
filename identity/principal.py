"""The authenticated caller, as every service sees it after verifying an access token.

Pure: no I/O. A `Principal` is only ever built from a verified token (see
`identity.tokens`), so its `tenant_id` and `user_id` are trusted; request bodies never
supply them (brief §4).

Invariants:
- every id in a `Principal` satisfies `is_valid_id`;
- `expires_at` is timezone-aware UTC;
- `building_ids` is a set of explicit grants: empty means "no building", never "all".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TypeGuard

# One rule for tenant, building, floor, zone and user ids: short, URL-safe and free of
# separators, so ids can be embedded in Redis keys (`t:{tenantId}:...`), topic keys and
# HKDF info strings without escaping or ambiguity.
_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def is_valid_id(value: object) -> TypeGuard[str]:
    """True for a string of 1 to 64 characters drawn from `[A-Za-z0-9_-]`."""
    # fullmatch, not match with `$`: `$` also matches before a trailing newline.
    return isinstance(value, str) and _ID_RE.fullmatch(value) is not None


class Role(StrEnum):
    OCCUPANT = "occupant"
    FM = "fm"
    TENANT_ADMIN = "tenant_admin"
    PLATFORM_ADMIN = "platform_admin"
    SENSOR = "sensor"
    OPERATOR = "operator"


@dataclass(frozen=True)
class Principal:
    tenant_id: str
    user_id: str
    role: Role
    building_ids: frozenset[str]
    # The refresh-token family (`sid`); revoking a family ends all of its access tokens.
    session_id: str
    # The access token's `jti`, for audit trails and single-use checks.
    token_id: str
    expires_at: datetime

    def __post_init__(self) -> None:
        # Refuse to exist in an invalid state, so code holding a Principal never
        # re-validates it.
        if not is_valid_id(self.tenant_id):
            raise ValueError("tenant_id is not a valid id")
        if not is_valid_id(self.user_id):
            raise ValueError("user_id is not a valid id")
        if not isinstance(self.role, Role):
            raise ValueError("role must be a Role")
        bad = [b for b in self.building_ids if not is_valid_id(b)]
        if bad:
            raise ValueError("building_ids contains an invalid id")
        if self.expires_at.tzinfo is None or self.expires_at.utcoffset() is None:
            raise ValueError("expires_at must be timezone-aware")
