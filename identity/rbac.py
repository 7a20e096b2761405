"""The one RBAC SDK: what a role may do, and which buildings a caller may touch.

Every gateway route and every `sbp replay` command calls this module, and none
compares roles by hand; the registry (basic auth for Confluent clients) is to follow.
Pure: no I/O, so the whole decision table is unit-tested.

Two independent questions, asked in this order by a route:

1. `authorize(principal, action)`: may this role perform this action at all?
   Raises `Forbidden("forbidden_action")` (HTTP 403).
2. `building_access(principal, building_id, building_exists_in_tenant)`: for
   building-scoped actions, is this building in the caller's scope?
   - `unknown`: the building does not exist in the token's tenant. Another tenant's
     building looks exactly like a missing one (HTTP 404, per item `unknown_zone`), so
     ids of other tenants cannot be probed.
   - `forbidden`: it exists in the tenant but is outside the caller's scope
     (HTTP 403, per item `forbidden_building`).
   - `ok`.

Scope decisions (brief §4):
- `buildingIds` is a list of explicit grants. An empty list grants nothing; it never
  means "all buildings".
- `tenant_admin` administers its whole tenant (buildings, zones, users, bindings,
  audit), including buildings created after its token was minted, so its scope is
  every building of its own tenant whatever `buildingIds` says. That is a grant by
  role, not an interpretation of an empty list; tenancy still confines it.
- Every other role, `platform_admin` included, is confined to `buildingIds`:
  platform admins manage tenants, not the comfort or presence data inside them.
- "Own data" (occupant pings and votes) is enforced by construction: the gateway
  takes `userId` from the token, so an occupant can only ever act as itself.
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType

from identity.principal import Principal, Role


class Action(StrEnum):
    VOTE_SUBMIT = "vote.submit"
    PRESENCE_PING = "presence.ping"
    # Live SSE aggregate, occupancy and alert streams of a building (dashboards).
    BUILDING_STREAM = "building.stream"
    # A building's aggregates, occupancy and comfort history (dashboards, history API).
    BUILDING_READ = "building.read"
    # A building's floors and zones (ids and names only): what the app needs to let an
    # occupant pick the zone a vote is about. No comfort or presence data.
    BUILDING_LAYOUT = "building.layout"
    # The caller's own data: inbox (broadcasts, alert resolutions), own votes, consents,
    # GDPR access export.
    SELF_READ = "self.read"
    ALERT_MANAGE = "alert.manage"
    BROADCAST_SEND = "broadcast.send"
    # Buildings, floors, zones, users, identifier bindings and the audit of one tenant.
    TENANT_ADMIN = "tenant.admin"
    PLATFORM_ADMIN = "platform.admin"
    # Replay CLI: the DLQ's records (`dlq show`), re-driving them (`dlq reprocess`) and
    # re-driving a range of votes.raw (`redrive`). `dlq list` (counts only) is REPLAY_READ.
    REPLAY_OPERATE = "replay.operate"
    # Replay CLI, read-only: consumer lag and committed offsets (`sbp replay lag`,
    # `sbp replay offsets show`).
    REPLAY_READ = "replay.read"
    # Replay CLI: plan and apply a group's offset reset (`sbp replay offsets reset`).
    # Apart from REPLAY_READ so a read-only role can be granted later without it.
    OFFSETS_RESET = "replay.offsets.reset"


class BuildingAccess(StrEnum):
    OK = "ok"
    UNKNOWN = "unknown"
    FORBIDDEN = "forbidden"


class Forbidden(Exception):
    """The caller is authenticated but not allowed; `code` goes into the error body."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


A = Action
# Least privilege: a role gets only what brief §4 names for it. Human roles all get
# SELF_READ because every account has an inbox and a GDPR export; the sensor is a
# service identity with no personal data of its own.
_GRANTS: MappingProxyType[Role, frozenset[Action]] = MappingProxyType(
    {
        Role.OCCUPANT: frozenset({A.VOTE_SUBMIT, A.PRESENCE_PING, A.BUILDING_LAYOUT, A.SELF_READ}),
        Role.FM: frozenset(
            {
                A.BUILDING_STREAM,
                A.BUILDING_READ,
                A.BUILDING_LAYOUT,
                A.ALERT_MANAGE,
                A.BROADCAST_SEND,
                A.SELF_READ,
            }
        ),
        Role.TENANT_ADMIN: frozenset(
            {A.TENANT_ADMIN, A.BUILDING_READ, A.BUILDING_STREAM, A.BUILDING_LAYOUT, A.SELF_READ}
        ),
        Role.PLATFORM_ADMIN: frozenset({A.PLATFORM_ADMIN, A.SELF_READ}),
        Role.SENSOR: frozenset({A.PRESENCE_PING}),
        Role.OPERATOR: frozenset({A.REPLAY_OPERATE, A.REPLAY_READ, A.OFFSETS_RESET, A.SELF_READ}),
    }
)
del A

# Roles whose building scope is their whole tenant (see the module docstring).
_TENANT_WIDE_ROLES = frozenset({Role.TENANT_ADMIN})


def allowed_actions(role: Role) -> frozenset[Action]:
    """The actions a role may perform (for docs, admin UIs and tests)."""
    return _GRANTS[role]


def is_allowed(principal: Principal, action: Action) -> bool:
    return action in _GRANTS[principal.role]


def authorize(principal: Principal, action: Action) -> None:
    """Raise `Forbidden("forbidden_action")` unless the principal's role allows `action`."""
    if not is_allowed(principal, action):
        raise Forbidden(
            "forbidden_action",
            f"role {principal.role.value!r} may not perform {action.value!r}",
        )


def building_access(
    principal: Principal, building_id: str, building_exists_in_tenant: bool
) -> BuildingAccess:
    """Whether `building_id` is in the principal's scope.

    `building_exists_in_tenant` must come from a lookup scoped to `principal.tenant_id`;
    a building of another tenant is therefore reported as not existing.
    """
    if not building_exists_in_tenant:
        return BuildingAccess.UNKNOWN
    if principal.role in _TENANT_WIDE_ROLES or building_id in principal.building_ids:
        return BuildingAccess.OK
    return BuildingAccess.FORBIDDEN
