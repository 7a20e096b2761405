"""The gateway's orjson-rendered responses carry exactly the bytes Starlette's own would."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from starlette.responses import JSONResponse

from gateway.batch_request import RequestRejected
from gateway.clock_skew import DEFAULT_POLICY
from gateway.responses import OrjsonResponse
from gateway.vote_validation import ItemError, ZoneAccess, counts, reject_uuids, validate_item

RECEIVED = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def _anywhere(_building_id: str, _zone_id: str) -> ZoneAccess:
    return ZoneAccess.ok


def _batch_body() -> dict[str, object]:
    items: list[object] = [
        {
            "voteUuid": f"6f1c2a4e-8b3d-4f5a-9c7e-{i:012d}",
            "buildingId": "hq",
            "zoneId": "3F-East",
            "kind": "thermal",
            "value": value,
            "clientTs": ts,
            "schemaVersion": 2,
        }
        for i, (value, ts) in enumerate(
            [(1, "2026-03-10T11:59:00Z"), (9, "2026-03-10T11:59:00Z"), (1, "2026-03-10T11:00:00Z")]
        )
    ] + ["junk"]
    outcomes = [
        validate_item(
            i,
            item,
            received_at=RECEIVED,
            policy=DEFAULT_POLICY,
            zone_lookup=lambda b, z: ZoneAccess.ok,
        )
        for i, item in enumerate(items)
    ]
    reject_uuids(
        outcomes, {"6f1c2a4e-8b3d-4f5a-9c7e-000000000002"}, ItemError.unavailable, "retry it"
    )
    return {"results": [o.to_json() for o in outcomes], "counts": counts(outcomes)}


@pytest.mark.parametrize(
    "content",
    [
        _batch_body(),
        RequestRejected(413, "body_too_large", "the body exceeds 819200 bytes").to_json(),
        {"index": 0, "voteUuid": None, "status": "rejected", "error": {"code": "x", "message": ""}},
        {"ready": False, "checks": {"kafka": True, "redis": False}},
        {"message": 'zone 3F-Ost: Lüftung \N{GRINNING FACE} "quoted" \\ back\nslash'},
        {"nested": [[], {}, [1, -2, 10**15]], "empty": ""},
    ],
)
def test_same_bytes_and_headers_as_starlette(content: object) -> None:
    ours = OrjsonResponse(content, status_code=207, headers={"Retry-After": "5"})
    theirs = JSONResponse(content, status_code=207, headers={"Retry-After": "5"})
    assert ours.body == theirs.body
    assert ours.raw_headers == theirs.raw_headers
    assert ours.status_code == theirs.status_code
