"""Whole-request checks: precedence of 413/400/422/413, caps, and single-vote statuses."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from gateway.batch_request import (
    MAX_BODY_BYTES,
    MAX_ITEMS,
    MAX_SINGLE_BODY_BYTES,
    RequestRejected,
    parse_batch,
    parse_single,
    single_vote_error,
    single_vote_status,
)
from gateway.clock_skew import DEFAULT_POLICY
from gateway.vote_validation import (
    ItemError,
    ItemOutcome,
    ItemStatus,
    ZoneAccess,
    reject_uuids,
    validate_item,
)

RECEIVED = datetime(2026, 3, 10, 12, 0, 0, tzinfo=UTC)
UUID = "6f1c2a4e-8b3d-4f5a-9c7e-1d2b3a4c5e6f"


def vote(n: int = 0, /, **overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "voteUuid": f"6f1c2a4e-8b3d-4f5a-9c7e-{n:012d}",
        "buildingId": "hq",
        "zoneId": "3F-East",
        "kind": "thermal",
        "value": 1,
        "clientTs": "2026-03-10T11:59:00Z",
        "schemaVersion": 2,
    }
    base.update(overrides)
    return base


def body(document: object) -> bytes:
    return json.dumps(document).encode()


def batch_of(count: int, **overrides: object) -> bytes:
    return body({"items": [vote(i, **overrides) for i in range(count)]})


def rejection(call: object) -> RequestRejected:
    assert callable(call)
    with pytest.raises(RequestRejected) as caught:
        call()
    return caught.value


def batch_rejection(raw: bytes, **kwargs: int) -> tuple[int, str]:
    error = rejection(lambda: parse_batch(raw, **kwargs))
    return error.status, error.code


# --- precedence -------------------------------------------------------------------------------


def test_a_valid_batch_returns_its_items_unvalidated() -> None:
    items = [vote(0), 1, "junk", None]
    assert parse_batch(body({"items": items, "extra": True})) == items


def test_oversized_and_malformed_is_body_too_large() -> None:
    raw = b"{" * (MAX_BODY_BYTES + 1)
    assert batch_rejection(raw) == (413, "body_too_large")


def test_the_byte_cap_is_inclusive() -> None:
    raw = batch_of(1)
    exact = raw[:-1] + b" " * (300 - len(raw)) + b"}"
    assert len(exact) == 300
    assert len(parse_batch(exact, max_body_bytes=300)) == 1
    assert batch_rejection(exact + b" ", max_body_bytes=300) == (413, "body_too_large")


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b'{"items": [}',
        b"not json",
        b"{'items': []}",
        b'{"items": ["\xff"]}',  # not UTF-8
        json.dumps({"items": [vote()]}).encode("utf-16"),
        b'\xef\xbb\xbf{"items": []}',  # UTF-8 byte order mark
        b'{"items": [NaN]}',
        b'{"items": [Infinity]}',
        b'{"items": [-Infinity]}',
        b'{"items": [], "items": [1]}',  # duplicate key, top level
        b'{"items": [{"value": 1, "value": true}]}',  # duplicate key inside an item
        b"[" * 200_000 + b"]" * 200_000,  # nesting beyond the parser's recursion limit
        b'{"items": [' + b"9" * 5000 + b"]}",  # integer beyond Python's digit limit
        b'{"items": []} trailing',
    ],
)
def test_malformed_json_is_400(raw: bytes) -> None:
    assert len(raw) <= MAX_BODY_BYTES  # so the 400 is not a 413 in disguise
    assert batch_rejection(raw) == (400, "malformed_json")


@pytest.mark.parametrize(
    "document",
    [
        [],
        [vote()],
        "items",
        1,
        None,
        {},
        {"votes": [vote()]},
        {"items": None},
        {"items": {"0": vote()}},
        {"items": "x"},
        {"items": 3},
    ],
)
def test_wrong_shape_is_422(document: object) -> None:
    assert batch_rejection(body(document)) == (422, "invalid_request")


def test_zero_items_is_422() -> None:
    error = rejection(lambda: parse_batch(body({"items": []})))
    assert (error.status, error.code) == (422, "invalid_request")
    assert error.message == "items must hold at least one vote"


def test_malformed_beats_wrong_shape() -> None:
    assert batch_rejection(b'[{"a": 1, "a": 2}]') == (400, "malformed_json")


def test_more_than_max_items_is_batch_too_large() -> None:
    assert len(parse_batch(batch_of(MAX_ITEMS))) == MAX_ITEMS
    assert batch_rejection(batch_of(MAX_ITEMS + 1)) == (413, "batch_too_large")


def test_max_items_is_configurable() -> None:
    assert len(parse_batch(batch_of(3), max_items=3)) == 3
    assert batch_rejection(batch_of(4), max_items=3) == (413, "batch_too_large")


def test_too_many_items_in_an_oversized_body_is_body_too_large() -> None:
    raw = batch_of(MAX_ITEMS + 1, padding="p" * 8200)
    assert len(raw) > MAX_BODY_BYTES
    assert batch_rejection(raw) == (413, "body_too_large")


def test_the_largest_legal_batch_fits_the_byte_cap() -> None:
    # Every text field at its cap, every character an astral code point, which
    # json.dumps writes as a 12-byte escape pair: the worst legal encoding.
    emoji = "\N{GRINNING FACE}"
    items = [
        vote(
            i,
            buildingId="b" * 64,
            zoneId="z" * 64,
            preference="no_change",
            clientTs="2026-03-10T17:29:00.123456789+05:30",
            deviceId=emoji * 128,
            appVersion=emoji * 128,
            comment=emoji * 280,
        )
        for i in range(MAX_ITEMS)
    ]
    raw = json.dumps({"items": items}, indent=2).encode()
    assert len(raw) <= MAX_BODY_BYTES
    parsed = parse_batch(raw)
    outcomes = [
        validate_item(
            i,
            raw_item,
            received_at=RECEIVED,
            policy=DEFAULT_POLICY,
            zone_lookup=lambda b, z: ZoneAccess.ok,
        )
        for i, raw_item in enumerate(parsed)
    ]
    assert {o.status for o in outcomes} == {ItemStatus.accepted}
    single = json.dumps(items[0], indent=2).encode()
    assert len(single) <= MAX_SINGLE_BODY_BYTES
    assert parse_single(single) == items[0]


def test_error_body_shape_is_exact() -> None:
    error = rejection(lambda: parse_batch(b"{"))
    assert error.to_json() == {
        "error": {"code": "malformed_json", "message": "the body is not valid JSON"}
    }
    assert error.retry_after_s is None


def test_retry_after_is_carried_for_the_caller() -> None:
    error = RequestRejected(503, "unavailable", "no broker connection", retry_after_s=5)
    assert (error.status, error.retry_after_s) == (503, 5)
    assert error.to_json() == {"error": {"code": "unavailable", "message": "no broker connection"}}


# --- single vote ------------------------------------------------------------------------------


def test_parse_single_returns_the_object() -> None:
    assert parse_single(body(vote())) == vote()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"{" * (MAX_SINGLE_BODY_BYTES + 1), (413, "body_too_large")),
        (b"{", (400, "malformed_json")),
        (b'{"value": 1, "value": 2}', (400, "malformed_json")),
        (body([vote()]), (422, "invalid_request")),
        (body({"items": [vote()]})[:-1], (400, "malformed_json")),
        (b"null", (422, "invalid_request")),
    ],
)
def test_parse_single_precedence(raw: bytes, expected: tuple[int, str]) -> None:
    error = rejection(lambda: parse_single(raw))
    assert (error.status, error.code) == expected


def outcome_for(**overrides: object) -> ItemOutcome:
    zones = {"hq": ZoneAccess.ok, "annex": ZoneAccess.forbidden_building}
    return validate_item(
        0,
        vote(**overrides),
        received_at=RECEIVED,
        policy=DEFAULT_POLICY,
        zone_lookup=lambda b, z: zones.get(b, ZoneAccess.unknown_zone),
    )


def rejected_by_caller(error: ItemError) -> ItemOutcome:
    outcome = outcome_for()
    reject_uuids([outcome], {outcome.vote_uuid or ""}, error, "retry later")
    return outcome


@pytest.mark.parametrize(
    ("outcome", "status"),
    [
        (outcome_for(), 202),
        (outcome_for(clientTs="2026-03-10T10:00:00Z"), 202),
        (outcome_for(value=True), 422),
        (outcome_for(value=9), 422),
        (outcome_for(buildingId="annex"), 403),
        (outcome_for(buildingId="elsewhere"), 404),
        (outcome_for(clientTs="2026-03-10T12:05:00Z"), 422),
        (outcome_for(clientTs="2026-01-01T00:00:00Z"), 422),
        (rejected_by_caller(ItemError.rate_limited), 429),
        (rejected_by_caller(ItemError.unavailable), 503),
    ],
)
def test_single_vote_status(outcome: ItemOutcome, status: int) -> None:
    assert single_vote_status(outcome) == status


def test_single_vote_duplicate_is_200() -> None:
    outcome = outcome_for()
    outcome.mark_duplicate()
    assert single_vote_status(outcome) == 200
    assert outcome.to_json() == {"index": 0, "voteUuid": vote()["voteUuid"], "status": "duplicate"}


def test_single_vote_error_body_carries_the_item_code() -> None:
    forbidden = single_vote_error(outcome_for(buildingId="annex"))
    assert (forbidden.status, forbidden.code) == (403, "forbidden_building")
    assert forbidden.to_json() == {
        "error": {
            "code": "forbidden_building",
            "message": "building is not in the token's buildingIds",
        }
    }
    invalid = single_vote_error(outcome_for(value="1"))
    assert (invalid.status, invalid.code) == (422, "invalid_schema")


def test_single_vote_error_refuses_a_success() -> None:
    with pytest.raises(ValueError):
        single_vote_error(outcome_for())
