"""Vote payloads for the integration tests: what an app would send."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any


def vote(
    zone: str,
    value: int,
    kind: str = "thermal",
    *,
    building: str = "b1",
    minutes_ago: float = 1.0,
    version: int = 2,
    **extra: Any,
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "voteUuid": str(uuid.uuid4()),
        "buildingId": building,
        "zoneId": zone,
        "value": value,
        "clientTs": (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat(),
    }
    if version == 2:
        item["kind"] = kind
        item["schemaVersion"] = 2
    else:
        item["schemaVersion"] = 1
    item.update(extra)
    return item
