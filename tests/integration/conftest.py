"""Integration fixtures: the real local stack, brought up once per test session.

`sbp dev up` is idempotent, so a stack a developer already runs is reused as is.
Nothing here skips: a service that cannot start fails the session, in CI and out.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from devstack import stack as devstack
from devstack.seed import seed_zones
from identity.dev_cli import mint_dev_token
from sbp.settings import Settings, get_settings


@pytest.fixture(scope="session")
def stack() -> Iterator[Settings]:
    settings = get_settings()
    devstack.up(settings, log=lambda _line: None)
    yield settings


@dataclass(frozen=True)
class Tenant:
    """A tenant of its own per test, with one building and four zones, and its callers."""

    settings: Settings
    tenant_id: str
    building_id: str
    zones: tuple[str, ...]

    def token(self, role: str = "occupant", user: str = "occupant-1", ttl_s: int = 900) -> str:
        return mint_dev_token(
            self.settings, self.tenant_id, user, role, [self.building_id], ttl_s=ttl_s
        )

    def headers(self, role: str = "occupant", user: str = "occupant-1") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role, user)}"}

    @property
    def gateway(self) -> str:
        return f"http://{self.settings.host}:{self.settings.gateway_port}"


@pytest.fixture
def tenant(stack: Settings) -> Tenant:
    tenant_id = f"t-{uuid.uuid4().hex[:12]}"
    zones = ("z1", "z2", "z3", "z4")
    seed_zones(stack, tenant_id, "b1", [("f1", z, f"zone {z}") for z in zones])
    return Tenant(stack, tenant_id, "b1", zones)
