"""Raw vote (v1 or v2, as decoded by its writer schema) → the accepted vote (v2 terms).

v1 apps send thermal votes of -1/0/1 (cold/ok/hot); they map onto the ASHRAE
7-point scale as -1→-2, 0→0, 1→+2. The gateway validates too, but the topic is
open to any producer, so the processor checks again and dead-letters what fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from identity.principal import is_valid_id

KINDS = ("thermal", "air", "noise", "light")
PREFERENCES = ("warmer", "no_change", "cooler")
V1_THERMAL = {-1: -2, 0: 0, 1: 2}
_REQUIRED = (
    "tenantId",
    "userRef",
    "voteUuid",
    "buildingId",
    "zoneId",
    "value",
    "clientTs",
    "receivedAt",
    "late",
)


@dataclass(frozen=True)
class Invalid:
    code: str
    message: str


def value_in_range(kind: str, value: int) -> bool:
    if kind == "thermal":
        return -3 <= value <= 3
    return 1 <= value <= 5


def migrate(raw: dict[str, Any]) -> dict[str, Any] | Invalid:
    missing = [f for f in _REQUIRED if raw.get(f) is None]
    if missing:
        return Invalid("invalid_schema", f"missing fields: {', '.join(missing)}")
    version = raw.get("schemaVersion", 1)
    value = raw["value"]
    if isinstance(value, bool) or not isinstance(value, int):
        return Invalid("invalid_schema", "value is not an integer")
    if version == 1:
        kind = raw.get("kind", "thermal")
        if kind != "thermal":
            return Invalid("invalid_value", "v1 votes are thermal only")
        if value not in V1_THERMAL:
            return Invalid("invalid_value", f"v1 thermal value {value} is not -1, 0 or 1")
        if raw.get("preference") is not None:
            return Invalid("invalid_value", "v1 votes carry no preference")
        value = V1_THERMAL[value]
    elif version == 2:
        kind = raw.get("kind")
        if kind not in KINDS:
            return Invalid("invalid_value", f"unknown kind {kind!r}")
        if not value_in_range(kind, value):
            return Invalid("invalid_value", f"{kind} value {value} out of range")
        preference = raw.get("preference")
        if preference is not None and (kind != "thermal" or preference not in PREFERENCES):
            return Invalid("invalid_value", f"preference {preference!r} not allowed for {kind}")
    else:
        return Invalid("invalid_schema", f"unknown schemaVersion {version!r}")
    for ts_field in ("clientTs", "receivedAt"):
        if not isinstance(raw[ts_field], datetime):
            return Invalid("invalid_schema", f"{ts_field} is not a timestamp")
    # Ids become parts of table keys (joined by "|") and Redis keys (after "t:"):
    # anything but the id alphabet would break both.
    bad_ids = [f for f in ("tenantId", "buildingId", "zoneId") if not is_valid_id(raw[f])]
    if bad_ids:
        return Invalid("invalid_value", f"not an id of [A-Za-z0-9_-]{{1,64}}: {', '.join(bad_ids)}")
    if not isinstance(raw["userRef"], str) or not raw["userRef"] or "|" in raw["userRef"]:
        return Invalid("invalid_value", "userRef must be a non-empty string")
    return {
        "tenantId": raw["tenantId"],
        "voteUuid": str(raw["voteUuid"]),
        "buildingId": raw["buildingId"],
        "zoneId": raw["zoneId"],
        "kind": kind,
        "value": value,
        "preference": raw.get("preference") if version == 2 else None,
        "userRef": raw["userRef"],
        "clientTs": raw["clientTs"],
        "receivedAt": raw["receivedAt"],
        "late": bool(raw["late"]),
        "remote": None,
        "deviceId": raw.get("deviceId"),
        "appVersion": raw.get("appVersion"),
        "commentCipher": raw.get("commentCipher"),
        "sourceSchemaVersion": version,
    }


def accepted_shape_error(vote: dict[str, Any]) -> str | None:
    """Why a decoded votes.accepted record is not an accepted vote, or None.

    Schema ids are global, so a record on the topic may carry any registered
    schema; consumers check before they index fields.
    """
    missing = [f for f in (*_REQUIRED, "kind", "sourceSchemaVersion") if vote.get(f) is None]
    if missing:
        return f"missing fields: {', '.join(missing)}"
    if any(not is_valid_id(vote[f]) for f in ("tenantId", "buildingId", "zoneId")):
        return "ids outside [A-Za-z0-9_-]{1,64}"
    kind, value = vote["kind"], vote["value"]
    if kind not in KINDS or isinstance(value, bool) or not isinstance(value, int):
        return f"kind {kind!r} / value {value!r} not a vote"
    if not value_in_range(kind, value):
        return f"{kind} value {value} out of range"
    if not isinstance(vote["clientTs"], datetime) or not isinstance(vote["receivedAt"], datetime):
        return "timestamps missing"
    return None
