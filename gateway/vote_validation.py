"""Per-item validation of the vote contract (brief §5), for app versions 1 and 2.

Role: the gateway runs `validate_item` on every element of a batch (and on a
single vote) before anything is published. Each call yields an `ItemOutcome`,
which becomes one entry of the response; publishable outcomes carry the
`ValidVote` the gateway puts on `votes.raw`. Batch-level steps then refine the
outcomes: `mark_duplicates_in_batch`, `apply_seen` (the gateway's Redis
check), and `reject_uuids` (unavailable when Kafka did not
confirm).

Order of checks in `validate_item`; the first failure wins, so a client sees
the most basic problem first:
1. schema -> invalid_schema: the item is a JSON object, and every field has
   its JSON type and format (UUID, ids, RFC 3339 with an offset,
   schemaVersion 1 or 2). Fields are checked in the order of `_read_fields`.
2. value  -> invalid_value: well-typed but outside the contract (nil UUID,
   kind, value range per kind and version, preference, text lengths, control
   characters and lone surrogates in text).
3. zone   -> unknown_zone (missing, or another tenant's: 404 semantics, §4)
   or forbidden_building (own tenant, outside the token's buildingIds).
4. time   -> future_timestamp or too_old, from `clock_skew.classify`.
5. late   -> late_submission with late=True; otherwise accepted.

Decisions:
- Unknown fields are ignored, never forwarded: a newer app may add fields,
  and only the fields of `ValidVote` reach Kafka. That includes `tenantId` and
  `userId`, which always come from the token.
- For optional fields, JSON null means absent. `schemaVersion` is the
  exception: absent means 1, null is invalid_schema.
- v1 votes are not migrated here; the processor does that. `value` and
  `schema_version` are kept as sent.
- Lengths are counted in code points. Messages never echo client input.

Invariants:
- `validate_item` never raises for any JSON-like `item`.
- `vote is not None` exactly when status is accepted or late_submission
  (the outcome is publishable), and `late` exactly when late_submission.
- A rejected item stays rejected: its own error says more than "duplicate",
  and a rejected item is never published, so it can never be double-counted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from gateway.clock_skew import SkewPolicy, Timeliness, classify, parse_client_ts

MAX_COMMENT_CHARS = 280
MAX_DEVICE_FIELD_CHARS = 128  # deviceId and appVersion

_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
# Nil and max UUIDs are never randomly generated: a client sending one has a
# bug, and accepting it would make all such votes duplicates of each other.
_RESERVED_UUIDS = frozenset(
    {"00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff"}
)
_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
# PostgreSQL text cannot hold NUL, lone surrogates cannot be encoded as UTF-8
# (Avro, psycopg), and control characters corrupt logs and dashboards. A
# comment may keep tab and line breaks; the one-line device fields may not.
_UNSAFE_COMMENT_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_UNSAFE_LINE_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")

_V1_VALUES = frozenset({-1, 0, 1})
_THERMAL_RANGE = range(-3, 4)
_QUALITY_RANGE = range(1, 6)
_PREFERENCES = frozenset({"warmer", "no_change", "cooler"})


class VoteKind(StrEnum):
    thermal = "thermal"
    air = "air"
    noise = "noise"
    light = "light"


_KINDS = frozenset(kind.value for kind in VoteKind)


class ItemStatus(StrEnum):
    accepted = "accepted"
    late_submission = "late_submission"
    duplicate = "duplicate"
    rejected = "rejected"


_PUBLISHABLE = frozenset({ItemStatus.accepted, ItemStatus.late_submission})


class ItemError(StrEnum):
    invalid_schema = "invalid_schema"
    invalid_value = "invalid_value"
    unknown_zone = "unknown_zone"
    forbidden_building = "forbidden_building"
    future_timestamp = "future_timestamp"
    too_old = "too_old"
    rate_limited = "rate_limited"
    unavailable = "unavailable"


class ZoneAccess(StrEnum):
    ok = "ok"
    unknown_zone = "unknown_zone"
    forbidden_building = "forbidden_building"


# (building_id, zone_id) -> access. The caller binds the token's tenant and
# buildingIds, so this module never sees identity.
ZoneLookup = Callable[[str, str], ZoneAccess]


@dataclass(frozen=True)
class ValidVote:
    vote_uuid: str  # canonical lowercase
    building_id: str
    zone_id: str
    kind: VoteKind
    value: int  # as sent: v1 values are migrated by the processor
    preference: str | None
    client_ts: datetime  # aware, with the client's own offset
    device_id: str | None
    app_version: str | None
    comment: str | None
    schema_version: int  # 1 or 2


@dataclass
class ItemOutcome:
    index: int
    vote_uuid: str | None
    status: ItemStatus
    error: ItemError | None = None
    message: str | None = None
    vote: ValidVote | None = None
    late: bool = False

    def __post_init__(self) -> None:
        # The response and the publish step rely on these; break them where made.
        if (self.status is ItemStatus.rejected) != (self.error is not None):
            raise ValueError("error is set exactly when status is rejected")
        if (self.vote is not None) != (self.status in _PUBLISHABLE):
            raise ValueError("vote is set exactly when status is accepted or late_submission")
        if self.late != (self.status is ItemStatus.late_submission):
            raise ValueError("late is set exactly when status is late_submission")

    @property
    def publishable(self) -> bool:
        return self.vote is not None

    def reject(self, error: ItemError, message: str) -> None:
        self.status, self.error, self.message = ItemStatus.rejected, error, message
        self.vote, self.late = None, False

    def mark_duplicate(self) -> None:
        self.status, self.error, self.message = ItemStatus.duplicate, None, None
        self.vote, self.late = None, False

    def to_json(self) -> dict[str, object]:
        result: dict[str, object] = {
            "index": self.index,
            "voteUuid": self.vote_uuid,
            "status": self.status.value,
        }
        if self.error is not None:  # exactly when rejected
            result["error"] = {"code": self.error.value, "message": self.message or ""}
        return result


class _Rejection(Exception):
    """Internal: the first failed check of one item. Never escapes this module."""

    def __init__(self, error: ItemError, message: str) -> None:
        super().__init__(message)
        self.error = error
        self.message = message


def _schema(message: str) -> _Rejection:
    return _Rejection(ItemError.invalid_schema, message)


def _value(message: str) -> _Rejection:
    return _Rejection(ItemError.invalid_value, message)


@dataclass(frozen=True)
class _Fields:
    """Step 1's result: every field has its JSON type; ranges are unchecked."""

    vote_uuid: str
    building_id: str
    zone_id: str
    schema_version: int
    kind: str
    value: int
    preference: str | None
    client_ts: datetime
    device_id: str | None
    app_version: str | None
    comment: str | None


def validate_item(
    index: int,
    item: object,
    *,
    received_at: datetime,
    policy: SkewPolicy,
    zone_lookup: ZoneLookup,
) -> ItemOutcome:
    """Validate one vote object; see the module docstring for the order of checks."""
    if not isinstance(item, dict):
        return _rejected(index, None, _schema("a vote must be a JSON object"))
    # Report the UUID whenever it is well-formed, even if another field fails,
    # so the client can match the result without relying on the index alone.
    vote_uuid = _canonical_uuid(item.get("voteUuid"))
    try:
        fields = _read_fields(item)
        vote = _check_values(fields)
    except _Rejection as rejection:
        return _rejected(index, vote_uuid, rejection)

    access = zone_lookup(vote.building_id, vote.zone_id)
    if access is not ZoneAccess.ok:
        # unknown_zone is one answer for "missing" and "another tenant's" (§4),
        # so the message must not tell them apart either.
        return _rejected(
            index, vote_uuid, _Rejection(ItemError(access.value), _ZONE_MESSAGES[access])
        )

    timeliness = classify(vote.client_ts, received_at, policy)
    if timeliness in _TIME_MESSAGES:
        error = ItemError(timeliness.value)
        return _rejected(index, vote_uuid, _Rejection(error, _TIME_MESSAGES[timeliness]))
    late = timeliness is Timeliness.late
    status = ItemStatus.late_submission if late else ItemStatus.accepted
    return ItemOutcome(index, vote.vote_uuid, status, vote=vote, late=late)


_ZONE_MESSAGES = {
    ZoneAccess.unknown_zone: "zone not found",
    ZoneAccess.forbidden_building: "building is not in the token's buildingIds",
}
_TIME_MESSAGES = {
    Timeliness.future_timestamp: "clientTs is too far ahead of the server's clock",
    Timeliness.too_old: "clientTs is older than this tenant accepts",
}


def _rejected(index: int, vote_uuid: str | None, rejection: _Rejection) -> ItemOutcome:
    return ItemOutcome(
        index, vote_uuid, ItemStatus.rejected, error=rejection.error, message=rejection.message
    )


def _read_fields(item: Mapping[object, object]) -> _Fields:
    vote_uuid = _canonical_uuid(item.get("voteUuid"))
    if vote_uuid is None:
        raise _schema("voteUuid must be a UUID string (8-4-4-4-12 hex)")
    building_id = _read_id(item, "buildingId")
    zone_id = _read_id(item, "zoneId")

    schema_version = item.get("schemaVersion", 1)
    # bool is a subclass of int in Python, but JSON true is not a number.
    # bool is a subclass of int in Python, and 1.0 == 1, but neither is a version.
    if isinstance(schema_version, bool) or not isinstance(schema_version, int):
        raise _schema("schemaVersion must be 1, 2 or absent")
    if schema_version not in (1, 2):
        raise _schema("schemaVersion must be 1, 2 or absent")

    raw_kind = item.get("kind")
    if raw_kind is None:
        if schema_version == 2:
            raise _schema("kind is required")
        raw_kind = VoteKind.thermal.value  # v1 is thermal only
    if not isinstance(raw_kind, str):
        raise _schema("kind must be a string")

    value = item.get("value")
    # JSON true is not a number, nor is 1.0 an integer on this wire.
    if isinstance(value, bool) or not isinstance(value, int):
        raise _schema("value must be an integer (not a boolean, string or float)")

    return _Fields(
        vote_uuid=vote_uuid,
        building_id=building_id,
        zone_id=zone_id,
        schema_version=schema_version,
        kind=raw_kind,
        value=value,
        preference=_read_optional_str(item, "preference"),
        client_ts=_read_client_ts(item.get("clientTs")),
        device_id=_read_optional_str(item, "deviceId"),
        app_version=_read_optional_str(item, "appVersion"),
        comment=_read_optional_str(item, "comment"),
    )


def _check_values(f: _Fields) -> ValidVote:
    if f.vote_uuid in _RESERVED_UUIDS:
        raise _value("voteUuid must not be the nil or max UUID")
    if f.schema_version == 1:
        if f.kind != VoteKind.thermal:
            raise _value("schemaVersion 1 votes are thermal only")
        if f.value not in _V1_VALUES:
            raise _value("a schemaVersion 1 value must be -1, 0 or 1")
        if f.preference is not None:
            raise _value("preference needs schemaVersion 2")
    else:
        if f.kind not in _KINDS:
            raise _value("kind must be thermal, air, noise or light")
        if f.kind == VoteKind.thermal and f.value not in _THERMAL_RANGE:
            raise _value("a thermal value must be between -3 and 3")
        if f.kind != VoteKind.thermal and f.value not in _QUALITY_RANGE:
            raise _value("an air, noise or light value must be between 1 and 5")
        if f.preference is not None:
            if f.kind != VoteKind.thermal:
                raise _value("preference is only allowed for thermal votes")
            if f.preference not in _PREFERENCES:
                raise _value("preference must be warmer, no_change or cooler")
    _check_text("deviceId", f.device_id, MAX_DEVICE_FIELD_CHARS, _UNSAFE_LINE_RE)
    _check_text("appVersion", f.app_version, MAX_DEVICE_FIELD_CHARS, _UNSAFE_LINE_RE)
    _check_text("comment", f.comment, MAX_COMMENT_CHARS, _UNSAFE_COMMENT_RE)
    return ValidVote(
        vote_uuid=f.vote_uuid,
        building_id=f.building_id,
        zone_id=f.zone_id,
        kind=VoteKind(f.kind),
        value=f.value,
        preference=f.preference,
        client_ts=f.client_ts,
        device_id=f.device_id,
        app_version=f.app_version,
        comment=f.comment,
        schema_version=f.schema_version,
    )


def _canonical_uuid(value: object) -> str | None:
    if isinstance(value, str) and _UUID_RE.fullmatch(value):
        return value.lower()
    return None


def _read_id(item: Mapping[object, object], key: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        raise _schema(f"{key} must be 1-64 characters of A-Z, a-z, 0-9, _ or -")
    return value


def _read_optional_str(item: Mapping[object, object], key: str) -> str | None:
    value = item.get(key)
    if value is None or isinstance(value, str):
        return value
    raise _schema(f"{key} must be a string or absent")


def _read_client_ts(value: object) -> datetime:
    try:
        if isinstance(value, str):
            return parse_client_ts(value)
    except ValueError:
        pass
    raise _schema("clientTs must be an RFC 3339 date-time with an offset")


def _check_text(key: str, value: str | None, max_chars: int, unsafe: re.Pattern[str]) -> None:
    if value is None:
        return
    if len(value) > max_chars:
        raise _value(f"{key} must be at most {max_chars} characters")
    if unsafe.search(value):
        raise _value(f"{key} contains control characters or invalid Unicode")


def mark_duplicates_in_batch(outcomes: Iterable[ItemOutcome]) -> None:
    """A later item repeating an earlier publishable item's voteUuid becomes `duplicate`.

    Run right after validation, before `apply_seen` and `reject_uuids`.
    """
    first_seen: set[str] = set()
    for outcome in outcomes:
        if not outcome.publishable or outcome.vote_uuid is None:
            continue
        if outcome.vote_uuid in first_seen:
            outcome.mark_duplicate()
        else:
            first_seen.add(outcome.vote_uuid)


def apply_seen(outcomes: Iterable[ItemOutcome], seen_uuids: Collection[str]) -> None:
    """Publishable items whose voteUuid the gateway already published become `duplicate`.

    `seen_uuids` is the answer of the gateway's one Redis round trip. It is
    report-only: the processor's dedup table is authoritative.
    """
    for outcome in outcomes:
        if outcome.publishable and outcome.vote_uuid in seen_uuids:
            outcome.mark_duplicate()


def reject_uuids(
    outcomes: Iterable[ItemOutcome], uuids: Collection[str], error: ItemError, message: str
) -> None:
    """Reject every non-rejected item whose voteUuid is in `uuids` (rate_limited, unavailable).

    In-batch duplicates of a rejected vote are rejected with it: "duplicate"
    promises the vote is durably in Kafka, which an undelivered vote is not.
    Items `apply_seen` marked are never published, so they are not in `uuids`.
    """
    for outcome in outcomes:
        if outcome.status is not ItemStatus.rejected and outcome.vote_uuid in uuids:
            outcome.reject(error, message)


def counts(outcomes: Iterable[ItemOutcome]) -> dict[str, int]:
    """The response's `counts`: every status key, zero included."""
    totals = {status.value: 0 for status in ItemStatus}
    for outcome in outcomes:
        totals[outcome.status.value] += 1
    return totals
