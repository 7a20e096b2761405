"""Raw vote (v1 or v2) → accepted vote in v2 terms, or an Invalid verdict for the DLQ."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from streams.tables.vote_migration import Invalid, migrate

ACCEPTED_SCHEMA = Path(__file__).resolve().parents[2] / "schemas/avro/votes.accepted-value/v1.avsc"
CLIENT_TS = datetime(2026, 3, 10, 11, 58, 30, tzinfo=UTC)
RECEIVED_AT = datetime(2026, 3, 10, 12, 0, 0, tzinfo=UTC)
VOTE_UUID = "6f1d2c3b-4a5e-4f60-9a7b-8c9d0e1f2a3b"


def v1(**overrides: Any) -> dict[str, Any]:
    """A v1 raw vote as decoded with the v1 writer schema (no kind, no preference)."""
    raw: dict[str, Any] = {
        "tenantId": "acme",
        "userRef": "ab" * 32,
        "receivedAt": RECEIVED_AT,
        "late": False,
        "voteUuid": VOTE_UUID,
        "buildingId": "hq",
        "zoneId": "3F-East",
        "value": 0,
        "clientTs": CLIENT_TS,
        "deviceId": None,
        "appVersion": None,
        "commentCipher": None,
        "schemaVersion": 1,
    }
    raw.update(overrides)
    return raw


def v2(**overrides: Any) -> dict[str, Any]:
    raw = v1(schemaVersion=2, kind="thermal", preference=None, value=0)
    raw.update(overrides)
    return raw


def accepted(raw: dict[str, Any]) -> dict[str, Any]:
    result = migrate(raw)
    assert not isinstance(result, Invalid), result
    return result


def rejected(raw: dict[str, Any]) -> Invalid:
    result = migrate(raw)
    assert isinstance(result, Invalid), result
    return result


# -- v1 -------------------------------------------------------------------------


@pytest.mark.parametrize(("old", "new"), [(-1, -2), (0, 0), (1, 2)])
def test_v1_values_map_onto_the_ashrae_scale(old: int, new: int) -> None:
    out = accepted(v1(value=old))
    assert out["value"] == new
    assert out["kind"] == "thermal"
    assert out["preference"] is None
    assert out["sourceSchemaVersion"] == 1


def test_v1_without_schema_version_is_v1() -> None:
    raw = v1(value=-1)
    del raw["schemaVersion"]
    out = accepted(raw)
    assert out["value"] == -2
    assert out["sourceSchemaVersion"] == 1


def test_v1_read_through_the_v2_schema_defaults_is_still_migrated() -> None:
    # The v2 reader fills kind="thermal" and schemaVersion=1 for a v1 writer.
    out = accepted(v1(value=1, kind="thermal", preference=None))
    assert out["value"] == 2


@pytest.mark.parametrize("value", [-3, -2, 2, 3, 5, 100])
def test_v1_values_outside_minus_one_to_one_are_invalid_values(value: int) -> None:
    assert rejected(v1(value=value)).code == "invalid_value"


@pytest.mark.parametrize("kind", ["air", "noise", "light", "smell"])
def test_v1_is_thermal_only(kind: str) -> None:
    assert rejected(v1(value=0, kind=kind)).code == "invalid_value"


def test_v1_carries_no_preference() -> None:
    assert rejected(v1(value=0, preference="cooler")).code == "invalid_value"


# -- v2 -------------------------------------------------------------------------


@pytest.mark.parametrize("value", [-3, -2, -1, 0, 1, 2, 3])
def test_v2_thermal_accepts_minus_three_to_three_unchanged(value: int) -> None:
    out = accepted(v2(kind="thermal", value=value))
    assert out["value"] == value
    assert out["sourceSchemaVersion"] == 2


@pytest.mark.parametrize("value", [-4, 4, -100])
def test_v2_thermal_outside_the_seven_point_scale_is_invalid(value: int) -> None:
    assert rejected(v2(kind="thermal", value=value)).code == "invalid_value"


@pytest.mark.parametrize("kind", ["air", "noise", "light"])
@pytest.mark.parametrize("value", [1, 2, 3, 4, 5])
def test_v2_other_kinds_accept_one_to_five(kind: str, value: int) -> None:
    out = accepted(v2(kind=kind, value=value))
    assert (out["kind"], out["value"]) == (kind, value)


@pytest.mark.parametrize("kind", ["air", "noise", "light"])
@pytest.mark.parametrize("value", [0, 6, -1])
def test_v2_other_kinds_outside_one_to_five_are_invalid(kind: str, value: int) -> None:
    assert rejected(v2(kind=kind, value=value)).code == "invalid_value"


@pytest.mark.parametrize("kind", ["smell", "", "Thermal"])
def test_v2_unknown_kind_is_invalid(kind: str) -> None:
    assert rejected(v2(kind=kind, value=1)).code == "invalid_value"


@pytest.mark.parametrize("preference", ["warmer", "no_change", "cooler"])
def test_v2_thermal_keeps_its_preference(preference: str) -> None:
    assert accepted(v2(kind="thermal", value=-2, preference=preference))["preference"] == (
        preference
    )


@pytest.mark.parametrize("kind", ["air", "noise", "light"])
def test_v2_preference_is_thermal_only(kind: str) -> None:
    assert rejected(v2(kind=kind, value=3, preference="cooler")).code == "invalid_value"


def test_v2_unknown_preference_is_invalid() -> None:
    assert rejected(v2(kind="thermal", value=0, preference="hotter")).code == "invalid_value"


# -- shape ----------------------------------------------------------------------


@pytest.mark.parametrize("version", [0, 3, 99, "2"])
def test_unknown_schema_version_is_invalid_schema(version: object) -> None:
    assert rejected(v2(schemaVersion=version)).code == "invalid_schema"


@pytest.mark.parametrize(
    "field",
    [
        "tenantId",
        "userRef",
        "voteUuid",
        "buildingId",
        "zoneId",
        "value",
        "clientTs",
        "receivedAt",
        "late",
    ],
)
def test_a_missing_required_field_is_invalid_schema(field: str) -> None:
    for raw in (v1(), v2()):
        del raw[field]
        invalid = rejected(raw)
        assert invalid.code == "invalid_schema"
        assert field in invalid.message


def test_a_null_required_field_counts_as_missing() -> None:
    assert rejected(v2(zoneId=None)).code == "invalid_schema"


def test_late_false_is_present_not_missing() -> None:
    assert accepted(v2(late=False))["late"] is False


@pytest.mark.parametrize("value", [True, False])
def test_a_boolean_value_is_not_a_number(value: bool) -> None:
    # True == 1 and False == 0 in Python: both would otherwise pass the range check.
    assert rejected(v1(value=value)).code == "invalid_schema"
    assert rejected(v2(value=value)).code == "invalid_schema"


@pytest.mark.parametrize("value", ["1", 1.0, None])
def test_a_non_integer_value_is_rejected(value: object) -> None:
    assert rejected(v2(value=value)).code == "invalid_schema"


@pytest.mark.parametrize("field", ["clientTs", "receivedAt"])
def test_timestamps_must_be_datetimes(field: str) -> None:
    assert rejected(v2(**{field: "2026-03-10T12:00:00Z"})).code == "invalid_schema"


# -- output ---------------------------------------------------------------------


def test_vote_uuid_given_as_uuid_comes_out_as_str() -> None:
    out = accepted(v2(voteUuid=uuid.UUID(VOTE_UUID)))
    assert type(out["voteUuid"]) is str
    assert out["voteUuid"] == VOTE_UUID


def test_the_output_is_the_whole_v2_record() -> None:
    raw = v2(
        kind="noise",
        value=4,
        late=True,
        deviceId="pixel-8",
        appVersion="3.1.0",
        commentCipher=b"\x01\x02",
    )
    assert accepted(raw) == {
        "tenantId": "acme",
        "voteUuid": VOTE_UUID,
        "buildingId": "hq",
        "zoneId": "3F-East",
        "kind": "noise",
        "value": 4,
        "preference": None,
        "userRef": "ab" * 32,
        "clientTs": CLIENT_TS,
        "receivedAt": RECEIVED_AT,
        "late": True,
        "remote": None,
        "deviceId": "pixel-8",
        "appVersion": "3.1.0",
        "commentCipher": b"\x01\x02",
        "sourceSchemaVersion": 2,
    }


def test_the_input_is_not_modified() -> None:
    raw = v1(value=-1)
    before = dict(raw)
    accepted(raw)
    assert raw == before


@pytest.mark.parametrize("raw", [v1(value=1), v2(kind="light", value=2)], ids=["v1", "v2"])
def test_output_fields_are_exactly_the_accepted_schemas(raw: dict[str, Any]) -> None:
    schema = json.loads(ACCEPTED_SCHEMA.read_text())
    names = {f["name"] for f in schema["fields"]}
    assert set(accepted(raw)) == names


@pytest.mark.parametrize("field", ["tenantId", "buildingId", "zoneId"])
@pytest.mark.parametrize("bad", ["a|b", "t:1", "", "x" * 65, "caf\u00e9"])
def test_ids_outside_the_id_alphabet_are_invalid(field: str, bad: str) -> None:
    result = migrate(v2(**{field: bad}))
    assert isinstance(result, Invalid)
    assert result.code == "invalid_value"
    assert field in result.message


@pytest.mark.parametrize("bad", ["", "a|b"])
def test_user_ref_must_be_usable_in_keys(bad: str) -> None:
    result = migrate(v2(userRef=bad))
    assert isinstance(result, Invalid)
    assert result.code == "invalid_value"


def test_accepted_shape_check_passes_a_migrated_vote_and_names_what_is_wrong() -> None:
    from streams.tables.vote_migration import accepted_shape_error

    accepted = migrate(v2())
    assert isinstance(accepted, dict)
    assert accepted_shape_error(accepted) is None
    # A record written with another schema (here: a raw v1 vote, no kind) is refused.
    raw_v1 = v1()
    raw_v1.pop("kind", None)
    assert accepted_shape_error(raw_v1) == "missing fields: kind, sourceSchemaVersion"
    assert accepted_shape_error({**accepted, "zoneId": "a|b"}) == "ids outside [A-Za-z0-9_-]{1,64}"
    assert accepted_shape_error({**accepted, "value": 9}) == "thermal value 9 out of range"
    assert accepted_shape_error({**accepted, "value": True}) is not None
