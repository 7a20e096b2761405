"""What identity costs: token verification plus the RBAC check per request, and logins
at the floor argon2 parameters, alone and while votes flow.

1. In process: verify an access token and authorize the vote action, N times; µs each.
   The simplest thing that does the same job, PyJWT's own `jwt.decode` with the same
   key, algorithm, audience and issuer (no claim typing, no RBAC), runs on the same
   token in the same run, and the ratio is reported.
2. On the running gateway: one login at a time (latency), then 20 logins at once while
   4 clients post 100-vote batches; the vote route's p50/p99 with and without the
   logins.

Run: `.venv/bin/python -m bench.auth_cost`
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

import httpx
import jwt

from bench.http_client import percentile
from bench.machine import describe_machine
from bench.tenant import fresh_tenant, require_loopback
from identity.principal import Role
from identity.rbac import Action, authorize
from identity.signing_keys import ALGORITHM, KeySet
from identity.tokens import mint_access_token, verify_access_token
from sbp.settings import Settings, get_settings
from tests.integration.accounts import PASSWORD, create_account
from tests.integration.votes import vote


def token_check_cost(n: int) -> None:
    keyset = KeySet.generate()
    token = mint_access_token(
        keyset,
        tenant_id="acme",
        user_id="u1",
        role=Role.OCCUPANT,
        building_ids=["b1"],
        issuer="iss",
        audience="aud",
        ttl_s=900,
    )
    public = keyset.verification_key(keyset.signing_key.kid)
    assert public is not None
    start = time.perf_counter()
    for _ in range(n):
        principal = verify_access_token(keyset, token, issuer="iss", audience="aud")
        authorize(principal, Action.VOTE_SUBMIT)
    ours = (time.perf_counter() - start) / n * 1e6
    start = time.perf_counter()
    for _ in range(n):
        jwt.decode(token, public, algorithms=[ALGORITHM], audience="aud", issuer="iss")
    bare = (time.perf_counter() - start) / n * 1e6
    print(f"token verification + RBAC: {ours:.1f} µs/request over {n}")
    print(f"PyJWT jwt.decode alone:    {bare:.1f} µs/request  (ratio {ours / bare:.2f})")


async def _login(client: httpx.AsyncClient, tenant_id: str, user: str) -> float:
    start = time.perf_counter()
    resp = await client.post(
        "/api/v1/auth/login", json={"tenantId": tenant_id, "userId": user, "password": PASSWORD}
    )
    assert resp.status_code == 200, resp.text
    return time.perf_counter() - start


async def _vote_load(
    client: httpx.AsyncClient, token: str, building: str, zones: tuple[str, ...], stop: float
) -> list[float]:
    latencies = []
    while time.monotonic() < stop:
        items = [vote(zones[i % len(zones)], 1, building=building) for i in range(100)]
        start = time.perf_counter()
        resp = await client.post(
            "/api/v1/votes/batch",
            json={"items": items},
            headers={"Authorization": f"Bearer {token}"},
        )
        latencies.append(time.perf_counter() - start)
        assert resp.status_code == 200, resp.text
        await asyncio.sleep(0.05)
    return latencies


async def gateway_logins(settings: Settings, logins: int) -> None:
    tenant = await asyncio.to_thread(fresh_tenant, settings)
    users = [f"user-{uuid.uuid4().hex[:8]}" for _ in range(logins)]
    for user in users:
        await asyncio.to_thread(
            create_account, settings, tenant.tenant_id, user, "occupant", [tenant.building_id]
        )
    base = f"http://{settings.host}:{settings.gateway_port}"
    tokens = tenant.tokens(4, ttl_s=900)
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        single = [await _login(client, tenant.tenant_id, users[i % logins]) for i in range(10)]
        print(
            f"one login at a time: median {statistics.median(single) * 1000:.0f} ms, "
            f"max {max(single) * 1000:.0f} ms (argon2id m=19 MiB, t=2)"
        )
        stop = time.monotonic() + 8
        quiet = await asyncio.gather(
            *[_vote_load(client, t, tenant.building_id, tenant.zones, stop) for t in tokens]
        )
        stop = time.monotonic() + 8

        async def login_waves() -> list[float]:
            times: list[float] = []
            while time.monotonic() < stop:
                times += await asyncio.gather(*[_login(client, tenant.tenant_id, u) for u in users])
            return times

        busy_and_logins = await asyncio.gather(
            login_waves(),
            *[_vote_load(client, t, tenant.building_id, tenant.zones, stop) for t in tokens],
        )
    login_times = sorted(busy_and_logins[0])
    calm = sorted(x for run in quiet for x in run)
    busy = sorted(x for run in busy_and_logins[1:] for x in run)
    print(
        f"{logins} concurrent logins, repeated for 8 s: {len(login_times)} logins, "
        f"p50 {percentile(login_times, 50) * 1000:.0f} ms, "
        f"p99 {percentile(login_times, 99) * 1000:.0f} ms"
    )
    print(
        f"vote route without logins: p50 {percentile(calm, 50) * 1000:.0f} ms, "
        f"p99 {percentile(calm, 99) * 1000:.0f} ms ({len(calm)} batches)"
    )
    print(
        f"vote route during logins:  p50 {percentile(busy, 50) * 1000:.0f} ms, "
        f"p99 {percentile(busy, 99) * 1000:.0f} ms ({len(busy)} batches)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verifications", type=int, default=20_000)
    parser.add_argument("--logins", type=int, default=20)
    args = parser.parse_args()
    settings = get_settings()
    require_loopback(settings)
    print(describe_machine())
    token_check_cost(args.verifications)
    asyncio.run(gateway_logins(settings, args.logins))


if __name__ == "__main__":
    main()
