"""The vote endpoints' HTTP contract on the running gateway: whole-request precedence
(401, 413, 400, 422, 413), per-item statuses and the single-vote status codes."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from devstack.seed import seed_zones
from identity.signing_keys import KeySet
from identity.tokens import mint_access_token
from tests.integration.conftest import Tenant
from tests.integration.observe import vote_count, wait_for
from tests.integration.votes import vote

BATCH = "/api/v1/votes/batch"
SINGLE = "/api/v1/votes"


def _raw(tenant: Tenant, path: str, body: bytes, headers: dict[str, str] | None) -> httpx.Response:
    return httpx.post(
        tenant.gateway + path,
        content=body,
        headers={"content-type": "application/json", **(headers or {})},
        timeout=30,
    )


def _forged_token(tenant: Tenant) -> str:
    """Right claims, signed by a key the platform never issued."""
    return mint_access_token(
        KeySet.generate(),
        tenant_id=tenant.tenant_id,
        user_id="mallory",
        role="occupant",
        building_ids=[tenant.building_id],
        issuer=tenant.settings.jwt_issuer,
        audience=tenant.settings.jwt_audience,
        ttl_s=900,
    )


def _tampered_token(tenant: Tenant) -> str:
    """A real token whose payload was edited to claim the fm role; the signature no longer fits."""
    header, payload, signature = tenant.token().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "fm"
    edited = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{edited}.{signature}"


def _expired_token(tenant: Tenant) -> str:
    return mint_access_token(
        KeySet.load_or_create(tenant.settings.keys_dir),
        tenant_id=tenant.tenant_id,
        user_id="u1",
        role="occupant",
        building_ids=[tenant.building_id],
        issuer=tenant.settings.jwt_issuer,
        audience=tenant.settings.jwt_audience,
        ttl_s=60,
        now=datetime.now(UTC) - timedelta(hours=1),
    )


def _error(response: httpx.Response) -> str:
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    code: str = body["error"]["code"]
    return code


OVERSIZED = b'{"items": [' + b" " * (900 * 1024) + b"]}"
MALFORMED = b'{"items": [}'
WRONG_SHAPE = b'{"votes": []}'
ZERO_ITEMS = b'{"items": []}'


def _too_many() -> bytes:
    return json.dumps({"items": [vote("z1", 1) for _ in range(101)]}).encode()


@pytest.mark.parametrize(
    ("auth", "body", "status", "code"),
    [
        ("none", ZERO_ITEMS, 401, "missing_token"),
        ("forged", OVERSIZED, 401, "unknown_key"),
        ("tampered", MALFORMED, 401, "bad_signature"),
        ("expired", ZERO_ITEMS, 401, "expired"),
        ("valid", OVERSIZED, 413, "body_too_large"),
        ("valid", MALFORMED, 400, "malformed_json"),
        ("valid", WRONG_SHAPE, 422, "invalid_request"),
        ("valid", ZERO_ITEMS, 422, "invalid_request"),
        ("valid", "too_many", 413, "batch_too_large"),
    ],
)
def test_whole_request_precedence(
    tenant: Tenant, auth: str, body: bytes | str, status: int, code: str
) -> None:
    headers = {
        "none": {},
        "forged": {"Authorization": f"Bearer {_forged_token(tenant)}"},
        "tampered": {"Authorization": f"Bearer {_tampered_token(tenant)}"},
        "expired": {"Authorization": f"Bearer {_expired_token(tenant)}"},
        "valid": tenant.headers(),
    }[auth]
    payload = _too_many() if body == "too_many" else body
    assert isinstance(payload, bytes)
    response = _raw(tenant, BATCH, payload, headers)
    assert response.status_code == status, response.text
    assert _error(response) == code
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_rejected_requests_change_nothing(tenant: Tenant) -> None:
    items = [vote("z1", 1) for _ in range(101)]
    assert (
        _raw(tenant, BATCH, json.dumps({"items": items}).encode(), tenant.headers()).status_code
        == 413
    )
    forged = {"Authorization": f"Bearer {_forged_token(tenant)}"}
    assert _raw(tenant, BATCH, json.dumps({"items": items[:3]}).encode(), forged).status_code == 401
    # A valid batch afterwards is the only thing stored.
    ok = _raw(tenant, BATCH, json.dumps({"items": [vote("z2", 0)]}).encode(), tenant.headers())
    assert ok.json()["counts"]["accepted"] == 1
    wait_for(lambda: vote_count(tenant.settings, tenant.tenant_id) == 1, 60, "one row")
    assert vote_count(tenant.settings, tenant.tenant_id) == 1


def test_per_item_statuses_in_one_batch(tenant: Tenant) -> None:
    seed_zones(tenant.settings, tenant.tenant_id, "b2", [("f1", "zz", "outside the token")])
    items = [
        vote("z1", 2),
        vote("z1", 2, kind="air"),  # air is 1..5: 2 is valid
        vote("z1", 9),  # out of range
        {"voteUuid": "not-a-uuid", "buildingId": "b1", "zoneId": "z1", "value": 1},
        vote("nope", 1),
        vote("zz", 1, building="b2"),
        vote("z1", 1, minutes_ago=-10),  # ten minutes in the future
        vote("z1", 1, minutes_ago=8 * 24 * 60),  # eight days old
        vote("z1", 1, minutes_ago=60),  # an hour old: late
        vote("z1", True),  # a JSON boolean is not a number
    ]
    response = _raw(tenant, BATCH, json.dumps({"items": items}).encode(), tenant.headers())
    assert response.status_code == 200
    results = response.json()["results"]
    summary = [(r["status"], r.get("error", {}).get("code")) for r in results]
    assert summary == [
        ("accepted", None),
        ("accepted", None),
        ("rejected", "invalid_value"),
        ("rejected", "invalid_schema"),
        ("rejected", "unknown_zone"),
        ("rejected", "forbidden_building"),
        ("rejected", "future_timestamp"),
        ("rejected", "too_old"),
        ("late_submission", None),
        ("rejected", "invalid_schema"),
    ]
    assert response.json()["counts"] == {
        "accepted": 2,
        "late_submission": 1,
        "duplicate": 0,
        "rejected": 7,
    }
    wait_for(lambda: vote_count(tenant.settings, tenant.tenant_id) == 3, 60, "three rows")


def test_single_vote_statuses(tenant: Tenant) -> None:
    seed_zones(tenant.settings, tenant.tenant_id, "b2", [("f1", "zz", "outside the token")])
    item = vote("z4", -3)
    first = _raw(tenant, SINGLE, json.dumps(item).encode(), tenant.headers())
    assert first.status_code == 202
    assert first.json() == {"index": 0, "voteUuid": item["voteUuid"], "status": "accepted"}
    again = _raw(tenant, SINGLE, json.dumps(item).encode(), tenant.headers())
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    unknown = _raw(tenant, SINGLE, json.dumps(vote("nope", 1)).encode(), tenant.headers())
    assert (unknown.status_code, _error(unknown)) == (404, "unknown_zone")
    outside = _raw(
        tenant, SINGLE, json.dumps(vote("zz", 1, building="b2")).encode(), tenant.headers()
    )
    assert (outside.status_code, _error(outside)) == (403, "forbidden_building")
    bad = _raw(tenant, SINGLE, json.dumps(vote("z4", 7)).encode(), tenant.headers())
    assert (bad.status_code, _error(bad)) == (422, "invalid_value")


def test_another_tenants_zone_is_unknown(tenant: Tenant) -> None:
    other = f"{tenant.tenant_id}-other"
    seed_zones(tenant.settings, other, "b1", [("f1", "secret", "another tenant's zone")])
    response = _raw(tenant, SINGLE, json.dumps(vote("secret", 1)).encode(), tenant.headers())
    assert (response.status_code, _error(response)) == (404, "unknown_zone")


def test_role_without_vote_permission_is_forbidden(tenant: Tenant) -> None:
    response = _raw(
        tenant,
        BATCH,
        json.dumps({"items": [vote("z1", 1)]}).encode(),
        tenant.headers(role="sensor", user="sensor-1"),
    )
    assert (response.status_code, _error(response)) == (403, "forbidden_action")


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/api/v1/nowhere", 404, "not_found"),
        # An id holding a newline matches no route's pattern (found by the API fuzz test).
        ("POST", "/api/v1/admin/tenants/%0A/admins", 404, "not_found"),
        ("GET", "/api/v1/votes/batch", 405, "method_not_allowed"),
    ],
)
def test_unrouted_requests_get_the_one_error_shape(
    tenant: Tenant, method: str, path: str, status: int, code: str
) -> None:
    response = httpx.request(
        method, f"{tenant.gateway}{path}", headers=tenant.headers(), json={}, timeout=10
    )
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == code
    if status == 405:
        assert "POST" in response.headers["allow"]
