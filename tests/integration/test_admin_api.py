"""The tenant service through the gateway (`/api/v1/admin/*`), on the running stack:
tenants for platform admins, buildings, floors, zones, users and settings for tenant
admins; every change reaches the gateways through the outbox and config.* topics."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import httpx
import psycopg

from identity import totp
from sbp.settings import Settings
from streams.topics import CONFIG_ZONES
from tests.integration.accounts import PASSWORD
from tests.integration.admin_calls import ADMIN, Caller, fresh_tenant, token, vote_status
from tests.integration.conftest import Tenant
from tests.integration.observe import decode, end_offsets, read_new_records, wait_for
from tests.integration.votes import vote


def _code(resp: httpx.Response) -> tuple[int, str]:
    try:
        return resp.status_code, resp.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return resp.status_code, "-"


def test_platform_admins_create_tenants_and_no_one_else_does(stack: Settings) -> None:
    tenant_id = f"t-{uuid.uuid4().hex[:12]}"
    body = {"tenantId": tenant_id, "name": "Acme Corp"}
    for role in ("occupant", "fm", "tenant_admin", "operator"):
        refused = Caller(stack, token(stack, tenant_id, role))("POST", f"{ADMIN}/tenants", body)
        assert _code(refused) == (403, "forbidden_action"), role
    platform = Caller(stack, token(stack, "platform", "platform_admin"))
    assert platform("POST", f"{ADMIN}/tenants", body).status_code == 201
    assert _code(platform("POST", f"{ADMIN}/tenants", body)) == (409, "already_exists")
    got = platform("GET", f"{ADMIN}/tenants/{tenant_id}")
    assert got.status_code == 200 and got.json()["name"] == "Acme Corp"
    assert _code(platform("GET", f"{ADMIN}/tenants/t-none")) == (404, "unknown_tenant")
    assert _code(platform("POST", f"{ADMIN}/tenants", {"tenantId": "a b", "name": "x"})) == (
        422,
        "invalid_id",
    )
    unauthenticated = httpx.post(
        f"http://{stack.host}:{stack.gateway_port}{ADMIN}/tenants", json=body, timeout=10
    )
    assert _code(unauthenticated) == (401, "missing_token")


def test_a_zone_created_through_the_api_takes_votes_and_stops_when_deleted(
    stack: Settings,
) -> None:
    tenant_id, admin = fresh_tenant(stack)
    assert (
        admin("POST", f"{ADMIN}/buildings", {"buildingId": "hq", "name": "HQ"}).status_code == 201
    )
    floor = admin("POST", f"{ADMIN}/buildings/hq/floors", {"floorId": "f3", "name": "Third"})
    assert floor.status_code == 201
    start = time.monotonic()
    zone = admin(
        "POST", f"{ADMIN}/buildings/hq/zones", {"zoneId": "east", "floorId": "f3", "name": "East"}
    )
    assert zone.status_code == 201, zone.text
    wait_for(
        lambda: vote_status(stack, tenant_id, "hq", "east") == "accepted",
        5,
        "the new zone taking votes",
    )
    took = time.monotonic() - start
    listed = admin("GET", f"{ADMIN}/buildings/hq/zones").json()["zones"]
    assert listed == [{"floorId": "f3", "zoneId": "east", "name": "East"}]

    assert admin("DELETE", f"{ADMIN}/buildings/hq/zones/east").status_code == 204
    wait_for(
        lambda: vote_status(stack, tenant_id, "hq", "east") == "unknown_zone",
        5,
        "the deleted zone refusing votes",
    )
    assert _code(admin("DELETE", f"{ADMIN}/buildings/hq/zones/east")) == (404, "unknown_zone")
    print(f"\nzone created → first accepted vote: {took:.2f} s")


def test_changes_reach_the_config_topic_through_the_outbox(stack: Settings) -> None:
    tenant_id, admin = fresh_tenant(stack)
    since = end_offsets(stack, CONFIG_ZONES.name)
    admin("POST", f"{ADMIN}/buildings", {"buildingId": "b1", "name": "B1"})
    admin("POST", f"{ADMIN}/buildings/b1/floors", {"floorId": "f1", "name": "F1"})
    admin("POST", f"{ADMIN}/buildings/b1/zones", {"zoneId": "z9", "floorId": "f1", "name": "Z9"})
    admin("DELETE", f"{ADMIN}/buildings/b1")  # the building, its floors and its zone
    key = f"{tenant_id}|b1|z9".encode()
    records = read_new_records(
        stack,
        CONFIG_ZONES.name,
        since,
        lambda rs: sum(r.key() == key for r in rs) >= 2,
        timeout=20,
    )
    mine = [r for r in records if r.key() == key]
    assert decode(stack, mine[0].value()) == {
        "tenantId": tenant_id,
        "buildingId": "b1",
        "floorId": "f1",
        "zoneId": "z9",
        "name": "Z9",
    }
    assert mine[1].value() is None  # the tombstone of the deleted zone
    # The relay removed what it published; the services cannot read the outbox at all.
    with psycopg.connect(stack.pg_dsn("owner")) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, false)", (tenant_id,))
        left = conn.execute("SELECT count(*) FROM sbp.outbox").fetchone()
    assert left == (0,)


def test_bad_bodies_get_a_code_and_change_nothing(stack: Settings) -> None:
    _tenant_id, admin = fresh_tenant(stack)
    admin("POST", f"{ADMIN}/buildings", {"buildingId": "hq", "name": "HQ"})
    cases = [
        ("POST", f"{ADMIN}/buildings", {"buildingId": "hq/x", "name": "n"}, (422, "invalid_id")),
        (
            "POST",
            f"{ADMIN}/buildings",
            {"buildingId": "b2", "name": "a\u202eb"},
            (422, "invalid_name"),
        ),
        ("POST", f"{ADMIN}/buildings", {"buildingId": "b2", "name": ""}, (422, "invalid_name")),
        (
            "POST",
            f"{ADMIN}/buildings",
            {"buildingId": "hq", "name": "again"},
            (409, "already_exists"),
        ),
        ("POST", f"{ADMIN}/buildings", [1, 2], (422, "invalid_request")),
        (
            "POST",
            f"{ADMIN}/buildings/nope/floors",
            {"floorId": "f1", "name": "F"},
            (404, "unknown_building"),
        ),
        (
            "POST",
            f"{ADMIN}/buildings/hq/zones",
            {"zoneId": "z1", "floorId": "missing", "name": "Z"},
            (422, "unknown_floor"),
        ),
        ("DELETE", f"{ADMIN}/buildings/nope", None, (404, "unknown_building")),
    ]
    for method, path, body, expected in cases:
        assert _code(admin(method, path, body)) == expected, (path, body)
    malformed = admin("POST", f"{ADMIN}/buildings", content=b'{"buildingId": ')
    assert _code(malformed) == (400, "malformed_json")
    assert [b["buildingId"] for b in admin("GET", f"{ADMIN}/buildings").json()["buildings"]] == [
        "hq"
    ]


def test_tenant_admins_create_users_who_then_log_in(stack: Settings) -> None:
    tenant_id, admin = fresh_tenant(stack)
    admin("POST", f"{ADMIN}/buildings", {"buildingId": "hq", "name": "HQ"})
    occupant = admin(
        "POST",
        f"{ADMIN}/users",
        {
            "userId": "olga",
            "role": "occupant",
            "buildingIds": ["hq"],
            "password": PASSWORD,
            "email": "olga@example.com",
            "displayName": "Olga",
        },
    )
    assert occupant.status_code == 201, occupant.text
    assert "totpSecret" not in occupant.json()
    fm = admin(
        "POST",
        f"{ADMIN}/users",
        {"userId": "fay", "role": "fm", "buildingIds": ["hq"], "password": PASSWORD},
    )
    assert fm.status_code == 201 and fm.json()["totpSecret"]
    refusals = [
        ({"userId": "olga", "role": "occupant", "password": PASSWORD}, (409, "user_exists")),
        ({"userId": "u2", "role": "platform_admin", "password": PASSWORD}, (422, "invalid_role")),
        (
            {"userId": "u3", "role": "occupant", "buildingIds": ["b9"], "password": PASSWORD},
            (422, "unknown_building"),
        ),
        ({"userId": "u4", "role": "occupant", "password": "short"}, (422, "weak_password")),
    ]
    for body, expected in refusals:
        assert _code(admin("POST", f"{ADMIN}/users", body)) == expected, body
    login = f"http://{stack.host}:{stack.gateway_port}/api/v1/auth/login"
    ok = httpx.post(login, json={"tenantId": tenant_id, "userId": "olga", "password": PASSWORD})
    assert ok.status_code == 200
    code = totp.code_at(fm.json()["totpSecret"], datetime.now(UTC))
    fm_login = httpx.post(
        login, json={"tenantId": tenant_id, "userId": "fay", "password": PASSWORD, "totp": code}
    )
    assert fm_login.status_code == 200, fm_login.text
    # The personal fields are stored sealed, never in clear.
    with psycopg.connect(stack.pg_dsn("app")) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_id,))
        row = conn.execute(
            "SELECT email_cipher, display_name_cipher FROM sbp.users WHERE user_id = 'olga'"
        ).fetchone()
    assert row is not None and b"olga@example.com" not in bytes(row[0])
    assert b"Olga" not in bytes(row[1])


def test_a_tenant_admin_reaches_only_its_own_tenant(stack: Settings, tenant: Tenant) -> None:
    _other_id, other_admin = fresh_tenant(stack)
    # The victim tenant (the fixture's) has building b1 with zone z1.
    assert _code(other_admin("DELETE", f"{ADMIN}/buildings/b1/zones/z1")) == (404, "unknown_zone")
    assert _code(other_admin("GET", f"{ADMIN}/buildings/b1/zones")) == (404, "unknown_building")
    assert vote_status(stack, tenant.tenant_id, "b1", "z1") == "accepted"


def test_tenant_settings_are_versioned_validated_and_applied_by_the_gateway(
    stack: Settings,
) -> None:
    tenant_id, admin = fresh_tenant(stack)
    admin("POST", f"{ADMIN}/buildings", {"buildingId": "hq", "name": "HQ"})
    admin("POST", f"{ADMIN}/buildings/hq/floors", {"floorId": "f1", "name": "F1"})
    admin("POST", f"{ADMIN}/buildings/hq/zones", {"zoneId": "z1", "floorId": "f1", "name": "Z1"})
    current = admin("GET", f"{ADMIN}/settings").json()
    assert current["version"] == 1 and current["settings"]["lateAfterS"] == 900
    occupant = token(stack, tenant_id, "occupant", ["hq"])
    url = f"http://{stack.host}:{stack.gateway_port}/api/v1/votes/batch"

    def five_minutes_old() -> str:
        resp = httpx.post(
            url,
            json={"items": [vote("z1", 1, building="hq", minutes_ago=5)]},
            headers={"Authorization": f"Bearer {occupant}"},
            timeout=10,
        )
        status: str = resp.json()["results"][0]["status"]
        return status

    wait_for(lambda: five_minutes_old() == "accepted", 5, "the zone taking votes")
    changed = dict(current["settings"], lateAfterS=60)
    assert _code(admin("PUT", f"{ADMIN}/settings", {"version": 0, "settings": changed})) == (
        409,
        "version_conflict",
    )
    bad = dict(changed, tooOldS=30 * 86400)
    assert _code(admin("PUT", f"{ADMIN}/settings", {"version": 1, "settings": bad})) == (
        422,
        "invalid_settings",
    )
    put = admin("PUT", f"{ADMIN}/settings", {"version": 1, "settings": changed})
    assert put.status_code == 200 and put.json()["version"] == 2
    wait_for(lambda: five_minutes_old() == "late_submission", 5, "the tenant's late_after")
