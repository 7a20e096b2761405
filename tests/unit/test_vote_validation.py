"""Per-item vote validation: codes, order of checks, duplicates, counts, response shape."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.clock_skew import DEFAULT_POLICY, SkewPolicy
from gateway.vote_validation import (
    ItemError,
    ItemOutcome,
    ItemStatus,
    ValidVote,
    VoteKind,
    ZoneAccess,
    ZoneLookup,
    apply_seen,
    counts,
    mark_duplicates_in_batch,
    reject_uuids,
    validate_item,
)

RECEIVED = datetime(2026, 3, 10, 12, 0, 0, tzinfo=UTC)
UUID_A = "6f1c2a4e-8b3d-4f5a-9c7e-1d2b3a4c5e6f"
UUID_B = "0b9e8d7c-6a5f-4e3d-8c2b-1a0f9e8d7c6b"
UUID_C = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
ABSENT = object()

ZONES = {("hq", "3F-East"): ZoneAccess.ok, ("annex", "1F"): ZoneAccess.forbidden_building}


def lookup(building_id: str, zone_id: str) -> ZoneAccess:
    return ZONES.get((building_id, zone_id), ZoneAccess.unknown_zone)


def item(**overrides: object) -> dict[str, object]:
    """A valid v2 thermal vote, 1 minute old; `ABSENT` removes a field."""
    base: dict[str, object] = {
        "voteUuid": UUID_A,
        "buildingId": "hq",
        "zoneId": "3F-East",
        "kind": "thermal",
        "value": 2,
        "preference": "cooler",
        "clientTs": "2026-03-10T11:59:00Z",
        "deviceId": "pixel-8",
        "appVersion": "2.4.1",
        "comment": "stuffy after lunch",
        "schemaVersion": 2,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ABSENT}


def v1_item(**overrides: object) -> dict[str, object]:
    """A valid v1 vote: thermal by omission, value -1, no preference, no schemaVersion."""
    base: dict[str, object] = {
        "kind": ABSENT,
        "value": -1,
        "preference": ABSENT,
        "schemaVersion": ABSENT,
    }
    base.update(overrides)
    return item(**base)


def check(
    raw: object,
    *,
    index: int = 0,
    policy: SkewPolicy = DEFAULT_POLICY,
    zone_lookup: ZoneLookup = lookup,
) -> ItemOutcome:
    return validate_item(index, raw, received_at=RECEIVED, policy=policy, zone_lookup=zone_lookup)


def rejected_with(raw: object) -> ItemError | None:
    outcome = check(raw)
    assert outcome.status is ItemStatus.rejected
    assert outcome.vote is None
    assert outcome.late is False
    return outcome.error


# --- accepted votes ---------------------------------------------------------------------------


def test_valid_v2_vote_is_accepted_with_every_field() -> None:
    outcome = check(item(voteUuid=UUID_A.upper(), clientTs="2026-03-10T17:29:00+05:30"), index=7)
    assert outcome.status is ItemStatus.accepted
    assert (outcome.index, outcome.error, outcome.message, outcome.late) == (7, None, None, False)
    assert outcome.vote_uuid == UUID_A  # canonical lowercase
    assert outcome.vote == ValidVote(
        vote_uuid=UUID_A,
        building_id="hq",
        zone_id="3F-East",
        kind=VoteKind.thermal,
        value=2,
        preference="cooler",
        client_ts=datetime(2026, 3, 10, 17, 29, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        device_id="pixel-8",
        app_version="2.4.1",
        comment="stuffy after lunch",
        schema_version=2,
    )
    assert outcome.vote.client_ts.utcoffset() == timedelta(hours=5, minutes=30)


def test_optional_fields_may_be_absent_or_null() -> None:
    absent = check(item(preference=ABSENT, deviceId=ABSENT, appVersion=ABSENT, comment=ABSENT))
    null = check(item(preference=None, deviceId=None, appVersion=None, comment=None))
    for outcome in (absent, null):
        assert outcome.status is ItemStatus.accepted
        assert outcome.vote is not None
        vote = outcome.vote
        assert (vote.preference, vote.device_id, vote.app_version, vote.comment) == (None,) * 4


def test_unknown_fields_are_ignored_and_never_trusted() -> None:
    outcome = check(item(tenantId="someone-else", userId="u-9", extra={"nested": [1, 2]}))
    assert outcome.status is ItemStatus.accepted
    assert outcome.vote == check(item()).vote


@pytest.mark.parametrize("value", [-3, -2, -1, 0, 1, 2, 3])
def test_thermal_v2_range_is_accepted(value: int) -> None:
    outcome = check(item(value=value))
    assert outcome.status is ItemStatus.accepted
    assert outcome.vote is not None and outcome.vote.value == value


@pytest.mark.parametrize("kind", ["air", "noise", "light"])
@pytest.mark.parametrize("value", [1, 3, 5])
def test_quality_kinds_accept_one_to_five(kind: str, value: int) -> None:
    outcome = check(item(kind=kind, value=value, preference=ABSENT))
    assert outcome.status is ItemStatus.accepted
    assert outcome.vote is not None
    assert (outcome.vote.kind, outcome.vote.value) == (VoteKind(kind), value)


@pytest.mark.parametrize("preference", ["warmer", "no_change", "cooler"])
def test_thermal_preferences(preference: str) -> None:
    outcome = check(item(preference=preference))
    assert outcome.vote is not None and outcome.vote.preference == preference


# --- v1 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [-1, 0, 1])
def test_v1_is_kept_as_sent_not_migrated(value: int) -> None:
    outcome = check(v1_item(value=value))
    assert outcome.status is ItemStatus.accepted
    assert outcome.vote is not None
    assert (outcome.vote.kind, outcome.vote.value, outcome.vote.schema_version) == (
        VoteKind.thermal,
        value,
        1,
    )


def test_v1_explicit_version_and_kind() -> None:
    outcome = check(v1_item(schemaVersion=1, kind="thermal", value=1))
    assert outcome.vote is not None and outcome.vote.schema_version == 1


@pytest.mark.parametrize(
    "overrides",
    [
        {"value": 2},
        {"value": -2},
        {"value": 3},
        {"kind": "air", "value": 1},
        {"preference": "cooler"},
    ],
)
def test_v1_contract_violations_are_invalid_value(overrides: dict[str, object]) -> None:
    assert rejected_with(v1_item(**overrides)) is ItemError.invalid_value


# --- invalid_schema ---------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [[], "vote", None, 1, 1.5, True, [item()]])
def test_non_object_item_is_invalid_schema(raw: object) -> None:
    outcome = check(raw)
    assert (outcome.status, outcome.error, outcome.vote_uuid) == (
        ItemStatus.rejected,
        ItemError.invalid_schema,
        None,
    )


@pytest.mark.parametrize("value", [True, False, "1", "2", 1.0, 2.0, None, ABSENT, [2], {"v": 2}])
def test_value_must_be_a_real_integer(value: object) -> None:
    assert rejected_with(item(value=value)) is ItemError.invalid_schema


@pytest.mark.parametrize("value", [True, "1", 1.0])
def test_v1_value_must_be_a_real_integer_too(value: object) -> None:
    assert rejected_with(v1_item(value=value)) is ItemError.invalid_schema


@pytest.mark.parametrize("version", [0, 3, -1, "2", 2.0, 1.0, True, None, [2]])
def test_unknown_schema_version_is_invalid_schema(version: object) -> None:
    assert rejected_with(item(schemaVersion=version)) is ItemError.invalid_schema


@pytest.mark.parametrize(
    "vote_uuid",
    [
        ABSENT,
        None,
        123,
        "",
        "not-a-uuid",
        "6f1c2a4e8b3d4f5a9c7e1d2b3a4c5e6f",  # no hyphens
        "{6f1c2a4e-8b3d-4f5a-9c7e-1d2b3a4c5e6f}",
        "urn:uuid:6f1c2a4e-8b3d-4f5a-9c7e-1d2b3a4c5e6f",
        UUID_A + "\n",
        "6f1c2a4e-8b3d-4f5a-9c7e-1d2b3a4c5e6g",
        UUID_A * 10_000,
    ],
)
def test_bad_vote_uuid_is_invalid_schema_and_not_echoed(vote_uuid: object) -> None:
    outcome = check(item(voteUuid=vote_uuid))
    assert (outcome.error, outcome.vote_uuid) == (ItemError.invalid_schema, None)


@pytest.mark.parametrize("field", ["buildingId", "zoneId"])
@pytest.mark.parametrize(
    "bad", [ABSENT, None, "", "x" * 65, "3F East", "3F/East", "zoné", "z\x00", "z\n", 5, ["hq"]]
)
def test_bad_ids_are_invalid_schema(field: str, bad: object) -> None:
    assert rejected_with(item(**{field: bad})) is ItemError.invalid_schema


def test_ids_of_64_characters_are_allowed() -> None:
    building, zone = "b" * 64, "Z_-9" * 16
    seen: list[tuple[str, str]] = []

    def record(building_id: str, zone_id: str) -> ZoneAccess:
        seen.append((building_id, zone_id))
        return ZoneAccess.ok

    outcome = check(item(buildingId=building, zoneId=zone), zone_lookup=record)
    assert outcome.status is ItemStatus.accepted
    assert seen == [(building, zone)]


@pytest.mark.parametrize("kind", [ABSENT, None, 1, ["thermal"], True])
def test_v2_kind_must_be_a_present_string(kind: object) -> None:
    assert rejected_with(item(kind=kind)) is ItemError.invalid_schema


@pytest.mark.parametrize(
    "client_ts",
    [
        "2026-03-10T11:59:00",  # naive: the brief's own example of invalid_schema
        "2026-03-10 11:59:00Z",
        "2026-03-10",
        "2026-02-30T11:59:00Z",
        "yesterday",
        1773143940,
        1773143940.0,
        None,
        ABSENT,
        "2026-03-10T11:59:00Z" * 1000,
    ],
)
def test_bad_client_ts_is_invalid_schema(client_ts: object) -> None:
    assert rejected_with(item(clientTs=client_ts)) is ItemError.invalid_schema


@pytest.mark.parametrize("field", ["preference", "deviceId", "appVersion", "comment"])
@pytest.mark.parametrize("bad", [1, True, ["x"], {"x": 1}])
def test_optional_text_of_wrong_type_is_invalid_schema(field: str, bad: object) -> None:
    assert rejected_with(item(**{field: bad})) is ItemError.invalid_schema


# --- invalid_value ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", [-4, 4, 10**30, -(10**30)])
def test_thermal_out_of_range(value: int) -> None:
    assert rejected_with(item(value=value)) is ItemError.invalid_value


@pytest.mark.parametrize("kind", ["air", "noise", "light"])
@pytest.mark.parametrize("value", [0, 6, -1])
def test_quality_out_of_range(kind: str, value: int) -> None:
    assert rejected_with(item(kind=kind, value=value, preference=ABSENT)) is ItemError.invalid_value


@pytest.mark.parametrize("kind", ["wind", "Thermal", "", "thermal "])
def test_unknown_kind_is_invalid_value(kind: str) -> None:
    assert rejected_with(item(kind=kind)) is ItemError.invalid_value


@pytest.mark.parametrize("preference", ["hotter", "WARMER", ""])
def test_unknown_preference_is_invalid_value(preference: str) -> None:
    assert rejected_with(item(preference=preference)) is ItemError.invalid_value


def test_preference_on_a_non_thermal_vote_is_invalid_value() -> None:
    assert rejected_with(item(kind="air", value=3, preference="warmer")) is ItemError.invalid_value


@pytest.mark.parametrize(
    "vote_uuid", ["00000000-0000-0000-0000-000000000000", "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"]
)
def test_nil_and_max_uuid_are_invalid_value(vote_uuid: str) -> None:
    outcome = check(item(voteUuid=vote_uuid))
    assert (outcome.error, outcome.vote_uuid) == (ItemError.invalid_value, vote_uuid.lower())


def test_comment_of_280_characters_is_accepted_and_281_is_not() -> None:
    assert check(item(comment="x" * 280)).status is ItemStatus.accepted
    assert rejected_with(item(comment="x" * 281)) is ItemError.invalid_value


def test_comment_length_counts_code_points_not_bytes() -> None:
    # 280 emoji are 1120 UTF-8 bytes and 560 UTF-16 units, but 280 characters.
    outcome = check(item(comment="\N{GRINNING FACE}" * 280))
    assert outcome.vote is not None and outcome.vote.comment == "\N{GRINNING FACE}" * 280
    assert rejected_with(item(comment="\N{GRINNING FACE}" * 281)) is ItemError.invalid_value


def test_comment_keeps_tabs_and_line_breaks() -> None:
    outcome = check(item(comment="line one\r\nline two\tend"))
    assert outcome.vote is not None and outcome.vote.comment == "line one\r\nline two\tend"


@pytest.mark.parametrize(
    "hostile",
    [
        "a\x00b",  # PostgreSQL text cannot hold NUL
        "\x1b[31mred",  # terminal escape
        "a\x7fb",
        "a\x85b",  # C1 control (NEL)
        "a\ud800b",  # lone surrogate: not encodable as UTF-8
        "\udfff",
    ],
)
@pytest.mark.parametrize("field", ["comment", "deviceId", "appVersion"])
def test_hostile_text_is_invalid_value(field: str, hostile: str) -> None:
    outcome = check(item(**{field: hostile}))
    assert outcome.error is ItemError.invalid_value
    assert outcome.message is not None and hostile not in outcome.message


@pytest.mark.parametrize("field", ["deviceId", "appVersion"])
def test_device_fields_are_one_line_of_at_most_128_characters(field: str) -> None:
    assert check(item(**{field: "d" * 128})).status is ItemStatus.accepted
    assert rejected_with(item(**{field: "d" * 129})) is ItemError.invalid_value
    assert rejected_with(item(**{field: "a\nb"})) is ItemError.invalid_value
    assert rejected_with(item(**{field: "x" * 1_000_000})) is ItemError.invalid_value


# --- zone access and time ---------------------------------------------------------------------


def test_unknown_zone_and_other_tenants_zone_look_the_same() -> None:
    unknown = check(item(zoneId="9F-Nowhere"))
    assert (unknown.error, unknown.vote_uuid) == (ItemError.unknown_zone, UUID_A)
    assert unknown.message == "zone not found"
    assert "9F-Nowhere" not in (unknown.message or "")


def test_own_building_outside_token_is_forbidden() -> None:
    outcome = check(item(buildingId="annex", zoneId="1F"))
    assert (outcome.error, outcome.vote_uuid) == (ItemError.forbidden_building, UUID_A)


def test_future_timestamp() -> None:
    assert check(item(clientTs="2026-03-10T12:02:00Z")).status is ItemStatus.accepted
    assert rejected_with(item(clientTs="2026-03-10T12:02:00.000001Z")) is (
        ItemError.future_timestamp
    )


def test_too_old() -> None:
    assert check(item(clientTs="2026-03-03T12:00:00Z")).status is ItemStatus.late_submission
    assert rejected_with(item(clientTs="2026-03-03T11:59:59.999999Z")) is ItemError.too_old


def test_late_submission_is_accepted_and_flagged() -> None:
    on_time = check(item(clientTs="2026-03-10T11:45:00Z"))
    assert (on_time.status, on_time.late) == (ItemStatus.accepted, False)
    late = check(item(clientTs="2026-03-10T11:44:59Z"))
    assert (late.status, late.late, late.error) == (ItemStatus.late_submission, True, None)
    assert late.vote is not None and late.vote.client_ts == datetime(
        2026, 3, 10, 11, 44, 59, tzinfo=UTC
    )


def test_tenant_policy_is_applied() -> None:
    strict = SkewPolicy(
        future_tolerance=timedelta(0), too_old=timedelta(hours=1), late_after=timedelta(0)
    )
    assert check(item(clientTs="2026-03-10T12:00:01Z"), policy=strict).error is (
        ItemError.future_timestamp
    )
    assert check(item(clientTs="2026-03-10T11:59:59Z"), policy=strict).late is True
    assert check(item(clientTs="2026-03-10T10:59:59Z"), policy=strict).error is ItemError.too_old


# --- order of checks --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        # schema beats value
        ({"value": "9", "kind": "wind"}, ItemError.invalid_schema),
        ({"clientTs": "garbage", "comment": "x" * 281}, ItemError.invalid_schema),
        # value beats zone
        ({"value": 9, "zoneId": "nowhere"}, ItemError.invalid_value),
        ({"comment": "x" * 281, "buildingId": "annex", "zoneId": "1F"}, ItemError.invalid_value),
        # zone beats time
        ({"zoneId": "nowhere", "clientTs": "2030-01-01T00:00:00Z"}, ItemError.unknown_zone),
        (
            {"buildingId": "annex", "zoneId": "1F", "clientTs": "2020-01-01T00:00:00Z"},
            ItemError.forbidden_building,
        ),
    ],
)
def test_order_of_checks(overrides: dict[str, object], expected: ItemError) -> None:
    assert rejected_with(item(**overrides)) is expected


def test_zone_lookup_is_not_consulted_for_an_invalid_vote() -> None:
    calls: list[tuple[str, str]] = []

    def record(building_id: str, zone_id: str) -> ZoneAccess:
        calls.append((building_id, zone_id))
        return ZoneAccess.ok

    assert check(item(value=9), zone_lookup=record).error is ItemError.invalid_value
    assert calls == []


def test_a_valid_uuid_is_reported_even_when_another_field_fails() -> None:
    assert check(item(value=True)).vote_uuid == UUID_A


# --- batch steps ------------------------------------------------------------------------------


def batch(*raws: object) -> list[ItemOutcome]:
    return [check(raw, index=i) for i, raw in enumerate(raws)]


def statuses(outcomes: list[ItemOutcome]) -> list[str]:
    return [o.status.value for o in outcomes]


def test_repeats_within_a_batch_are_duplicates() -> None:
    outcomes = batch(
        item(voteUuid=UUID_A),
        item(voteUuid=UUID_B, clientTs="2026-03-10T11:00:00Z"),
        item(voteUuid=UUID_A.upper(), value=-3),  # same UUID, other content and case
        item(voteUuid=UUID_B),
        item(voteUuid=UUID_A),
    )
    mark_duplicates_in_batch(outcomes)
    assert statuses(outcomes) == [
        "accepted",
        "late_submission",
        "duplicate",
        "duplicate",
        "duplicate",
    ]
    assert [o.vote is not None for o in outcomes] == [True, True, False, False, False]
    assert [o.late for o in outcomes] == [False, True, False, False, False]
    assert counts(outcomes) == {"accepted": 1, "late_submission": 1, "duplicate": 3, "rejected": 0}


def test_a_rejected_item_neither_claims_nor_becomes_a_duplicate() -> None:
    outcomes = batch(
        item(voteUuid=UUID_A, value=9),  # rejected: does not claim the UUID
        item(voteUuid=UUID_A),  # so this one is accepted
        item(voteUuid=UUID_A, zoneId="nowhere"),  # rejected on its own merits
    )
    mark_duplicates_in_batch(outcomes)
    assert statuses(outcomes) == ["rejected", "accepted", "rejected"]
    assert [o.error for o in outcomes] == [ItemError.invalid_value, None, ItemError.unknown_zone]


def test_seen_uuids_become_duplicates() -> None:
    outcomes = batch(item(voteUuid=UUID_A), item(voteUuid=UUID_B), item(voteUuid=UUID_C, value=9))
    apply_seen(outcomes, {UUID_A, UUID_C})
    assert statuses(outcomes) == ["duplicate", "accepted", "rejected"]
    assert outcomes[0].vote is None and outcomes[1].vote is not None
    assert outcomes[2].error is ItemError.invalid_value


def test_undelivered_votes_and_their_in_batch_duplicates_become_unavailable() -> None:
    outcomes = batch(item(voteUuid=UUID_A), item(voteUuid=UUID_B), item(voteUuid=UUID_A))
    mark_duplicates_in_batch(outcomes)
    reject_uuids(outcomes, {UUID_A}, ItemError.unavailable, "Kafka did not confirm; retry")
    assert statuses(outcomes) == ["rejected", "accepted", "rejected"]
    assert [o.error for o in outcomes] == [ItemError.unavailable, None, ItemError.unavailable]
    assert outcomes[0].vote is None
    assert outcomes[0].to_json() == {
        "index": 0,
        "voteUuid": UUID_A,
        "status": "rejected",
        "error": {"code": "unavailable", "message": "Kafka did not confirm; retry"},
    }


def test_rate_limited_items() -> None:
    outcomes = batch(item(voteUuid=UUID_A), item(voteUuid=UUID_B, value=9))
    reject_uuids(outcomes, {UUID_A, UUID_B}, ItemError.rate_limited, "rate budget exhausted")
    assert [o.error for o in outcomes] == [ItemError.rate_limited, ItemError.invalid_value]


def test_counts_has_every_key_even_when_zero() -> None:
    assert counts([]) == {"accepted": 0, "late_submission": 0, "duplicate": 0, "rejected": 0}
    outcomes = batch(item(), "junk", item(voteUuid=UUID_B, clientTs="2026-03-09T00:00:00Z"))
    assert counts(outcomes) == {"accepted": 1, "late_submission": 1, "duplicate": 0, "rejected": 1}


def test_every_item_error_is_reachable() -> None:
    reached = {
        check("junk").error,
        check(item(value=9)).error,
        check(item(zoneId="nowhere")).error,
        check(item(buildingId="annex", zoneId="1F")).error,
        check(item(clientTs="2030-01-01T00:00:00Z")).error,
        check(item(clientTs="2020-01-01T00:00:00Z")).error,
    }
    for error in (ItemError.rate_limited, ItemError.unavailable):
        outcomes = [check(item())]
        reject_uuids(outcomes, {UUID_A}, error, "retry")
        reached.add(outcomes[0].error)
    assert reached == set(ItemError)


# --- response shape ---------------------------------------------------------------------------


def test_to_json_shapes_are_exact() -> None:
    accepted = check(item(), index=3)
    late = check(item(clientTs="2026-03-10T10:00:00Z"), index=4)
    rejected = check(item(voteUuid="nope"), index=5)
    duplicate = check(item(), index=6)
    duplicate.mark_duplicate()
    assert accepted.to_json() == {"index": 3, "voteUuid": UUID_A, "status": "accepted"}
    assert late.to_json() == {"index": 4, "voteUuid": UUID_A, "status": "late_submission"}
    assert duplicate.to_json() == {"index": 6, "voteUuid": UUID_A, "status": "duplicate"}
    assert rejected.to_json() == {
        "index": 5,
        "voteUuid": None,
        "status": "rejected",
        "error": {
            "code": "invalid_schema",
            "message": "voteUuid must be a UUID string (8-4-4-4-12 hex)",
        },
    }
    # Plain JSON types, not enums, so any encoder writes the same bytes.
    assert type(accepted.to_json()["status"]) is str
    error = rejected.to_json()["error"]
    assert isinstance(error, dict) and type(error["code"]) is str


@pytest.mark.parametrize(
    "kwargs",
    [
        {"status": ItemStatus.rejected},  # rejected without an error
        {"status": ItemStatus.accepted, "error": ItemError.invalid_value},
        {"status": ItemStatus.accepted},  # accepted without the vote to publish
        {"status": ItemStatus.duplicate, "late": True},
    ],
)
def test_inconsistent_outcomes_cannot_be_built(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ItemOutcome(index=0, vote_uuid=UUID_A, **kwargs)  # type: ignore[arg-type]


# --- never raises -----------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
FIELDS = [
    "voteUuid",
    "buildingId",
    "zoneId",
    "kind",
    "value",
    "preference",
    "clientTs",
    "deviceId",
    "appVersion",
    "comment",
    "schemaVersion",
]
# Valid votes with some fields replaced by arbitrary JSON: reaches every check, not only the first.
mutated_votes = st.builds(
    lambda replaced, dropped: {k: v for k, v in item(**replaced).items() if k not in dropped},
    st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=4),
    st.sets(st.sampled_from(FIELDS), max_size=3),
)


@settings(max_examples=400)
@given(raw=json_values | mutated_votes)
def test_validate_item_never_raises_and_keeps_its_invariants(raw: object) -> None:
    outcome = check(raw)
    assert (outcome.status is ItemStatus.rejected) == (outcome.error is not None)
    assert (outcome.vote is not None) == (
        outcome.status in (ItemStatus.accepted, ItemStatus.late_submission)
    )
    json.dumps(outcome.to_json())  # always serializable
