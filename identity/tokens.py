"""Access tokens: mint and verify the platform's EdDSA JWTs (`typ: at+jwt`).

Claims (brief §4): `tenantId`, `userId`, `role`, `buildingIds` (a list), `exp`, `iat`,
`nbf`, `sub` (= `userId`), `jti`, `iss`, `aud` and `sid` (the refresh family).

Verification is strict and refuses before it trusts:
- only `alg: EdDSA` is accepted; `none`, HMAC (the classic "public key as HS256
  secret" confusion) and every other algorithm are refused before any key is used;
- the key is chosen by `kid` from the platform key set, never from the token;
- `typ` must be `at+jwt`, so an ID token or another JWT cannot stand in for an access
  token;
- every claim is type-checked; a `Principal` is only built from a fully valid token.

- `exp - iat` may not exceed 15 minutes (`MAX_LIFETIME_S`).

Every failure is a `TokenError` whose `code` a client can act on; the gateway maps all
of them to 401. Time checks use an injectable `now` and a small leeway for clock skew.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import jwt

from identity.principal import Principal, Role, is_valid_id
from identity.signing_keys import ALGORITHM, KeySet

TOKEN_TYPE = "at+jwt"
LEEWAY_S = 30
# A real token is well under 2 KiB; the cap bounds work done on unauthenticated input.
MAX_TOKEN_BYTES = 8 * 1024
MAX_BUILDING_IDS = 1000
# Access tokens live 15 minutes (brief §4). Verification refuses a longer-lived one
# whatever its signature, so a token minted with a far `exp` (a leaked signing key, a
# careless tool) is not a credential for years.
MAX_LIFETIME_S = 15 * 60
_ROLE_VALUES = frozenset(r.value for r in Role)

# The only verifier: restricted to EdDSA so no other algorithm can even be looked up.
_JWS = jwt.PyJWS(algorithms=[ALGORITHM])


class TokenError(Exception):
    """An access token was missing or unacceptable; answered with 401 and `code`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"TokenError({self.code!r}, {self.message!r})"


def parse_bearer(authorization_header: str | None) -> str:
    """The token from an `Authorization: Bearer <token>` header."""
    if not authorization_header:
        raise TokenError("missing_token", "an Authorization: Bearer token is required")
    scheme, _, token = authorization_header.strip().partition(" ")
    token = token.strip()
    # The scheme is case-insensitive (RFC 9110 §11.1).
    if scheme.lower() != "bearer" or not token or " " in token:
        raise TokenError("missing_token", "the Authorization header must be 'Bearer <token>'")
    return token


def mint_access_token(
    keyset: KeySet,
    *,
    tenant_id: str,
    user_id: str,
    role: Role | str,
    building_ids: Iterable[str],
    issuer: str,
    audience: str,
    ttl_s: int,
    now: datetime | None = None,
    session_id: str | None = None,
) -> str:
    """Sign an access token with the key set's current signing key.

    Raises ValueError for an invalid id, role or ttl: minting never produces a token
    that verification would refuse.
    """
    if not is_valid_id(tenant_id):
        raise ValueError(f"invalid tenant id {tenant_id!r}")
    if not is_valid_id(user_id):
        raise ValueError(f"invalid user id {user_id!r}")
    role = Role(role)
    buildings = sorted(set(building_ids))
    bad = [b for b in buildings if not is_valid_id(b)]
    if bad:
        raise ValueError(f"invalid building ids {bad!r}")
    if len(buildings) > MAX_BUILDING_IDS:
        raise ValueError(f"at most {MAX_BUILDING_IDS} building ids")
    if not 0 < ttl_s <= MAX_LIFETIME_S:
        raise ValueError(f"ttl_s must be between 1 and {MAX_LIFETIME_S}")
    issued = int(_aware(now).timestamp())
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": user_id,
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl_s,
        "jti": str(uuid.uuid4()),
        "sid": session_id or str(uuid.uuid4()),
        "tenantId": tenant_id,
        "userId": user_id,
        "role": role.value,
        "buildingIds": buildings,
    }
    key = keyset.signing_key
    return jwt.encode(
        claims,
        key.private_key,
        algorithm=ALGORITHM,
        headers={"typ": TOKEN_TYPE, "kid": key.kid},
    )


def verify_access_token(
    keyset: KeySet,
    token: str,
    *,
    issuer: str,
    audience: str,
    now: datetime | None = None,
) -> Principal:
    """Verify signature, header and claims; return the caller or raise `TokenError`."""
    if not token:
        raise TokenError("missing_token", "no access token")
    if len(token) > MAX_TOKEN_BYTES:
        raise TokenError("malformed_token", "the token is too large")
    header = _unverified_header(token)
    if header.get("alg") != ALGORITHM:
        raise TokenError("unsupported_algorithm", f"only {ALGORITHM} tokens are accepted")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise TokenError("malformed_token", "the token header has no kid")
    if "crit" in header:
        # We never mint critical extensions, so we understand none (RFC 7515 §4.1.11).
        raise TokenError("malformed_token", "unsupported critical header parameters")
    public_key = keyset.verification_key(kid)
    if public_key is None:
        raise TokenError("unknown_key", "the token's signing key is unknown or retired")
    try:
        decoded = _JWS.decode_complete(token, key=public_key, algorithms=[ALGORITHM])
    except jwt.InvalidSignatureError:
        raise TokenError("bad_signature", "the token signature is invalid") from None
    except jwt.InvalidAlgorithmError:
        raise TokenError("unsupported_algorithm", "the token algorithm is refused") from None
    except jwt.InvalidTokenError:
        raise TokenError("malformed_token", "the token cannot be decoded") from None
    # The header is authenticated from here on, so its typ can be trusted.
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in {TOKEN_TYPE, "application/" + TOKEN_TYPE}:
        raise TokenError("wrong_type", f"the token is not an access token (typ {TOKEN_TYPE})")
    claims = _payload(decoded["payload"])
    return _principal(claims, issuer=issuer, audience=audience, now=_aware(now))


def _aware(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    # A naive datetime's timestamp() silently assumes local time: refuse it.
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now


def _unverified_header(token: str) -> dict[str, Any]:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise TokenError("malformed_token", "the token is not a compact JWS") from None
    return header


def _payload(raw: bytes) -> dict[str, Any]:
    try:
        claims = json.loads(raw)
    except (ValueError, RecursionError):
        raise TokenError("malformed_token", "the token payload is not JSON") from None
    if not isinstance(claims, dict):
        raise TokenError("malformed_token", "the token payload is not a JSON object")
    return claims


def _principal(claims: dict[str, Any], *, issuer: str, audience: str, now: datetime) -> Principal:
    exp = _numeric_date(claims, "exp")
    iat = _numeric_date(claims, "iat")
    nbf = _numeric_date(claims, "nbf") if "nbf" in claims else None
    iss = claims.get("iss")
    if not isinstance(iss, str):
        raise TokenError("invalid_claims", "iss is missing or not a string")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
        raise TokenError("invalid_claims", "aud is missing or not a string or list of strings")

    if iss != issuer:
        raise TokenError("wrong_issuer", "the token was issued by another issuer")
    if audience not in audiences:
        raise TokenError("wrong_audience", "the token is not meant for this audience")

    if exp - iat > MAX_LIFETIME_S or (nbf is not None and exp - nbf > MAX_LIFETIME_S):
        raise TokenError(
            "lifetime_too_long", f"an access token may live at most {MAX_LIFETIME_S} s"
        )
    t = now.timestamp()
    if exp <= t - LEEWAY_S:
        raise TokenError("expired", "the token has expired")
    if iat > t + LEEWAY_S or (nbf is not None and nbf > t + LEEWAY_S):
        raise TokenError("not_yet_valid", "the token is not valid yet")

    tenant_id = _id_claim(claims, "tenantId")
    user_id = _id_claim(claims, "userId")
    if claims.get("sub") != user_id:
        raise TokenError("invalid_claims", "sub must equal userId")
    role_claim = claims.get("role")
    if not isinstance(role_claim, str) or role_claim not in _ROLE_VALUES:
        raise TokenError("invalid_claims", "role is missing or unknown")
    role = Role(role_claim)
    buildings = claims.get("buildingIds")
    if (
        not isinstance(buildings, list)
        or len(buildings) > MAX_BUILDING_IDS
        or not all(is_valid_id(b) for b in buildings)
    ):
        raise TokenError("invalid_claims", "buildingIds must be a list of valid ids")
    session_id = _str_claim(claims, "sid")
    token_id = _str_claim(claims, "jti")
    return Principal(
        tenant_id=tenant_id,
        user_id=user_id,
        role=role,
        building_ids=frozenset(buildings),
        session_id=session_id,
        token_id=token_id,
        expires_at=datetime.fromtimestamp(exp, UTC),
    )


def _numeric_date(claims: dict[str, Any], name: str) -> float:
    value = claims.get(name)
    # bool is an int subclass; `true` is not a date.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TokenError("invalid_claims", f"{name} must be a NumericDate")
    # Bounded so datetime conversion can never overflow on a hostile value.
    if not 0 <= value < 253402300800:  # 9999-12-31
        raise TokenError("invalid_claims", f"{name} is out of range")
    return float(value)


def _id_claim(claims: dict[str, Any], name: str) -> str:
    value = claims.get(name)
    if not is_valid_id(value):
        raise TokenError("invalid_claims", f"{name} is missing or not a valid id")
    return value


def _str_claim(claims: dict[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not 1 <= len(value) <= 128:
        raise TokenError("invalid_claims", f"{name} is missing or not a string")
    return value
