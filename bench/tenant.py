"""A fresh tenant per benchmark run: unique id, one building, seeded zones, callers' tokens.

A unique tenant keeps a run's rows, Redis keys and snapshots apart from every
other run and from the tests sharing the stack, so counts can be exact.
"""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from devstack.seed import seed_zones
from identity.dev_cli import mint_dev_token
from sbp.settings import Settings

BUILDING = "b1"


@dataclass(frozen=True)
class BenchTenant:
    settings: Settings
    tenant_id: str
    building_id: str
    zones: tuple[str, ...]

    def tokens(self, users: int, ttl_s: int) -> list[str]:
        """One occupant token per user (`occupant-0` …), minted with the stack's keys."""
        return [
            mint_dev_token(
                self.settings,
                self.tenant_id,
                f"occupant-{i}",
                "occupant",
                [self.building_id],
                ttl_s=ttl_s,
            )
            for i in range(users)
        ]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def require_loopback(settings: Settings) -> None:
    """Benchmarks only ever load the local stack: every service they touch is on loopback."""
    hosts = [settings.host, settings.pg_host, settings.redis_host]
    hosts.append(urlsplit(settings.registry_url).hostname)
    hosts += [b.rpartition(":")[0] for b in settings.kafka_bootstrap.split(",")]
    remote = [h for h in hosts if h is not None and not _is_loopback(h)]
    if remote:
        raise SystemExit(f"refusing to benchmark non-loopback hosts {remote!r}")


def fresh_tenant(settings: Settings, zones: int = 4) -> BenchTenant:
    tenant_id = f"bench-{uuid.uuid4().hex[:12]}"
    zone_ids = tuple(f"z{i}" for i in range(1, zones + 1))
    seed_zones(settings, tenant_id, BUILDING, [("f1", z, f"bench zone {z}") for z in zone_ids])
    return BenchTenant(settings, tenant_id, BUILDING, zone_ids)
