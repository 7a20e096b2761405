"""The cross-tenant pen suite: each attempt asserts its exact status and code, and
each has a positive control (the rightful call succeeds), so a broken route cannot
pass as "denied". The suite prints its table of attempt / expected / actual.

Two tenants, A (the attacker's own) and B (the victim), each with building b1 and
zones z1..z4; the attacker holds rightful credentials of A only.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from psycopg import sql

from devstack.seed import seed_zones
from identity import totp
from identity.dev_cli import mint_dev_token
from identity.signing_keys import KeySet
from identity.tokens import mint_access_token
from sbp.settings import Settings
from tests.integration.accounts import PASSWORD, create_account
from tests.integration.conftest import Tenant
from tests.integration.observe import wait_for
from tests.integration.votes import vote


@dataclass
class Attempt:
    name: str
    expected: tuple[int, str]
    actual: tuple[int, str]
    control: tuple[int, str]
    control_expected: int


RESULTS: list[Attempt] = []


def _outcome(resp: httpx.Response) -> tuple[int, str]:
    try:
        code = resp.json().get("error", {}).get("code", "-")
    except ValueError:
        code = "-"
    return resp.status_code, code


def attempt(
    name: str,
    expected: tuple[int, str],
    call: Callable[[], tuple[int, str]],
    control: Callable[[], tuple[int, str]],
    control_expected: int = 200,
) -> None:
    actual, ok = call(), control()
    RESULTS.append(Attempt(name, expected, actual, ok, control_expected))
    assert actual == expected, f"{name}: expected {expected}, got {actual}"
    assert ok[0] == control_expected, f"{name}: positive control got {ok}"


@pytest.fixture
def victim(stack: Settings) -> Tenant:
    tenant_id = f"t-{uuid.uuid4().hex[:12]}"
    zones = ("z1", "z2", "z3", "z4")
    seed_zones(stack, tenant_id, "b1", [("f1", z, f"zone {z}") for z in zones])
    return Tenant(stack, tenant_id, "b1", zones)


def _post_votes(gateway: str, token: str, building: str, zone: str = "z1") -> httpx.Response:
    return httpx.post(
        f"{gateway}/api/v1/votes/batch",
        json={"items": [vote(zone, 1, building=building)]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


def _until_the_gateway_knows(tenant: Tenant, building: str) -> None:
    """A new building reaches the gateway through the outbox and config.zones, within
    seconds; wait until a token scoped to it votes there, so an attempt's refusal is
    about scoping and never about that lag."""
    scoped = mint_dev_token(tenant.settings, tenant.tenant_id, "occupant-9", "occupant", [building])
    wait_for(
        lambda: _first_result(_post_votes(tenant.gateway, scoped, building)) == (200, "accepted"),
        30,
        f"the gateway to know building {building} of {tenant.tenant_id}",
    )


def _first_result(resp: httpx.Response) -> tuple[int, str]:
    if resp.status_code != 200:
        return _outcome(resp)
    result = resp.json()["results"][0]
    return 200, result.get("error", {}).get("code", result["status"])


def _stream(
    gateway: str, building: str, *, token: str | None = None, **params: str
) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.stream(
        "GET",
        f"{gateway}/api/v1/buildings/{building}/stream",
        headers=headers,
        params=params,
        timeout=10,
    ) as resp:
        if resp.status_code == 200:
            return 200, "stream"
        resp.read()
        return _outcome(resp)


def _forged_token(tenant: Tenant) -> str:
    """Right claims, right kid, signed by a key the platform never had."""
    kid = KeySet.load_or_create(tenant.settings.keys_dir).signing_key.kid
    now = int(datetime.now(UTC).timestamp())
    claims = {
        "iss": tenant.settings.jwt_issuer,
        "aud": tenant.settings.jwt_audience,
        "sub": "occupant-1",
        "userId": "occupant-1",
        "tenantId": tenant.tenant_id,
        "role": "occupant",
        "buildingIds": [tenant.building_id],
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": "j",
        "sid": "s",
    }
    return jwt.encode(
        claims,
        Ed25519PrivateKey.generate(),
        algorithm="EdDSA",
        headers={"typ": "at+jwt", "kid": kid},
    )


def test_cross_tenant_pen_suite(
    tenant: Tenant, victim: Tenant, capsys: pytest.CaptureFixture[str]
) -> None:
    gw = tenant.gateway
    own = tenant.token()
    fm_own = tenant.token("fm", "fm-1")

    # --- votes and SSE across tenants and buildings -------------------------------
    # Tenant B's building b1 has the same id as A's b1: only the token's tenant counts,
    # so A's vote lands in A. An unscoped building of A's own tenant is 403 per item.
    seed_zones(tenant.settings, tenant.tenant_id, "b2", [("f1", "z1", "other building")])
    _until_the_gateway_knows(tenant, "b2")
    attempt(
        "vote into own tenant's building outside buildingIds",
        (200, "forbidden_building"),
        lambda: _first_result(_post_votes(gw, own, "b2")),
        lambda: _first_result(_post_votes(gw, own, tenant.building_id)),
    )
    seed_zones(victim.settings, victim.tenant_id, "b7", [("f1", "z1", "victim only")])
    _until_the_gateway_knows(victim, "b7")
    attempt(
        "vote into a building that exists only in another tenant",
        (200, "unknown_zone"),
        lambda: _first_result(_post_votes(gw, own, "b7")),
        lambda: _first_result(_post_votes(gw, own, tenant.building_id)),
    )
    attempt(
        "stream a building that exists only in another tenant",
        (404, "unknown_building"),
        lambda: _stream(gw, "b7", token=fm_own),
        lambda: _stream(gw, tenant.building_id, token=fm_own),
    )
    attempt(
        "stream own tenant's building outside buildingIds",
        (403, "forbidden_building"),
        lambda: _stream(gw, "b2", token=fm_own),
        lambda: _stream(gw, tenant.building_id, token=fm_own),
    )

    # --- tokens ---------------------------------------------------------------------
    attempt(
        "forged token (unknown signing key, real kid)",
        (401, "bad_signature"),
        lambda: _outcome(_post_votes(gw, _forged_token(tenant), tenant.building_id)),
        lambda: _outcome(_post_votes(gw, own, tenant.building_id)),
    )
    attempt(
        "expired token (genuinely signed, expired 5 minutes ago)",
        (401, "expired"),
        lambda: _outcome(_post_votes(gw, _issued_ago(tenant, 20), tenant.building_id)),
        lambda: _outcome(_post_votes(gw, own, tenant.building_id)),
    )
    attempt(
        "over-long token (8 KiB + 1)",
        (401, "malformed_token"),
        lambda: _outcome(_post_votes(gw, "e" * (8 * 1024 + 1), tenant.building_id)),
        lambda: _outcome(_post_votes(gw, own, tenant.building_id)),
    )

    # --- accounts, refresh, TOTP, tickets -------------------------------------------
    create_account(tenant.settings, tenant.tenant_id, "pen-user", "occupant", [tenant.building_id])
    create_account(victim.settings, victim.tenant_id, "victim", "occupant", [victim.building_id])
    login = f"{gw}/api/v1/auth/login"
    attempt(
        "log in to another tenant's account with a tenant id swapped",
        (401, "invalid_credentials"),
        lambda: _outcome(
            httpx.post(
                login,
                json={"tenantId": tenant.tenant_id, "userId": "victim", "password": PASSWORD},
                timeout=10,
            )
        ),
        lambda: _outcome(
            httpx.post(
                login,
                json={"tenantId": tenant.tenant_id, "userId": "pen-user", "password": PASSWORD},
                timeout=10,
            )
        ),
    )
    session = httpx.post(
        login,
        json={"tenantId": tenant.tenant_id, "userId": "pen-user", "password": PASSWORD},
        timeout=10,
    ).json()
    attempt(
        "a refresh token used as an access token",
        (401, "malformed_token"),
        lambda: _outcome(_post_votes(gw, session["refreshToken"], tenant.building_id)),
        lambda: _outcome(_post_votes(gw, session["accessToken"], tenant.building_id)),
    )
    victim_tokens = httpx.post(
        login,
        json={"tenantId": victim.tenant_id, "userId": "victim", "password": PASSWORD},
        timeout=10,
    ).json()
    forged_refresh = victim_tokens["refreshToken"].replace(victim.tenant_id, tenant.tenant_id)
    refresh = f"{gw}/api/v1/auth/refresh"
    attempt(
        "another tenant's refresh token re-labelled with one's own tenant",
        (401, "invalid_refresh_token"),
        lambda: _outcome(httpx.post(refresh, json={"refreshToken": forged_refresh}, timeout=10)),
        lambda: _outcome(
            httpx.post(refresh, json={"refreshToken": session["refreshToken"]}, timeout=10)
        ),
    )
    fm = create_account(tenant.settings, tenant.tenant_id, "pen-fm", "fm", [tenant.building_id])
    assert fm.totp_secret is not None
    code = totp.code_at(fm.totp_secret, datetime.now(UTC))
    fm_login = {
        "tenantId": tenant.tenant_id,
        "userId": "pen-fm",
        "password": PASSWORD,
        "totp": code,
    }
    first = _outcome(httpx.post(login, json=fm_login, timeout=10))
    attempt(
        "a replayed TOTP code",
        (401, "invalid_totp"),
        lambda: _outcome(httpx.post(login, json=fm_login, timeout=10)),
        lambda: first,
    )
    tickets = f"{gw}/api/v1/auth/sse-ticket"

    def new_ticket(token: str) -> str:
        ticket: str = httpx.post(
            tickets, headers={"Authorization": f"Bearer {token}"}, timeout=10
        ).json()["ticket"]
        return ticket

    used = new_ticket(fm_own)
    assert _stream(gw, tenant.building_id, ticket=used)[0] == 200
    attempt(
        "a reused SSE ticket",
        (401, "invalid_ticket"),
        lambda: _stream(gw, tenant.building_id, ticket=used),
        lambda: _stream(gw, tenant.building_id, ticket=new_ticket(fm_own)),
    )
    victim_fm = victim.token("fm", "fm-9")
    attempt(
        "an SSE ticket on a building outside its holder's buildingIds",
        (403, "forbidden_building"),
        lambda: _stream(gw, "b7", ticket=new_ticket(victim_fm)),
        lambda: _stream(gw, victim.building_id, ticket=new_ticket(victim_fm)),
    )
    relabelled = new_ticket(victim_fm).replace(victim.tenant_id, tenant.tenant_id)
    attempt(
        "another tenant's SSE ticket re-labelled with one's own tenant",
        (401, "invalid_ticket"),
        lambda: _stream(gw, tenant.building_id, ticket=relabelled),
        lambda: _stream(gw, tenant.building_id, ticket=new_ticket(fm_own)),
    )

    # --- PostgreSQL as the service role -------------------------------------------------
    attempt(
        "PostgreSQL as the gateway: read accounts with app.tenant_id unset",
        (0, "rows"),
        lambda: (_count_users(tenant.settings, None), "rows"),
        lambda: (200 if _count_users(tenant.settings, tenant.tenant_id) >= 2 else 500, "rows"),
    )
    attempt(
        "PostgreSQL as the gateway: read accounts under another tenant's app.tenant_id",
        (0, "rows"),
        lambda: (_count_users(tenant.settings, victim.tenant_id, of=tenant.tenant_id), "rows"),
        lambda: (200 if _count_users(tenant.settings, tenant.tenant_id) >= 2 else 500, "rows"),
    )
    attempt(
        "PostgreSQL as the gateway: erase the auth audit",
        (403, "InsufficientPrivilege"),
        lambda: _delete_audit(tenant.settings, tenant.tenant_id),
        lambda: (200 if _audit_rows(tenant.settings, tenant.tenant_id) > 0 else 500, "rows"),
    )

    attempt(
        "PostgreSQL as the sink: read a tenant's votes in its schema",
        (403, "InsufficientPrivilege"),
        lambda: _as_sink(tenant.settings, victim.tenant_id, "SELECT count(*) FROM {}"),
        lambda: _sink_insert(tenant.settings, victim.tenant_id, victim.tenant_id),
    )
    attempt(
        "PostgreSQL as the sink: a tenant's vote into another tenant's schema",
        (422, "CheckViolation"),
        lambda: _sink_insert(tenant.settings, victim.tenant_id, tenant.tenant_id),
        lambda: _sink_insert(tenant.settings, tenant.tenant_id, tenant.tenant_id),
    )

    # --- the worker's port ------------------------------------------------------------
    worker = f"http://{tenant.settings.host}:{tenant.settings.worker_port(1)}"
    attempt(
        "worker port: faust's table browser",
        (404, "-"),
        lambda: _outcome(httpx.get(f"{worker}/table/", timeout=5)),
        lambda: _outcome(httpx.get(f"{worker}/ready", timeout=5)),
    )
    attempt(
        "worker port: reachable from a non-loopback address",
        (0, "refused"),
        lambda: _connect_elsewhere(tenant.settings.worker_port(1)),
        lambda: _outcome(httpx.get(f"{worker}/stats", timeout=5)),
    )

    with capsys.disabled():
        print("\n\npen suite: attempt | expected | actual | positive control")
        for r in RESULTS:
            print(f"  {r.name} | {r.expected} | {r.actual} | {r.control}")


def _issued_ago(tenant: Tenant, minutes: int) -> str:
    return mint_access_token(
        KeySet.load_or_create(tenant.settings.keys_dir),
        tenant_id=tenant.tenant_id,
        user_id="occupant-1",
        role="occupant",
        building_ids=[tenant.building_id],
        issuer=tenant.settings.jwt_issuer,
        audience=tenant.settings.jwt_audience,
        ttl_s=900,
        now=datetime.now(UTC) - timedelta(minutes=minutes),
    )


def _count_users(settings: Settings, scope: str | None, of: str | None = None) -> int:
    with psycopg.connect(settings.pg_dsn("gateway")) as conn, conn.transaction():
        if scope is not None:
            conn.execute("SELECT set_config('app.tenant_id', %s, true)", (scope,))
        if of is None:
            row = conn.execute("SELECT count(*) FROM sbp.users").fetchone()
        else:
            row = conn.execute(
                "SELECT count(*) FROM sbp.users WHERE tenant_id = %s", (of,)
            ).fetchone()
        return int(row[0]) if row else -1


def _audit_rows(settings: Settings, tenant_id: str) -> int:
    with psycopg.connect(settings.pg_dsn("gateway")) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_id,))
        row = conn.execute("SELECT count(*) FROM sbp.auth_audit").fetchone()
        return int(row[0]) if row else -1


def _delete_audit(settings: Settings, tenant_id: str) -> tuple[int, str]:
    try:
        with psycopg.connect(settings.pg_dsn("gateway")) as conn, conn.transaction():
            conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_id,))
            conn.execute("DELETE FROM sbp.auth_audit")
    except psycopg.errors.InsufficientPrivilege:
        return 403, "InsufficientPrivilege"
    return 200, "deleted"


def _as_sink(
    settings: Settings, schema_of: str, statement: str, params: tuple[object, ...] = ()
) -> tuple[int, str]:
    """Run `statement` on `schema_of`'s votes table as the sink's role, under the setting
    of the tenant in `params` (else `schema_of`), and roll it back."""
    scope = str(params[0]) if params else schema_of
    with psycopg.connect(settings.pg_dsn("sink")) as conn:
        try:
            with conn.transaction(force_rollback=True):
                conn.execute("SELECT set_config('app.tenant_id', %s, true)", (scope,))
                row = conn.execute("SELECT sbp.tenant_schema(%s)", (schema_of,)).fetchone()
                assert row is not None and row[0] is not None, f"{schema_of} has no schema"
                table = sql.SQL("{}.votes").format(sql.Identifier(row[0]))
                conn.execute(sql.SQL(statement).format(table), params)
        except psycopg.errors.InsufficientPrivilege:
            return 403, "InsufficientPrivilege"
        except psycopg.errors.CheckViolation:
            return 422, "CheckViolation"
    return 200, "done"


def _sink_insert(settings: Settings, schema_of: str, row_tenant: str) -> tuple[int, str]:
    """A vote of `row_tenant`, under its own setting, into `schema_of`'s votes."""
    return _as_sink(
        settings,
        schema_of,
        "INSERT INTO {} (tenant_id, vote_uuid, building_id, zone_id, kind, value, user_ref,"
        " client_ts, received_at, late, schema_version)"
        " VALUES (%s, gen_random_uuid(), 'b1', 'z1', 'air', 1, 'u', now(), now(), false, 2)",
        (row_tenant,),
    )


def _connect_elsewhere(port: int) -> tuple[int, str]:
    """Connect to the port on this host's non-loopback address, if it has one."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # no packet is sent; picks the outward address
        address = probe.getsockname()[0]
    finally:
        probe.close()
    assert not address.startswith("127."), "this host has no non-loopback address to try"
    try:
        with socket.create_connection((address, port), timeout=2):
            return 200, "connected"
    except OSError:
        return 0, "refused"
