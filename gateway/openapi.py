"""`/openapi.json`: every route the gateway serves (the admin API it forwards included),
with its request body, its answers and the one error shape.

Written by hand from the routes, not generated: the contract is what clients and the
fuzzing tests (tests/integration/test_api_fuzz.py) hold the gateway to, and a unit
test checks that every mounted route is described here with its methods.
"""

from __future__ import annotations

from typing import Any

ID = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}
NAME = {"type": "string", "minLength": 1, "maxLength": 200}
ERROR = {"$ref": "#/components/schemas/Error"}
BEARER: list[dict[str, list[str]]] = [{"bearer": []}]

_ERROR_TEXT = {
    400: "Malformed JSON",
    401: "Missing, forged or expired credentials",
    403: "The role or building scope does not allow it",
    404: "No such resource in the caller's tenant",
    405: "Method not allowed",
    409: "Already exists, or changed meanwhile",
    413: "Body or batch too large",
    422: "Wrong shape or invalid values",
    429: "Rate limited (see Retry-After)",
    503: "A dependency is unavailable (see Retry-After)",
}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _op(
    summary: str,
    ok: dict[int, tuple[str, dict[str, Any] | None]],
    errors: tuple[int, ...],
    *,
    body: dict[str, Any] | None = None,
    secured: bool = True,
    params: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, (text, schema) in ok.items():
        responses[str(status)] = {"description": text, **(_json(schema) if schema else {})}
    for status in errors:
        responses[str(status)] = {"description": _ERROR_TEXT[status], **_json(ERROR)}
    op: dict[str, Any] = {"summary": summary, "responses": responses}
    if secured:
        op["security"] = BEARER
    if body is not None:
        op["requestBody"] = {"required": True, **_json(body)}
    if params:
        op["parameters"] = params
    return op


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": ID}


def _obj(required: list[str], **props: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": props}


TOKENS = _obj(
    ["accessToken", "tokenType", "expiresIn"],
    accessToken={"type": "string"},
    tokenType={"type": "string", "enum": ["Bearer"]},
    expiresIn={"type": "integer"},
    refreshToken={"type": "string"},
    refreshExpiresIn={"type": "integer"},
)
VOTE = {
    "type": "object",
    "required": ["voteUuid", "buildingId", "zoneId", "value", "clientTs"],
    "properties": {
        "voteUuid": {"type": "string", "format": "uuid"},
        "buildingId": ID,
        "zoneId": ID,
        "kind": {"type": "string", "enum": ["thermal", "air", "noise", "light"]},
        "value": {"type": "integer"},
        "preference": {"type": "string", "enum": ["warmer", "no_change", "cooler"]},
        "clientTs": {"type": "string", "format": "date-time"},
        "deviceId": {"type": "string"},
        "appVersion": {"type": "string"},
        "comment": {"type": "string", "maxLength": 280},
        "schemaVersion": {"type": "integer", "enum": [1, 2]},
    },
}
ITEM_RESULT = _obj(
    ["index", "voteUuid", "status"],
    index={"type": "integer"},
    voteUuid={"type": ["string", "null"]},
    status={
        "type": "string",
        "enum": ["accepted", "late_submission", "duplicate", "rejected"],
    },
    error=_obj(["code", "message"], code={"type": "string"}, message={"type": "string"}),
)
BATCH_RESULT = _obj(
    ["results", "counts"],
    results={"type": "array", "items": ITEM_RESULT},
    counts=_obj(
        ["accepted", "late_submission", "duplicate", "rejected"],
        accepted={"type": "integer"},
        late_submission={"type": "integer"},
        duplicate={"type": "integer"},
        rejected={"type": "integer"},
    ),
)
BUILDING = _obj(["buildingId", "name"], buildingId=ID, name=NAME)
ZONE = _obj(["zoneId", "floorId", "name"], zoneId=ID, floorId=ID, name=NAME)
SETTINGS = {"type": "object", "additionalProperties": True}
USER_IN = _obj(
    ["userId", "role", "password"],
    userId=ID,
    role={"type": "string", "enum": ["occupant", "fm", "tenant_admin", "sensor"]},
    buildingIds={"type": "array", "items": ID},
    password={"type": "string", "minLength": 12, "maxLength": 256},
    email={"type": "string"},
    displayName={"type": "string"},
)
USER_OUT = _obj(
    ["tenantId", "userId", "role", "buildingIds"],
    tenantId=ID,
    userId=ID,
    role={"type": "string"},
    buildingIds={"type": "array", "items": ID},
    totpSecret={"type": "string"},
)
TENANT = _obj(["tenantId", "name"], tenantId=ID, name=NAME, createdAt={"type": "string"})
AUTH_ERRORS = (400, 401, 413, 422, 429, 503)
ADMIN_ERRORS = (400, 401, 403, 413, 422, 503)


def document() -> dict[str, Any]:
    b, z, t = _path_param("building_id"), _path_param("zone_id"), _path_param("tenant_id")
    paths: dict[str, dict[str, Any]] = {
        "/healthz": {"get": _op("Liveness", {200: ("Alive", None)}, (), secured=False)},
        "/readyz": {
            "get": _op(
                "Readiness", {200: ("Ready", None), 503: ("Not ready", None)}, (), secured=False
            )
        },
        "/openapi.json": {
            "get": _op("This document", {200: ("OpenAPI 3.1", None)}, (), secured=False)
        },
        "/.well-known/jwks.json": {
            "get": _op("Public signing keys", {200: ("JWK set", None)}, (), secured=False)
        },
        "/api/v1/auth/login": {
            "post": _op(
                "Log in (TOTP for fm, tenant_admin, platform_admin, operator)",
                {200: ("Tokens", TOKENS)},
                AUTH_ERRORS,
                body=_obj(
                    ["tenantId", "userId", "password"],
                    tenantId={"type": "string"},
                    userId={"type": "string"},
                    password={"type": "string"},
                    totp={"type": "string"},
                ),
                secured=False,
            )
        },
        "/api/v1/auth/refresh": {
            "post": _op(
                "Rotate a refresh token",
                {200: ("Tokens", TOKENS)},
                AUTH_ERRORS,
                body=_obj(["refreshToken"], refreshToken={"type": "string"}),
                secured=False,
            )
        },
        "/api/v1/auth/logout": {
            "post": _op(
                "End the login",
                {204: ("Logged out", None)},
                AUTH_ERRORS,
                body=_obj(["refreshToken"], refreshToken={"type": "string"}),
                secured=False,
            )
        },
        "/api/v1/auth/token": {
            "post": _op(
                "A sensor's access token (client credentials)",
                {200: ("Token", TOKENS)},
                AUTH_ERRORS,
                body=_obj(
                    ["tenantId", "clientId", "clientSecret"],
                    tenantId={"type": "string"},
                    clientId={"type": "string"},
                    clientSecret={"type": "string"},
                ),
                secured=False,
            )
        },
        "/api/v1/auth/sse-ticket": {
            "post": _op(
                "A single-use SSE ticket, valid 30 s",
                {
                    200: (
                        "Ticket",
                        _obj(
                            ["ticket", "expiresIn"],
                            ticket={"type": "string"},
                            expiresIn={"type": "integer"},
                        ),
                    )
                },
                (401, 403),
            )
        },
        "/api/v1/votes/batch": {
            "post": _op(
                "Submit 1 to 100 votes",
                {200: ("One result per item", BATCH_RESULT)},
                (400, 401, 403, 413, 422, 429, 503),
                body=_obj(["items"], items={"type": "array", "items": VOTE}),
            )
        },
        "/api/v1/votes": {
            "post": _op(
                "Submit one vote",
                {202: ("Accepted", ITEM_RESULT), 200: ("Duplicate", ITEM_RESULT)},
                (400, 401, 403, 404, 413, 422, 429, 503),
                body=VOTE,
            )
        },
        "/api/v1/buildings/{building_id}/stream": {
            "get": {
                **_op(
                    "Live events (SSE); browsers pass ?ticket=",
                    {200: ("text/event-stream", None)},
                    (401, 403, 404, 503),
                    params=[b],
                ),
            }
        },
        "/api/v1/admin/tenants": {
            "post": _op(
                "Create a tenant (platform_admin)",
                {201: ("Created", TENANT)},
                (*ADMIN_ERRORS, 409),
                body=_obj(["tenantId", "name"], tenantId=ID, name=NAME),
            )
        },
        "/api/v1/admin/tenants/{tenant_id}": {
            "get": _op("A tenant", {200: ("Tenant", TENANT)}, (401, 403, 404, 503), params=[t])
        },
        "/api/v1/admin/tenants/{tenant_id}/admins": {
            "post": _op(
                "Create a tenant admin (platform_admin)",
                {201: ("Created", USER_OUT)},
                (*ADMIN_ERRORS, 404, 409),
                body=USER_IN,
                params=[t],
            )
        },
        "/api/v1/admin/buildings": {
            "post": _op(
                "Create a building",
                {201: ("Created", BUILDING)},
                (*ADMIN_ERRORS, 409),
                body=BUILDING,
            ),
            "get": _op(
                "The tenant's buildings",
                {
                    200: (
                        "Buildings",
                        _obj(["buildings"], buildings={"type": "array", "items": BUILDING}),
                    )
                },
                (401, 403, 503),
            ),
        },
        "/api/v1/admin/buildings/{building_id}": {
            "delete": _op(
                "Delete a building, its floors and zones",
                {204: ("Deleted", None)},
                (401, 403, 404, 503),
                params=[b],
            )
        },
        "/api/v1/admin/buildings/{building_id}/floors": {
            "post": _op(
                "Create a floor",
                {201: ("Created", _obj(["floorId", "name"], floorId=ID, name=NAME))},
                (*ADMIN_ERRORS, 404, 409),
                body=_obj(["floorId", "name"], floorId=ID, name=NAME),
                params=[b],
            )
        },
        "/api/v1/admin/buildings/{building_id}/zones": {
            "post": _op(
                "Create a zone",
                {201: ("Created", ZONE)},
                (*ADMIN_ERRORS, 404, 409),
                body=ZONE,
                params=[b],
            ),
            "get": _op(
                "A building's zones",
                {200: ("Zones", _obj(["zones"], zones={"type": "array", "items": ZONE}))},
                (401, 403, 404, 503),
                params=[b],
            ),
        },
        "/api/v1/admin/buildings/{building_id}/zones/{zone_id}": {
            "delete": _op(
                "Delete a zone", {204: ("Deleted", None)}, (401, 403, 404, 503), params=[b, z]
            )
        },
        "/api/v1/admin/users": {
            "post": _op(
                "Create a user", {201: ("Created", USER_OUT)}, (*ADMIN_ERRORS, 409), body=USER_IN
            )
        },
        "/api/v1/admin/settings": {
            "get": _op(
                "The tenant's settings",
                {
                    200: (
                        "Settings",
                        _obj(
                            ["version", "settings"], version={"type": "integer"}, settings=SETTINGS
                        ),
                    )
                },
                (401, 403, 503),
            ),
            "put": _op(
                "Replace the settings (optimistic: the current version)",
                {
                    200: (
                        "Stored",
                        _obj(
                            ["version", "settings"], version={"type": "integer"}, settings=SETTINGS
                        ),
                    )
                },
                (*ADMIN_ERRORS, 409),
                body=_obj(["version", "settings"], version={"type": "integer"}, settings=SETTINGS),
            ),
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "sbp: the smart-building occupant platform", "version": "1"},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT (typ at+jwt)"}
            },
            "schemas": {
                "Error": _obj(
                    ["error"],
                    error=_obj(
                        ["code", "message"], code={"type": "string"}, message={"type": "string"}
                    ),
                )
            },
        },
    }
