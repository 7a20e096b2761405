"""The pure parts of login and refresh: the rotation table, TOTP single use, password
hashing, refresh-token format, access-token lifetime and sealed account fields."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from identity import totp
from identity.keyring import DecryptionError, LocalKeyring
from identity.passwords import WeakPassword, hash_password, verify_password
from identity.refresh_tokens import (
    LIFETIME,
    RETRY_GRACE,
    Outcome,
    RefreshTokenError,
    StoredRefresh,
    decide,
    new_refresh_token,
    parse_refresh_token,
    token_hash,
)
from identity.signing_keys import ALGORITHM, KeySet
from identity.tokens import MAX_LIFETIME_S, TokenError, mint_access_token, verify_access_token

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def stored(**kw: object) -> StoredRefresh:
    base: dict[str, object] = {
        "expires_at": NOW + LIFETIME,
        "rotated_at": None,
        "has_successor": False,
        "family_revoked": False,
    }
    base.update(kw)
    return StoredRefresh(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("state", "now", "outcome"),
    [
        (stored(), NOW, Outcome.ROTATE),
        (stored(expires_at=NOW), NOW, Outcome.EXPIRED),
        (stored(rotated_at=NOW, has_successor=True), NOW + RETRY_GRACE, Outcome.SAME_SUCCESSOR),
        (
            stored(rotated_at=NOW, has_successor=True),
            NOW + RETRY_GRACE + timedelta(milliseconds=1),
            Outcome.REUSE,
        ),
        # A successor already forgotten (family revoked then restored is impossible,
        # but a cleared successor must never yield a new token): reuse.
        (stored(rotated_at=NOW, has_successor=False), NOW, Outcome.REUSE),
        # A used token is reuse even after it expired.
        (stored(rotated_at=NOW, has_successor=True, expires_at=NOW), NOW + LIFETIME, Outcome.REUSE),
        (stored(family_revoked=True), NOW, Outcome.REVOKED),
        (stored(family_revoked=True, rotated_at=NOW, has_successor=True), NOW, Outcome.REVOKED),
    ],
)
def test_the_rotation_table(state: StoredRefresh, now: datetime, outcome: Outcome) -> None:
    assert decide(state, now) is outcome


def test_a_refresh_token_names_its_tenant_and_is_stored_only_as_a_hash() -> None:
    token = new_refresh_token("acme")
    parsed = parse_refresh_token(token)
    assert parsed.tenant_id == "acme"
    assert parsed.token_hash == token_hash(token) and len(parsed.token_hash) == 32
    assert new_refresh_token("acme") != token


@pytest.mark.parametrize(
    "bad",
    [None, 7, "", "rt1.acme.short", "rt2.acme." + "a" * 43, "rt1.ac:me." + "a" * 43, "x" * 500],
)
def test_anything_else_is_not_a_refresh_token(bad: object) -> None:
    with pytest.raises(RefreshTokenError) as err:
        parse_refresh_token(bad)
    assert err.value.code == "invalid_refresh_token"


def test_an_access_token_is_not_a_refresh_token() -> None:
    keyset = KeySet.generate()
    access = mint_access_token(
        keyset,
        tenant_id="acme",
        user_id="u1",
        role="occupant",
        building_ids=["b1"],
        issuer="i",
        audience="a",
        ttl_s=60,
    )
    with pytest.raises(RefreshTokenError):
        parse_refresh_token(access)


def test_a_totp_code_is_accepted_once_and_within_one_step_of_drift() -> None:
    secret = totp.new_secret()
    code = totp.code_at(secret, NOW)
    step = totp.matching_step(secret, code, NOW, last_step=0)
    assert step == int(NOW.timestamp()) // totp.STEP_S
    # Used: the same code (same step) never passes again.
    assert totp.matching_step(secret, code, NOW, last_step=step) is None
    # A phone 30 s behind or ahead still works, 60 s does not.
    assert totp.matching_step(secret, code, NOW + timedelta(seconds=30), 0) == step
    assert totp.matching_step(secret, code, NOW + timedelta(seconds=61), 0) is None
    assert totp.matching_step(secret, "12345", NOW, 0) is None
    assert totp.matching_step(secret, "\uff11" * 6, NOW, 0) is None  # fullwidth digits
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert totp.matching_step(secret, wrong, NOW, 0) is None


def test_passwords_are_argon2id_at_the_floor_parameters() -> None:
    hashed = hash_password("correct horse battery")
    assert hashed.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert verify_password(hashed, "correct horse battery")
    assert not verify_password(hashed, "correct horse batterz")
    assert not verify_password(None, "correct horse battery")
    assert not verify_password("not a hash", "correct horse battery")
    assert not verify_password(hashed, "x" * 10_000)
    with pytest.raises(WeakPassword):
        hash_password("short")


def _long_lived(keyset: KeySet, lifetime_s: int) -> str:
    issued = int(datetime.now(UTC).timestamp())
    claims = {
        "iss": "i",
        "aud": "a",
        "sub": "u1",
        "userId": "u1",
        "tenantId": "acme",
        "role": "occupant",
        "buildingIds": ["b1"],
        "iat": issued,
        "nbf": issued,
        "exp": issued + lifetime_s,
        "jti": "j",
        "sid": "s",
    }
    key = keyset.signing_key
    return jwt.encode(
        claims, key.private_key, algorithm=ALGORITHM, headers={"typ": "at+jwt", "kid": key.kid}
    )


def test_a_validly_signed_token_that_lives_too_long_is_refused() -> None:
    keyset = KeySet.generate()
    # Positive control: exactly the maximum verifies.
    assert (
        verify_access_token(
            keyset, _long_lived(keyset, MAX_LIFETIME_S), issuer="i", audience="a"
        ).user_id
        == "u1"
    )
    with pytest.raises(TokenError) as err:
        verify_access_token(
            keyset, _long_lived(keyset, MAX_LIFETIME_S + 1), issuer="i", audience="a"
        )
    assert err.value.code == "lifetime_too_long"
    with pytest.raises(TokenError) as err:
        verify_access_token(keyset, _long_lived(keyset, 250_000_000), issuer="i", audience="a")
    assert err.value.code == "lifetime_too_long"
    with pytest.raises(ValueError):
        mint_access_token(
            keyset,
            tenant_id="acme",
            user_id="u1",
            role="occupant",
            building_ids=[],
            issuer="i",
            audience="a",
            ttl_s=MAX_LIFETIME_S + 1,
        )


def test_sealed_fields_are_bound_to_their_field_and_tenant() -> None:
    ring = LocalKeyring.generate()
    sealed = ring.encrypt_field("acme", "totp_secret", "JBSWY3DPEHPK3PXP")
    assert ring.decrypt_field("acme", "totp_secret", sealed) == "JBSWY3DPEHPK3PXP"
    with pytest.raises(DecryptionError):
        ring.decrypt_field("acme", "email", sealed)
    with pytest.raises(DecryptionError):
        ring.decrypt_field("other", "totp_secret", sealed)
    with pytest.raises(ValueError):
        ring.encrypt_field("acme", "anything", "x")
    # Comments keep their key: a comment sealed as a field opens as a comment.
    assert ring.decrypt_comment("acme", ring.encrypt_field("acme", "comment", "hi")) == "hi"
