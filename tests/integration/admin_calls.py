"""Callers of the tenant service through the gateway (`/api/v1/admin/*`), for the
integration tests: tokens of any role, a fresh tenant with its admin, one vote."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from identity.signing_keys import KeySet
from identity.tokens import mint_access_token
from sbp.settings import Settings
from tests.integration.votes import vote

ADMIN = "/api/v1/admin"


def token(settings: Settings, tenant_id: str, role: str, buildings: list[str] = []) -> str:  # noqa: B006
    return mint_access_token(
        KeySet.load_or_create(settings.keys_dir),
        tenant_id=tenant_id,
        user_id=f"{role.replace('_', '-')}-1",
        role=role,
        building_ids=buildings,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl_s=900,
    )


class Caller:
    def __init__(self, settings: Settings, token: str) -> None:
        self.base = f"http://{settings.host}:{settings.gateway_port}"
        self.headers = {"Authorization": f"Bearer {token}"}

    def __call__(self, method: str, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        if body is not None:
            kw["json"] = body
        return httpx.request(method, self.base + path, headers=self.headers, timeout=15, **kw)


def fresh_tenant(settings: Settings) -> tuple[str, Caller]:
    """A tenant created by a platform admin, and a caller acting as its tenant admin."""
    tenant_id = f"t-{uuid.uuid4().hex[:12]}"
    platform = Caller(settings, token(settings, "platform", "platform_admin"))
    created = platform("POST", f"{ADMIN}/tenants", {"tenantId": tenant_id, "name": "Acme"})
    assert created.status_code == 201, created.text
    return tenant_id, Caller(settings, token(settings, tenant_id, "tenant_admin"))


def vote_status(
    settings: Settings, tenant_id: str, building: str, zone: str, value: int = 1
) -> str:
    """Post one thermal vote as an occupant: its status, or its error code."""
    occupant = token(settings, tenant_id, "occupant", [building])
    resp = httpx.post(
        f"http://{settings.host}:{settings.gateway_port}/api/v1/votes/batch",
        json={"items": [vote(zone, value, building=building)]},
        headers={"Authorization": f"Bearer {occupant}"},
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    result = resp.json()["results"][0]
    status: str = result.get("error", {}).get("code", result["status"])
    return status
