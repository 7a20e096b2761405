"""Access tokens: every way a token can be wrong maps to one exact TokenError code."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest

from identity.principal import Role
from identity.signing_keys import KeySet
from identity.tokens import (
    LEEWAY_S,
    TokenError,
    mint_access_token,
    parse_bearer,
    verify_access_token,
)

ISS = "sbp-test"
AUD = "sbp-api"
T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
TTL = 900


@pytest.fixture
def keyset() -> KeySet:
    return KeySet.generate()


def mint(keyset: KeySet, **overrides: Any) -> str:
    args: dict[str, Any] = {
        "tenant_id": "acme",
        "user_id": "u-1",
        "role": Role.FM,
        "building_ids": ["b1", "b2"],
        "issuer": ISS,
        "audience": AUD,
        "ttl_s": TTL,
        "now": T0,
    }
    args.update(overrides)
    return mint_access_token(keyset, **args)


def verify(keyset: KeySet, token: str, now: datetime = T0, **kw: Any) -> Any:
    kw.setdefault("issuer", ISS)
    kw.setdefault("audience", AUD)
    return verify_access_token(keyset, token, now=now, **kw)


def code_of(keyset: KeySet, token: str, now: datetime = T0, **kw: Any) -> str:
    with pytest.raises(TokenError) as info:
        verify(keyset, token, now, **kw)
    return info.value.code


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISS,
        "aud": AUD,
        "sub": "u-1",
        "iat": int(T0.timestamp()),
        "nbf": int(T0.timestamp()),
        "exp": int(T0.timestamp()) + TTL,
        "jti": "jti-1",
        "sid": "sid-1",
        "tenantId": "acme",
        "userId": "u-1",
        "role": "fm",
        "buildingIds": ["b1"],
    }
    base.update(overrides)
    return base


def sign(keyset: KeySet, payload: Any, **headers: Any) -> str:
    """A correctly signed token with arbitrary header and payload (PyJWT's encode would
    refuse some of the ill-typed values these tests need)."""
    key = keyset.signing_key
    hdr = {"alg": "EdDSA", "typ": "at+jwt", "kid": key.kid, **headers}
    signing_input = f"{b64(json.dumps(hdr).encode())}.{b64(json.dumps(payload).encode())}"
    return f"{signing_input}.{b64(key.private_key.sign(signing_input.encode()))}"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_token(header: dict[str, Any], payload: dict[str, Any], signature: bytes) -> str:
    return ".".join(
        [b64(json.dumps(header).encode()), b64(json.dumps(payload).encode()), b64(signature)]
    )


def test_round_trip(keyset: KeySet) -> None:
    token = mint(keyset, session_id="family-1")
    principal = verify(keyset, token)
    assert principal.tenant_id == "acme"
    assert principal.user_id == "u-1"
    assert principal.role is Role.FM
    assert principal.building_ids == frozenset({"b1", "b2"})
    assert principal.session_id == "family-1"
    assert principal.expires_at == T0 + timedelta(seconds=TTL)
    assert principal.expires_at.tzinfo is not None


def test_header_and_claims_follow_the_contract(keyset: KeySet) -> None:
    token = mint(keyset, building_ids=[])
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "EdDSA", "typ": "at+jwt", "kid": keyset.signing_key.kid}
    body = jwt.decode(token, options={"verify_signature": False})
    assert body["sub"] == body["userId"] == "u-1"
    assert body["buildingIds"] == []
    assert body["exp"] - body["iat"] == TTL
    assert {"jti", "sid", "iss", "aud", "tenantId", "role"} <= body.keys()


def test_each_token_has_its_own_jti_and_a_session_by_default(keyset: KeySet) -> None:
    a, b = verify(keyset, mint(keyset)), verify(keyset, mint(keyset))
    assert a.token_id != b.token_id
    assert a.session_id != b.session_id


def test_expired_beyond_leeway(keyset: KeySet) -> None:
    token = mint(keyset)
    expiry = T0 + timedelta(seconds=TTL)
    verify(keyset, token, now=expiry + timedelta(seconds=LEEWAY_S - 1))
    assert code_of(keyset, token, now=expiry + timedelta(seconds=LEEWAY_S + 1)) == "expired"


def test_issued_in_the_future_beyond_leeway(keyset: KeySet) -> None:
    token = mint(keyset, now=T0 + timedelta(seconds=LEEWAY_S + 5))
    assert code_of(keyset, token) == "not_yet_valid"
    verify(keyset, mint(keyset, now=T0 + timedelta(seconds=LEEWAY_S - 5)))


def test_nbf_in_the_future(keyset: KeySet) -> None:
    token = sign(keyset, claims(nbf=int(T0.timestamp()) + 300))
    assert code_of(keyset, token) == "not_yet_valid"


def test_forged_signature_with_our_kid(keyset: KeySet) -> None:
    forger = KeySet.generate()
    token = jwt.encode(
        claims(),
        forger.signing_key.private_key,
        algorithm="EdDSA",
        headers={"typ": "at+jwt", "kid": keyset.signing_key.kid},
    )
    assert code_of(keyset, token) == "bad_signature"


def test_tampered_payload(keyset: KeySet) -> None:
    header, _, signature = mint(keyset).split(".")
    forged_body = b64(json.dumps(claims(role="platform_admin")).encode())
    assert code_of(keyset, f"{header}.{forged_body}.{signature}") == "bad_signature"


def test_truncated_signature(keyset: KeySet) -> None:
    token = mint(keyset)
    assert code_of(keyset, token[:-10]) == "bad_signature"


def test_alg_none_is_refused(keyset: KeySet) -> None:
    header = {"alg": "none", "typ": "at+jwt", "kid": keyset.signing_key.kid}
    assert code_of(keyset, raw_token(header, claims(), b"")) == "unsupported_algorithm"


def test_hs256_with_the_public_key_as_secret_is_refused(keyset: KeySet) -> None:
    header = {"alg": "HS256", "typ": "at+jwt", "kid": keyset.signing_key.kid}
    secret = keyset.signing_key.public_key.public_bytes_raw()
    unsigned = raw_token(header, claims(), b"").rstrip(".")
    mac = hmac.new(secret, unsigned.encode(), hashlib.sha256).digest()
    assert code_of(keyset, f"{unsigned}.{b64(mac)}") == "unsupported_algorithm"


def test_missing_alg_is_refused(keyset: KeySet) -> None:
    header = {"typ": "at+jwt", "kid": keyset.signing_key.kid}
    assert code_of(keyset, raw_token(header, claims(), b"x")) == "unsupported_algorithm"


@pytest.mark.parametrize("typ", ["JWT", "id+jwt", None, 7])
def test_wrong_typ(keyset: KeySet, typ: object) -> None:
    assert code_of(keyset, sign(keyset, claims(), typ=typ)) == "wrong_type"


def test_media_type_form_of_typ_is_accepted(keyset: KeySet) -> None:
    verify(keyset, sign(keyset, claims(), typ="application/AT+JWT"))


def test_wrong_issuer(keyset: KeySet) -> None:
    assert code_of(keyset, mint(keyset, issuer="someone-else")) == "wrong_issuer"


def test_wrong_audience(keyset: KeySet) -> None:
    assert code_of(keyset, mint(keyset, audience="another-api")) == "wrong_audience"


def test_audience_list_containing_ours_is_accepted(keyset: KeySet) -> None:
    verify(keyset, sign(keyset, claims(aud=["x", AUD])))


@pytest.mark.parametrize(
    "claim",
    ["tenantId", "userId", "role", "buildingIds", "exp", "iat", "sub", "jti", "sid", "iss", "aud"],
)
def test_missing_claim(keyset: KeySet, claim: str) -> None:
    body = claims()
    del body[claim]
    assert code_of(keyset, sign(keyset, body)) == "invalid_claims"


@pytest.mark.parametrize(
    "overrides",
    [
        {"buildingIds": "b1"},
        {"buildingIds": ["b1", "bad id"]},
        {"buildingIds": [1]},
        {"buildingIds": None},
        {"role": "admin"},
        {"role": ["fm"]},
        {"tenantId": "acme/other"},
        {"tenantId": ""},
        {"tenantId": "x" * 65},
        {"userId": 42},
        {"sub": "u-2"},
        {"exp": "1748779200"},
        {"exp": True},
        {"exp": 1e300},
        {"iat": None},
        {"jti": 5},
        {"sid": ""},
        {"iss": ["sbp-test"]},
        {"aud": [1]},
    ],
)
def test_ill_typed_claims(keyset: KeySet, overrides: dict[str, Any]) -> None:
    assert code_of(keyset, sign(keyset, claims(**overrides))) == "invalid_claims"


def test_unknown_kid(keyset: KeySet) -> None:
    other = KeySet.generate()
    assert code_of(keyset, mint(other)) == "unknown_key"


@pytest.mark.parametrize("kid", [None, 3, ""])
def test_missing_or_ill_typed_kid(keyset: KeySet, kid: object) -> None:
    assert code_of(keyset, sign(keyset, claims(), kid=kid)) == "malformed_token"


def test_critical_headers_are_refused(keyset: KeySet) -> None:
    token = sign(keyset, claims(), crit=["exp"], exp=1)
    assert code_of(keyset, token) == "malformed_token"


@pytest.mark.parametrize(
    "token", ["abc", "a.b.c", "a.b", "....", "eyJhbGciOiJFZERTQSJ9", "x" * 9000, "W10.e30.e30"]
)
def test_malformed(keyset: KeySet, token: str) -> None:
    assert code_of(keyset, token) == "malformed_token"


def test_payload_that_is_not_an_object(keyset: KeySet) -> None:
    assert code_of(keyset, sign(keyset, [1, 2])) == "malformed_token"


def test_signed_test_helper_is_accepted(keyset: KeySet) -> None:
    # Guards the tests above: their tokens fail only for the reason each one injects.
    verify(keyset, sign(keyset, claims()))


def test_empty_token(keyset: KeySet) -> None:
    assert code_of(keyset, "") == "missing_token"


def test_rotation_keeps_old_tokens_until_retired(tmp_path: Path) -> None:
    keyset = KeySet.load_or_create(tmp_path)
    old_kid = keyset.signing_key.kid
    old_token = mint(keyset)

    new_kid = keyset.rotate()
    assert new_kid != old_kid
    new_token = mint(keyset)
    assert jwt.get_unverified_header(new_token)["kid"] == new_kid
    verify(keyset, old_token)
    verify(keyset, new_token)

    keyset.retire(old_kid)
    assert code_of(keyset, old_token) == "unknown_key"
    verify(keyset, new_token)


def test_rotation_reaches_other_processes_through_the_key_file(tmp_path: Path) -> None:
    signer = KeySet.load_or_create(tmp_path)
    verifier = KeySet.load_or_create(tmp_path)
    old_kid = signer.signing_key.kid
    old_token = mint(signer)
    signer.rotate()
    # The verifier has never seen the new kid; an unknown kid makes it re-read the file.
    verify(verifier, mint(signer))
    verify(verifier, old_token)

    signer.retire(old_kid)
    verifier.refresh()
    assert code_of(verifier, old_token) == "unknown_key"


@pytest.mark.parametrize(
    "overrides",
    [
        {"tenant_id": "bad tenant"},
        {"user_id": ""},
        {"role": "root"},
        {"building_ids": ["ok", "not ok"]},
        {"ttl_s": 0},
        {"now": datetime(2025, 6, 1, 12, 0)},
    ],
)
def test_minting_refuses_what_verification_would_refuse(
    keyset: KeySet, overrides: dict[str, Any]
) -> None:
    with pytest.raises(ValueError):
        mint(keyset, **overrides)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer abc", "abc"),
        ("  Bearer   abc  ", "abc"),
    ],
)
def test_parse_bearer(header: str, expected: str) -> None:
    assert parse_bearer(header) == expected


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Bearer ", "Basic dXNlcg==", "abc", "Bearer a b"]
)
def test_parse_bearer_refuses(header: str | None) -> None:
    with pytest.raises(TokenError) as info:
        parse_bearer(header)
    assert info.value.code == "missing_token"
