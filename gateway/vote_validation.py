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
   schemaVersion 1 or 2). Fields are checked in the order of `_read_vote`.
2. value  -> invalid_value: well-typed but outside the contract (nil UUID,
   kind, value range per kind and version, preference, text lengths, control
   characters and lone surrogates in text, invisible formatting characters in
   deviceId and appVersion; see "Free text" below).
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

Free text: invisible formatting characters, bidi controls (U+202A-U+202E,
U+2066-U+2069, U+200E, U+200F, U+061C) and zero-width characters (U+200B-U+200D,
U+2060, U+FEFF), can reorder or hide what a dashboard, an export or a log shows
(spoofed text, "Trojan Source"), and make equal-looking strings differ. Per field:
- `comment` (a person's words): they are stripped, and the vote is kept. Phone
  keyboards put them there themselves (marks in Arabic and Hebrew text, ZWJ in
  emoji sequences, ZWNJ in Persian, a BOM from a paste), so refusing would throw
  away a rating for a character its author never saw. The cost: an emoji ZWJ
  sequence is stored as its parts. The 280-character limit applies to the
  comment as sent, so stripping only ever shortens an accepted comment.
- `deviceId`, `appVersion` (identifiers the app generates): refused with
  invalid_value. Operators match and group by them exactly; none legitimately
  holds such a character, and silently editing one could make two devices' ids
  equal.
- Every other string field is a closed set or a strict format (voteUuid,
  buildingId, zoneId, kind, preference, clientTs), which such a character already
  fails: invalid_schema or invalid_value, as for any other wrong character.

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
from typing import NamedTuple

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
# Bidi controls U+061C, U+200E-U+200F, U+202A-U+202E, U+2066-U+2069, and
# zero-width U+200B-U+200D, U+2060, U+FEFF ("Free text" above).
_INVISIBLE_RE = re.compile("[\u061c\u200b-\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff]")

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
_KIND_BY_NAME = {kind.value: kind for kind in VoteKind}


class ItemStatus(StrEnum):
    accepted = "accepted"
    late_submission = "late_submission"
    duplicate = "duplicate"
    rejected = "rejected"


# Plain str values for the response, so any encoder writes the same bytes.
_STATUS_TEXT = {status: status.value for status in ItemStatus}


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


class ValidVote(NamedTuple):
    """A vote that passed every check: what the gateway publishes (immutable).

    A NamedTuple rather than a frozen dataclass: one is built per accepted vote,
    and a frozen dataclass costs three times as much to build.
    """

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


@dataclass(slots=True)
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
        # Identity tests only: an enum's hash runs Python code, and this runs per item.
        status = self.status
        late = status is ItemStatus.late_submission
        if (status is ItemStatus.rejected) != (self.error is not None):
            raise ValueError("error is set exactly when status is rejected")
        if (self.vote is not None) != (late or status is ItemStatus.accepted):
            raise ValueError("vote is set exactly when status is accepted or late_submission")
        if self.late != late:
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
            "status": _STATUS_TEXT[self.status],
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
        vote = _read_vote(item, vote_uuid)
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


def _read_vote(item: Mapping[object, object], vote_uuid: str | None) -> ValidVote:
    """Steps 1 (schema) and 2 (value) of the module docstring, in that order.

    Every schema check runs before any value check, so an item with both kinds
    of fault is answered invalid_schema. One pass builds the vote directly: this
    runs for every item of every batch.
    """
    # --- 1. schema: every field has its JSON type and format, in this order.
    if vote_uuid is None:
        raise _schema("voteUuid must be a UUID string (8-4-4-4-12 hex)")
    get = item.get
    building_id = _read_id(get("buildingId"), "buildingId")
    zone_id = _read_id(get("zoneId"), "zoneId")

    schema_version = get("schemaVersion", 1)
    # bool is a subclass of int in Python, and 1.0 == 1, but neither is a version.
    if type(schema_version) is not int or schema_version not in (1, 2):
        raise _schema("schemaVersion must be 1, 2 or absent")

    kind = get("kind")
    if kind is None:
        if schema_version == 2:
            raise _schema("kind is required")
        kind = VoteKind.thermal.value  # v1 is thermal only
    if not isinstance(kind, str):
        raise _schema("kind must be a string")

    value = get("value")
    # JSON true is not a number, nor is 1.0 an integer on this wire. `type() is
    # int` refuses bool (a subclass) and float alike; JSON parsers give plain ints.
    if type(value) is not int:
        raise _schema("value must be an integer (not a boolean, string or float)")

    preference = _read_optional_str(get("preference"), "preference")
    client_ts = _read_client_ts(get("clientTs"))
    device_id = _read_optional_str(get("deviceId"), "deviceId")
    app_version = _read_optional_str(get("appVersion"), "appVersion")
    comment = _read_optional_str(get("comment"), "comment")

    # --- 2. value: well-typed, but inside the contract?
    if vote_uuid in _RESERVED_UUIDS:
        raise _value("voteUuid must not be the nil or max UUID")
    if schema_version == 1:
        if kind != VoteKind.thermal:
            raise _value("schemaVersion 1 votes are thermal only")
        if value not in _V1_VALUES:
            raise _value("a schemaVersion 1 value must be -1, 0 or 1")
        if preference is not None:
            raise _value("preference needs schemaVersion 2")
    else:
        if kind not in _KINDS:
            raise _value("kind must be thermal, air, noise or light")
        if kind == VoteKind.thermal:
            if value not in _THERMAL_RANGE:
                raise _value("a thermal value must be between -3 and 3")
        elif value not in _QUALITY_RANGE:
            raise _value("an air, noise or light value must be between 1 and 5")
        if preference is not None:
            if kind != VoteKind.thermal:
                raise _value("preference is only allowed for thermal votes")
            if preference not in _PREFERENCES:
                raise _value("preference must be warmer, no_change or cooler")
    _check_text("deviceId", device_id, MAX_DEVICE_FIELD_CHARS, _UNSAFE_LINE_RE)
    _check_text("appVersion", app_version, MAX_DEVICE_FIELD_CHARS, _UNSAFE_LINE_RE)
    _refuse_invisible("deviceId", device_id)
    _refuse_invisible("appVersion", app_version)
    _check_text("comment", comment, MAX_COMMENT_CHARS, _UNSAFE_COMMENT_RE)
    if comment is not None:
        comment = strip_invisible(comment)
    return ValidVote(
        vote_uuid=vote_uuid,
        building_id=building_id,
        zone_id=zone_id,
        kind=_KIND_BY_NAME[kind],
        value=value,
        preference=preference,
        client_ts=client_ts,
        device_id=device_id,
        app_version=app_version,
        comment=comment,
        schema_version=schema_version,
    )


def _canonical_uuid(value: object) -> str | None:
    if isinstance(value, str) and _UUID_RE.fullmatch(value):
        return value.lower()
    return None


def _read_id(value: object, key: str) -> str:
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        raise _schema(f"{key} must be 1-64 characters of A-Z, a-z, 0-9, _ or -")
    return value


def _read_optional_str(value: object, key: str) -> str | None:
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


def _refuse_invisible(key: str, value: str | None) -> None:
    if value is not None and _INVISIBLE_RE.search(value):
        raise _value(f"{key} contains invisible formatting characters (bidi or zero-width)")


def strip_invisible(text: str) -> str:
    """`text` without bidi controls and zero-width characters (the comment's policy)."""
    return _INVISIBLE_RE.sub("", text)


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
        totals[_STATUS_TEXT[outcome.status]] += 1
    return totals
