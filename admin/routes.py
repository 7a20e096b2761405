"""The admin API (brief §4): tenants for `platform_admin`; buildings, floors, zones,
users and settings of one's own tenant for `tenant_admin`.

Every route authorizes through the one RBAC SDK; the tenant always comes from the
token (a platform admin names the tenant it manages in the path). Each change and
its outbox row commit in one transaction. Errors use `{"error": {"code", "message"}}`:
401/403 from the token and role, 404 for a building or zone the tenant does not
have, 409 for an id already taken or a settings version that moved, 422 for an
invalid body.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from admin import store
from admin.tenant_settings import parse_settings
from admin.validation import id_list, name, optional_text, text_id
from gateway.batch_request import RequestRejected, parse_json_object
from gateway.http_errors import authenticate, error_response, read_capped
from gateway.responses import OrjsonResponse
from identity.account_store import Conn, tenant_scope
from identity.principal import Principal, Role, is_valid_id
from identity.provisioning import ProvisioningError, provision_account
from identity.rbac import Action

MAX_ADMIN_BODY_BYTES = 64 * 1024
# Roles a tenant admin may give; platform admins and operators are the platform's.
TENANT_ROLES = frozenset({Role.OCCUPANT, Role.FM, Role.TENANT_ADMIN, Role.SENSOR})


@asynccontextmanager
async def _tenant_tx(request: Request, tenant_id: str) -> AsyncIterator[Conn]:
    async with request.app.state.db.connection() as conn, conn.transaction():
        await tenant_scope(conn, tenant_id)
        yield conn


async def _body(request: Request) -> dict[str, object]:
    return parse_json_object(await read_capped(request, MAX_ADMIN_BODY_BYTES), MAX_ADMIN_BODY_BYTES)


Handler = Callable[[Request], Awaitable[Response]]


def _handled(handler: Handler) -> Handler:
    """Answer a RequestRejected raised anywhere in the handler with its error body."""

    async def route(request: Request) -> Response:
        try:
            response: Response = await handler(request)
        except RequestRejected as rejected:
            return error_response(rejected)
        return response

    route.__name__ = handler.__name__
    return route


_NOT_FOUND = {
    "tenant_id": ("unknown_tenant", "no such tenant"),
    "building_id": ("unknown_building", "no such building"),
    "zone_id": ("unknown_zone", "no such zone"),
}


def _path_id(request: Request, name: str) -> str:
    """A path id; one that is not even a valid id names nothing: 404, as for a missing one."""
    value = request.path_params[name]
    if not is_valid_id(value):
        code, message = _NOT_FOUND[name]
        raise RequestRejected(404, code, message)
    return str(value)


def _conflict(what: str) -> RequestRejected:
    return RequestRejected(409, "already_exists", f"{what} already exists")


def _tenant_admin(request: Request) -> Principal:
    return authenticate(request, Action.TENANT_ADMIN)


async def _require_building(conn: Conn, tenant_id: str, building_id: str) -> None:
    if not await store.building_exists(conn, tenant_id, building_id):
        raise RequestRejected(404, "unknown_building", "no such building")


# --- platform: tenants ------------------------------------------------------------


async def create_tenant(request: Request) -> Response:
    authenticate(request, Action.PLATFORM_ADMIN)
    body = await _body(request)
    tenant_id, tenant_name = text_id(body, "tenantId"), name(body)
    async with _tenant_tx(request, tenant_id) as conn:
        if not await store.create_tenant(conn, tenant_id, tenant_name):
            raise _conflict(f"tenant {tenant_id!r}")
        created = await store.get_tenant(conn, tenant_id)
    return OrjsonResponse(created, status_code=201)


async def get_tenant(request: Request) -> Response:
    authenticate(request, Action.PLATFORM_ADMIN)
    tenant_id = _path_id(request, "tenant_id")
    async with _tenant_tx(request, tenant_id) as conn:
        found = await store.get_tenant(conn, tenant_id)
    if found is None:
        raise RequestRejected(404, "unknown_tenant", "no such tenant")
    return OrjsonResponse(found)


async def create_tenant_admin(request: Request) -> Response:
    """A platform admin creates a tenant's first administrators."""
    authenticate(request, Action.PLATFORM_ADMIN)
    tenant_id = _path_id(request, "tenant_id")
    body = await _body(request)
    async with _tenant_tx(request, tenant_id) as conn:
        if await store.get_tenant(conn, tenant_id) is None:
            raise RequestRejected(404, "unknown_tenant", "no such tenant")
        return await _create_user(request, conn, tenant_id, body, forced_role=Role.TENANT_ADMIN)


# --- tenant: buildings, floors, zones -----------------------------------------------


async def create_building(request: Request) -> Response:
    principal = _tenant_admin(request)
    body = await _body(request)
    building_id, building_name = text_id(body, "buildingId"), name(body)
    async with _tenant_tx(request, principal.tenant_id) as conn:
        if not await store.create_building(conn, principal.tenant_id, building_id, building_name):
            raise _conflict(f"building {building_id!r}")
    return OrjsonResponse({"buildingId": building_id, "name": building_name}, status_code=201)


async def list_buildings(request: Request) -> Response:
    principal = _tenant_admin(request)
    async with _tenant_tx(request, principal.tenant_id) as conn:
        buildings = await store.list_buildings(conn, principal.tenant_id)
    return OrjsonResponse({"buildings": buildings})


async def delete_building(request: Request) -> Response:
    principal = _tenant_admin(request)
    building_id = _path_id(request, "building_id")
    async with _tenant_tx(request, principal.tenant_id) as conn:
        if not await store.delete_building(conn, principal.tenant_id, building_id):
            raise RequestRejected(404, "unknown_building", "no such building")
    return Response(status_code=204)


async def create_floor(request: Request) -> Response:
    principal = _tenant_admin(request)
    building_id = _path_id(request, "building_id")
    body = await _body(request)
    floor_id, floor_name = text_id(body, "floorId"), name(body)
    async with _tenant_tx(request, principal.tenant_id) as conn:
        await _require_building(conn, principal.tenant_id, building_id)
        if not await store.create_floor(
            conn, principal.tenant_id, building_id, floor_id, floor_name
        ):
            raise _conflict(f"floor {floor_id!r}")
    return OrjsonResponse({"floorId": floor_id, "name": floor_name}, status_code=201)


async def create_zone(request: Request) -> Response:
    principal = _tenant_admin(request)
    building_id = _path_id(request, "building_id")
    body = await _body(request)
    zone_id, floor_id, zone_name = text_id(body, "zoneId"), text_id(body, "floorId"), name(body)
    async with _tenant_tx(request, principal.tenant_id) as conn:
        await _require_building(conn, principal.tenant_id, building_id)
        if not await store.floor_exists(conn, principal.tenant_id, building_id, floor_id):
            raise RequestRejected(422, "unknown_floor", f"floor {floor_id!r} does not exist")
        if not await store.create_zone(
            conn, principal.tenant_id, building_id, floor_id, zone_id, zone_name
        ):
            raise _conflict(f"zone {zone_id!r}")
    return OrjsonResponse(
        {"zoneId": zone_id, "floorId": floor_id, "name": zone_name}, status_code=201
    )


async def list_zones(request: Request) -> Response:
    principal = _tenant_admin(request)
    building_id = _path_id(request, "building_id")
    async with _tenant_tx(request, principal.tenant_id) as conn:
        await _require_building(conn, principal.tenant_id, building_id)
        zones = await store.list_zones(conn, principal.tenant_id, building_id)
    return OrjsonResponse({"zones": zones})


async def delete_zone(request: Request) -> Response:
    principal = _tenant_admin(request)
    building_id, zone_id = _path_id(request, "building_id"), _path_id(request, "zone_id")
    async with _tenant_tx(request, principal.tenant_id) as conn:
        if not await store.delete_zone(conn, principal.tenant_id, building_id, zone_id):
            raise RequestRejected(404, "unknown_zone", "no such zone")
    return Response(status_code=204)


# --- tenant: users and settings -------------------------------------------------------


async def create_user(request: Request) -> Response:
    principal = _tenant_admin(request)
    body = await _body(request)
    async with _tenant_tx(request, principal.tenant_id) as conn:
        return await _create_user(request, conn, principal.tenant_id, body)


async def _create_user(
    request: Request,
    conn: Conn,
    tenant_id: str,
    body: dict[str, object],
    forced_role: Role | None = None,
) -> Response:
    user_id = text_id(body, "userId")
    role_value = forced_role.value if forced_role else body.get("role")
    if not isinstance(role_value, str) or role_value not in {r.value for r in TENANT_ROLES}:
        raise RequestRejected(
            422, "invalid_role", f"role must be one of {sorted(r.value for r in TENANT_ROLES)}"
        )
    buildings = id_list(body, "buildingIds")
    for building_id in buildings:
        if not await store.building_exists(conn, tenant_id, building_id):
            raise RequestRejected(422, "unknown_building", f"no building {building_id!r}")
    password = body.get("password")
    if not isinstance(password, str):
        raise RequestRejected(422, "weak_password", "password must be a string")
    try:
        created = await provision_account(
            conn,
            request.app.state.keyring,
            tenant_id=tenant_id,
            user_id=user_id,
            role=str(role_value),
            building_ids=buildings,
            password=password,
            email=optional_text(body, "email"),
            display_name=optional_text(body, "displayName", max_chars=200),
        )
    except ProvisioningError as exc:
        status = 409 if exc.code == "user_exists" else 422
        raise RequestRejected(status, exc.code, str(exc)) from None
    answer: dict[str, object] = {
        "tenantId": tenant_id,
        "userId": user_id,
        "role": created.role.value,
        "buildingIds": buildings,
    }
    if created.totp_secret is not None:
        # Shown once: only the sealed seed is stored.
        answer["totpSecret"] = created.totp_secret
    return OrjsonResponse(answer, status_code=201, headers={"Cache-Control": "no-store"})


async def get_settings(request: Request) -> Response:
    principal = _tenant_admin(request)
    async with _tenant_tx(request, principal.tenant_id) as conn:
        version, settings = await store.get_settings(conn, principal.tenant_id)
    return OrjsonResponse({"version": version, "settings": settings.to_json()})


async def put_settings(request: Request) -> Response:
    principal = _tenant_admin(request)
    body = await _body(request)
    expected = body.get("version")
    if isinstance(expected, bool) or not isinstance(expected, int) or expected < 0:
        raise RequestRejected(422, "invalid_request", "version must be the current version")
    try:
        settings = parse_settings(body.get("settings"))
    except ValueError as exc:
        raise RequestRejected(422, "invalid_settings", str(exc)) from None
    async with _tenant_tx(request, principal.tenant_id) as conn:
        version = await store.put_settings(conn, principal.tenant_id, settings, expected)
    if version is None:
        raise RequestRejected(409, "version_conflict", "the settings changed; read them again")
    return OrjsonResponse({"version": version, "settings": settings.to_json()})


PREFIX = "/api/v1/admin"
ROUTES = [
    Route(f"{PREFIX}/tenants", _handled(create_tenant), methods=["POST"]),
    Route(f"{PREFIX}/tenants/{{tenant_id}}", _handled(get_tenant), methods=["GET"]),
    Route(
        f"{PREFIX}/tenants/{{tenant_id}}/admins", _handled(create_tenant_admin), methods=["POST"]
    ),
    Route(f"{PREFIX}/buildings", _handled(create_building), methods=["POST"]),
    Route(f"{PREFIX}/buildings", _handled(list_buildings), methods=["GET"]),
    Route(f"{PREFIX}/buildings/{{building_id}}", _handled(delete_building), methods=["DELETE"]),
    Route(f"{PREFIX}/buildings/{{building_id}}/floors", _handled(create_floor), methods=["POST"]),
    Route(f"{PREFIX}/buildings/{{building_id}}/zones", _handled(create_zone), methods=["POST"]),
    Route(f"{PREFIX}/buildings/{{building_id}}/zones", _handled(list_zones), methods=["GET"]),
    Route(
        f"{PREFIX}/buildings/{{building_id}}/zones/{{zone_id}}",
        _handled(delete_zone),
        methods=["DELETE"],
    ),
    Route(f"{PREFIX}/users", _handled(create_user), methods=["POST"]),
    Route(f"{PREFIX}/settings", _handled(get_settings), methods=["GET"]),
    Route(f"{PREFIX}/settings", _handled(put_settings), methods=["PUT"]),
]
