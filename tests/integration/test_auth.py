"""Login, refresh rotation, logout, sensor credentials and SSE tickets on the running
gateway, against the real PostgreSQL and Redis. Every refusal has a positive control:
the same call with the rightful credential succeeds."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from gateway.login_throttle import ACCOUNT_LIMIT, RedisLoginThrottle
from identity import totp
from identity.auth_service import AuthError, AuthService, TokenSettings
from identity.keyring import LocalKeyring
from identity.signing_keys import KeySet
from sinks.live.redis_client import connect
from sinks.timescale.connection import ReconnectingConnection
from tests.integration.accounts import PASSWORD, create_account
from tests.integration.conftest import Tenant
from tests.integration.votes import vote


def _login(tenant: Tenant, user: str, password: str = PASSWORD, **extra: Any) -> httpx.Response:
    body = {"tenantId": tenant.tenant_id, "userId": user, "password": password, **extra}
    return httpx.post(f"{tenant.gateway}/api/v1/auth/login", json=body, timeout=10)


def _refresh(tenant: Tenant, token: str) -> httpx.Response:
    return httpx.post(
        f"{tenant.gateway}/api/v1/auth/refresh", json={"refreshToken": token}, timeout=10
    )


def _vote(tenant: Tenant, access_token: str) -> httpx.Response:
    return httpx.post(
        f"{tenant.gateway}/api/v1/votes/batch",
        json={"items": [vote("z1", 1, building=tenant.building_id)]},
        headers={"Authorization": f"Bearer {access_token}"},
        timeout=10,
    )


def _code(resp: httpx.Response) -> str:
    code: str = resp.json()["error"]["code"]
    return code


def _audit(tenant: Tenant, event: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(tenant.settings.pg_dsn("app")) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant.tenant_id,))
        return conn.execute(
            "SELECT user_id, family_id FROM sbp.auth_audit WHERE event = %s", (event,)
        ).fetchall()


def test_an_occupant_logs_in_and_votes_with_the_token_it_got(tenant: Tenant) -> None:
    create_account(tenant.settings, tenant.tenant_id, "alice", "occupant", [tenant.building_id])
    resp = _login(tenant, "alice")
    assert resp.status_code == 200, resp.text
    assert resp.headers["cache-control"] == "no-store"
    body = resp.json()
    assert body["tokenType"] == "Bearer" and body["expiresIn"] == 900
    assert body["refreshToken"].startswith(f"rt1.{tenant.tenant_id}.")
    voted = _vote(tenant, body["accessToken"])
    assert voted.status_code == 200 and voted.json()["counts"]["accepted"] == 1
    # A refresh token is not an access token.
    refused = _vote(tenant, body["refreshToken"])
    assert refused.status_code == 401 and _code(refused) == "malformed_token"
    assert _audit(tenant, "login") != []


def test_a_wrong_password_and_an_unknown_account_get_the_same_answer(tenant: Tenant) -> None:
    create_account(tenant.settings, tenant.tenant_id, "bob", "occupant", [tenant.building_id])
    wrong = _login(tenant, "bob", "correct horse battery stapler")
    unknown = _login(tenant, "nobody")
    assert (wrong.status_code, _code(wrong)) == (401, "invalid_credentials")
    assert (unknown.status_code, _code(unknown)) == (401, "invalid_credentials")
    assert wrong.json() == unknown.json()
    assert _login(tenant, "bob").status_code == 200


def test_an_account_is_only_found_in_its_own_tenant(tenant: Tenant) -> None:
    create_account(tenant.settings, tenant.tenant_id, "carol", "occupant", [tenant.building_id])
    other = f"t-{uuid.uuid4().hex[:12]}"
    resp = httpx.post(
        f"{tenant.gateway}/api/v1/auth/login",
        json={"tenantId": other, "userId": "carol", "password": PASSWORD},
        timeout=10,
    )
    assert (resp.status_code, _code(resp)) == (401, "invalid_credentials")
    assert _login(tenant, "carol").status_code == 200


def test_failed_logins_are_limited_per_account(tenant: Tenant) -> None:
    create_account(tenant.settings, tenant.tenant_id, "dave", "occupant", [tenant.building_id])
    create_account(tenant.settings, tenant.tenant_id, "erin", "occupant", [tenant.building_id])
    for _ in range(ACCOUNT_LIMIT):
        assert _login(tenant, "dave", "not the password!").status_code == 401
    locked = _login(tenant, "dave")
    assert (locked.status_code, _code(locked)) == (429, "too_many_attempts")
    assert 0 < int(locked.headers["retry-after"]) <= 900
    # The limit is the account's: another account from the same source still logs in.
    assert _login(tenant, "erin").status_code == 200


def test_privileged_roles_need_a_totp_code_that_works_once(tenant: Tenant) -> None:
    fm = create_account(tenant.settings, tenant.tenant_id, "fran", "fm", [tenant.building_id])
    assert fm.totp_secret is not None
    missing = _login(tenant, "fran")
    assert (missing.status_code, _code(missing)) == (401, "totp_required")
    code = totp.code_at(fm.totp_secret, datetime.now(UTC))
    first = _login(tenant, "fran", totp=code)
    assert first.status_code == 200, first.text
    replayed = _login(tenant, "fran", totp=code)
    assert (replayed.status_code, _code(replayed)) == (401, "invalid_totp")
    assert _audit(tenant, "totp_failed") != []


def test_refresh_rotates_and_a_retry_gets_the_same_successor(tenant: Tenant) -> None:
    create_account(tenant.settings, tenant.tenant_id, "gina", "occupant", [tenant.building_id])
    first = _login(tenant, "gina").json()
    rotated = _refresh(tenant, first["refreshToken"])
    assert rotated.status_code == 200, rotated.text
    successor = rotated.json()["refreshToken"]
    assert successor != first["refreshToken"]
    # The app lost the answer and retries at once: the same successor, no revocation.
    retry = _refresh(tenant, first["refreshToken"])
    assert retry.status_code == 200 and retry.json()["refreshToken"] == successor
    assert _vote(tenant, retry.json()["accessToken"]).status_code == 200
    nxt = _refresh(tenant, successor)
    assert nxt.status_code == 200


def test_logout_ends_the_login(tenant: Tenant) -> None:
    create_account(tenant.settings, tenant.tenant_id, "hank", "occupant", [tenant.building_id])
    tokens = _login(tenant, "hank").json()
    out = httpx.post(
        f"{tenant.gateway}/api/v1/auth/logout",
        json={"refreshToken": tokens["refreshToken"]},
        timeout=10,
    )
    assert out.status_code == 204
    after = _refresh(tenant, tokens["refreshToken"])
    assert (after.status_code, _code(after)) == (401, "refresh_revoked")


def test_a_sensor_gets_a_scoped_token_by_client_credentials_only(tenant: Tenant) -> None:
    create_account(tenant.settings, tenant.tenant_id, "sensor-7", "sensor", [tenant.building_id])
    url = f"{tenant.gateway}/api/v1/auth/token"
    ok = httpx.post(
        url,
        json={"tenantId": tenant.tenant_id, "clientId": "sensor-7", "clientSecret": PASSWORD},
        timeout=10,
    )
    assert ok.status_code == 200, ok.text
    assert "refreshToken" not in ok.json()
    # A sensor token may not vote (RBAC), and a sensor cannot open a session by login.
    voted = _vote(tenant, ok.json()["accessToken"])
    assert (voted.status_code, _code(voted)) == (403, "forbidden_action")
    as_login = _login(tenant, "sensor-7")
    assert (as_login.status_code, _code(as_login)) == (401, "invalid_credentials")
    wrong = httpx.post(
        url,
        json={"tenantId": tenant.tenant_id, "clientId": "sensor-7", "clientSecret": "x" * 20},
        timeout=10,
    )
    assert (wrong.status_code, _code(wrong)) == (401, "invalid_credentials")


async def test_an_sse_ticket_opens_one_stream_once(tenant: Tenant) -> None:
    stream = f"{tenant.gateway}/api/v1/buildings/{tenant.building_id}/stream"
    async with httpx.AsyncClient(timeout=10) as client:
        issued = await client.post(
            f"{tenant.gateway}/api/v1/auth/sse-ticket", headers=tenant.headers("fm", "fm-1")
        )
        assert issued.status_code == 200 and issued.json()["expiresIn"] == 30
        ticket = issued.json()["ticket"]
        async with client.stream("GET", stream, params={"ticket": ticket}) as first:
            assert first.status_code == 200
            assert first.headers["content-type"].startswith("text/event-stream")
        again = await client.get(stream, params={"ticket": ticket})
        assert (again.status_code, again.json()["error"]["code"]) == (401, "invalid_ticket")
        forged = await client.get(stream, params={"ticket": ticket[:-4] + "AAAA"})
        assert (forged.status_code, forged.json()["error"]["code"]) == (401, "invalid_ticket")
        # An occupant may not watch a building, so it gets no ticket either.
        denied = await client.post(
            f"{tenant.gateway}/api/v1/auth/sse-ticket", headers=tenant.headers("occupant")
        )
        assert (denied.status_code, denied.json()["error"]["code"]) == (403, "forbidden_action")


class _Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


async def test_refresh_reuse_after_the_grace_revokes_the_whole_family(tenant: Tenant) -> None:
    """The service in-process with a clock the test moves, on the real PostgreSQL and
    Redis: waiting 30 s of wall time in CI would prove nothing more."""
    settings = tenant.settings
    await asyncio.to_thread(
        create_account, settings, tenant.tenant_id, "ivan", "occupant", [tenant.building_id]
    )
    clock = _Clock()
    db = ReconnectingConnection(settings.pg_dsn("gateway"))
    redis = connect(settings.redis_url_for("gateway"))
    service = AuthService(
        db,
        KeySet.load_or_create(settings.keys_dir),
        LocalKeyring.load_or_create(settings.keys_dir),
        RedisLoginThrottle(redis),
        TokenSettings(settings.jwt_issuer, settings.jwt_audience, 900),
        clock=clock,
    )
    try:
        first = await service.login(tenant.tenant_id, "ivan", PASSWORD, None, "test")
        assert first.refresh_token is not None
        second = await service.refresh(first.refresh_token, "test")
        clock.now += timedelta(seconds=31)
        with pytest.raises(AuthError) as reused:
            await service.refresh(first.refresh_token, "attacker")
        assert (reused.value.status, reused.value.code) == (401, "refresh_reused")
        # The whole family is gone: the legitimate holder's successor is refused too.
        with pytest.raises(AuthError) as revoked:
            await service.refresh(second.refresh_token, "test")
        assert revoked.value.code == "refresh_revoked"
        rows = await asyncio.to_thread(_audit, tenant, "refresh_reuse")
        assert rows == [("ivan", rows[0][1])] and rows[0][1]
        # Positive control: a fresh login works.
        assert (await service.login(tenant.tenant_id, "ivan", PASSWORD, None, "t")).refresh_token
    finally:
        await db.close()
        await redis.aclose()


def test_a_token_valid_for_longer_than_15_minutes_is_refused(tenant: Tenant) -> None:
    import jwt as pyjwt

    keyset = KeySet.load_or_create(tenant.settings.keys_dir)
    issued = int(datetime.now(UTC).timestamp())
    claims = {
        "iss": tenant.settings.jwt_issuer,
        "aud": tenant.settings.jwt_audience,
        "sub": "occupant-1",
        "userId": "occupant-1",
        "tenantId": tenant.tenant_id,
        "role": "occupant",
        "buildingIds": [tenant.building_id],
        "iat": issued,
        "nbf": issued,
        "jti": "j",
        "sid": "s",
    }
    key = keyset.signing_key

    def token(lifetime_s: int) -> str:
        return pyjwt.encode(
            {**claims, "exp": issued + lifetime_s},
            key.private_key,
            algorithm="EdDSA",
            headers={"typ": "at+jwt", "kid": key.kid},
        )

    assert _vote(tenant, token(900)).status_code == 200
    far = _vote(tenant, token(8000 * 365 * 86400 // 1000))
    assert (far.status_code, _code(far)) == (401, "lifetime_too_long")


def test_the_purge_removes_expired_logins_of_every_tenant_and_nothing_live(
    tenant: Tenant,
) -> None:
    other = f"t-{uuid.uuid4().hex[:12]}"
    rows = {
        # family: (expires in, revoked ago)
        "expired": ("-1 hour", None),
        "revoked-long-ago": ("1 day", "2 days"),
        "revoked-just-now": ("1 day", "1 minute"),
        "live": ("1 day", None),
    }
    with psycopg.connect(tenant.settings.pg_dsn("app")) as conn:
        for tenant_id in (tenant.tenant_id, other):
            with conn.transaction():
                conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_id,))
                for family, (expires, revoked) in rows.items():
                    conn.execute(
                        "INSERT INTO sbp.refresh_families"
                        " (tenant_id, family_id, user_id, expires_at, revoked_at)"
                        " VALUES (%s, %s, 'u', now() + %s::interval,"
                        " now() - %s::interval)",
                        (tenant_id, family, expires, revoked),
                    )
                    conn.execute(
                        "INSERT INTO sbp.refresh_tokens (tenant_id, token_hash, family_id,"
                        " user_id, issued_at, expires_at)"
                        " VALUES (%s, %s, %s, 'u', now(), now() + %s::interval)",
                        (tenant_id, family.encode(), family, expires),
                    )
        conn.execute("SELECT sbp.purge_expired_auth()")
        conn.commit()
        for tenant_id in (tenant.tenant_id, other):
            with conn.transaction():
                conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_id,))
                families = conn.execute(
                    "SELECT family_id FROM sbp.refresh_families ORDER BY 1"
                ).fetchall()
                tokens = conn.execute(
                    "SELECT family_id FROM sbp.refresh_tokens ORDER BY 1"
                ).fetchall()
            assert families == [("live",), ("revoked-just-now",)]
            assert tokens == families
