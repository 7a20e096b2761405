"""The RBAC SDK: the full role x action matrix and the 404-versus-403 building scope."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from identity.principal import Principal, Role
from identity.rbac import (
    Action,
    BuildingAccess,
    Forbidden,
    allowed_actions,
    authorize,
    building_access,
)

A = Action
# Written out independently of identity.rbac on purpose: changing a grant must change
# this table too, in review.
EXPECTED: dict[Role, set[Action]] = {
    Role.OCCUPANT: {A.VOTE_SUBMIT, A.PRESENCE_PING, A.BUILDING_LAYOUT, A.SELF_READ},
    Role.FM: {
        A.BUILDING_STREAM,
        A.BUILDING_READ,
        A.BUILDING_LAYOUT,
        A.ALERT_MANAGE,
        A.BROADCAST_SEND,
        A.SELF_READ,
    },
    Role.TENANT_ADMIN: {
        A.TENANT_ADMIN,
        A.BUILDING_READ,
        A.BUILDING_STREAM,
        A.BUILDING_LAYOUT,
        A.SELF_READ,
    },
    Role.PLATFORM_ADMIN: {A.PLATFORM_ADMIN, A.SELF_READ},
    Role.SENSOR: {A.PRESENCE_PING},
    Role.OPERATOR: {A.REPLAY_OPERATE, A.REPLAY_READ, A.OFFSETS_RESET, A.SELF_READ},
}

ID_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
ids = st.text(alphabet=ID_ALPHABET, min_size=1, max_size=64)


def principal(role: Role, buildings: frozenset[str] = frozenset({"b1"})) -> Principal:
    return Principal(
        tenant_id="acme",
        user_id="u-1",
        role=role,
        building_ids=buildings,
        session_id="s",
        token_id="t",
        expires_at=datetime(2030, 1, 1, tzinfo=UTC),
    )


def test_required_actions_exist() -> None:
    values = {a.value for a in Action}
    assert {
        "vote.submit",
        "presence.ping",
        "building.stream",
        "building.read",
        "alert.manage",
        "broadcast.send",
        "tenant.admin",
        "platform.admin",
        "replay.operate",
        "replay.read",
        "replay.offsets.reset",
    } <= values


@pytest.mark.parametrize(("role", "action"), list(itertools.product(Role, Action)))
def test_role_action_matrix(role: Role, action: Action) -> None:
    if action in EXPECTED[role]:
        authorize(principal(role), action)
    else:
        with pytest.raises(Forbidden) as info:
            authorize(principal(role), action)
        assert info.value.code == "forbidden_action"
        assert role.value in info.value.message


def test_allowed_actions_matches_the_matrix() -> None:
    assert {role: set(allowed_actions(role)) for role in Role} == EXPECTED


@pytest.mark.parametrize("role", list(Role))
def test_building_of_the_token(role: Role) -> None:
    assert building_access(principal(role), "b1", True) is BuildingAccess.OK


@pytest.mark.parametrize("role", list(Role))
def test_building_missing_or_of_another_tenant_is_unknown(role: Role) -> None:
    # The caller's lookup is scoped to the token's tenant, so another tenant's building
    # arrives here as "does not exist", even when the id is in buildingIds.
    assert building_access(principal(role), "b1", False) is BuildingAccess.UNKNOWN
    assert building_access(principal(role), "b9", False) is BuildingAccess.UNKNOWN


@pytest.mark.parametrize(
    "role", [r for r in Role if r is not Role.TENANT_ADMIN], ids=lambda r: r.value
)
def test_own_tenant_building_outside_scope_is_forbidden(role: Role) -> None:
    assert building_access(principal(role), "b2", True) is BuildingAccess.FORBIDDEN


@pytest.mark.parametrize(
    "role", [r for r in Role if r is not Role.TENANT_ADMIN], ids=lambda r: r.value
)
def test_empty_building_ids_never_means_all(role: Role) -> None:
    nobody = principal(role, frozenset())
    assert building_access(nobody, "b1", True) is BuildingAccess.FORBIDDEN
    assert building_access(nobody, "b1", False) is BuildingAccess.UNKNOWN


def test_tenant_admin_scope_is_its_whole_tenant() -> None:
    admin = principal(Role.TENANT_ADMIN, frozenset())
    assert building_access(admin, "any-building", True) is BuildingAccess.OK
    assert building_access(admin, "any-building", False) is BuildingAccess.UNKNOWN


@given(
    role=st.sampled_from([r for r in Role if r is not Role.TENANT_ADMIN]),
    granted=st.frozensets(ids, max_size=8),
    building=ids,
    exists=st.booleans(),
)
def test_a_building_outside_building_ids_is_never_ok(
    role: Role, granted: frozenset[str], building: str, exists: bool
) -> None:
    access = building_access(principal(role, granted), building, exists)
    if building not in granted:
        assert access is not BuildingAccess.OK
    if not exists:
        assert access is BuildingAccess.UNKNOWN
    if exists and building in granted:
        assert access is BuildingAccess.OK


@given(role=st.sampled_from(list(Role)), granted=st.frozensets(ids, max_size=8), building=ids)
def test_a_missing_building_is_always_unknown(
    role: Role, granted: frozenset[str], building: str
) -> None:
    assert building_access(principal(role, granted), building, False) is BuildingAccess.UNKNOWN


@pytest.mark.parametrize("action", [A.REPLAY_OPERATE, A.REPLAY_READ, A.OFFSETS_RESET])
def test_only_operators_may_use_the_replay_tools(action: Action) -> None:
    assert {role for role in Role if action in allowed_actions(role)} == {Role.OPERATOR}
