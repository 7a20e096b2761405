"""Whole-request checks for the vote endpoints, in the brief's order of precedence (§5).

Role: the vote routes call `parse_batch` (POST /api/v1/votes/batch) or
`parse_single` (POST /api/v1/votes) on the raw body after authentication
(401 is the caller's, and comes first) and before any item is validated.
A whole-request failure raises `RequestRejected`; nothing is accepted.

Precedence, first match wins:
1. 413 body_too_large: the byte cap, checked before a single byte is parsed.
2. 400 malformed_json: not UTF-8, not JSON, NaN/Infinity, a duplicate key in
   any object (parsers disagree on which copy wins, so it is ambiguous), or
   nesting or number literals too large for the parser.
3. 422 invalid_request: the wrong shape (not an object; no `items` list), or
   zero items.
4. 413 batch_too_large: more than `max_items` items.
429 and 503 (empty rate budget, no broker) are decided by the caller after
these, with the same `RequestRejected` and a `retry_after_s`.

Size caps: `MAX_ITEM_BYTES` (8 KiB) exceeds the largest legal vote even
when every character of its longest text fields (comment 280, deviceId and
appVersion 128 each) is an astral code point written as a \\uXXXX\\uXXXX
escape pair (about 7 KiB). So `MAX_BODY_BYTES` = 100 * 8 KiB never refuses a
legal batch, while bounding what one request can make the parser do.

Pure: takes bytes, returns parsed JSON values or raises; no HTTP library.
"""

from __future__ import annotations

import json
from typing import NoReturn

from gateway.vote_validation import ItemError, ItemOutcome, ItemStatus

MAX_ITEMS = 100
MAX_ITEM_BYTES = 8 * 1024
MAX_BODY_BYTES = MAX_ITEMS * MAX_ITEM_BYTES
MAX_SINGLE_BODY_BYTES = MAX_ITEM_BYTES


class RequestRejected(Exception):
    """A whole-request failure: the HTTP status, an actionable code, a message."""

    def __init__(
        self, status: int, code: str, message: str, *, retry_after_s: int | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        # For 429 and 503: the caller sends it as the Retry-After header.
        self.retry_after_s = retry_after_s

    def to_json(self) -> dict[str, object]:
        return {"error": {"code": self.code, "message": self.message}}


class _DuplicateKey(ValueError):
    pass


def parse_batch(
    body: bytes, *, max_items: int = MAX_ITEMS, max_body_bytes: int = MAX_BODY_BYTES
) -> list[object]:
    """Return the batch's items, or raise `RequestRejected` (see the precedence above)."""
    document = _parse_json(body, max_body_bytes)
    if not isinstance(document, dict):
        raise _invalid_request("the body must be a JSON object with an items list")
    items = document.get("items")
    if not isinstance(items, list):
        raise _invalid_request("the body must be a JSON object with an items list")
    if not items:
        raise _invalid_request("items must hold at least one vote")
    if len(items) > max_items:
        raise RequestRejected(413, "batch_too_large", f"a batch holds at most {max_items} votes")
    return items


def parse_single(body: bytes, *, max_body_bytes: int = MAX_SINGLE_BODY_BYTES) -> object:
    """Return the one vote object, or raise `RequestRejected` (413, 400, 422)."""
    document = _parse_json(body, max_body_bytes)
    if not isinstance(document, dict):
        raise _invalid_request("the body must be one vote, a JSON object")
    return document


def single_vote_status(outcome: ItemOutcome) -> int:
    """The HTTP status of POST /api/v1/votes for this item's outcome."""
    if outcome.status in (ItemStatus.accepted, ItemStatus.late_submission):
        return 202
    if outcome.status is ItemStatus.duplicate:
        # The vote is durably in Kafka already: success, but nothing new was created.
        return 200
    if outcome.error is None:
        raise ValueError("a rejected outcome must carry its error")
    return _SINGLE_ERROR_STATUS.get(outcome.error, 422)


def single_vote_error(outcome: ItemOutcome) -> RequestRejected:
    """The error answer for a rejected single vote: its status, the item's code and message.

    Success answers (202, 200) carry `outcome.to_json()` instead.
    """
    if outcome.error is None:
        raise ValueError("only a rejected outcome has an error answer")
    status = single_vote_status(outcome)
    # 503 and 429 tell the app when to come back, as the whole-request ones do.
    retry_after = 5 if status in (429, 503) else None
    return RequestRejected(
        status, outcome.error.value, outcome.message or "", retry_after_s=retry_after
    )


_SINGLE_ERROR_STATUS = {
    # 404 and 403 follow brief §4: another tenant's zone is indistinguishable
    # from a missing one; an own building outside buildingIds is forbidden.
    ItemError.unknown_zone: 404,
    ItemError.forbidden_building: 403,
    ItemError.rate_limited: 429,
    ItemError.unavailable: 503,
}


def parse_json_object(body: bytes, max_body_bytes: int) -> dict[str, object]:
    """A JSON object body (auth and admin routes), or RequestRejected 400/413."""
    document = _parse_json(body, max_body_bytes)
    if not isinstance(document, dict):
        raise _invalid_request("the body must be a JSON object")
    return document


def _parse_json(body: bytes, max_body_bytes: int) -> object:
    if len(body) > max_body_bytes:
        raise RequestRejected(
            413, "body_too_large", f"the body must be at most {max_body_bytes} bytes"
        )
    try:
        # Decode explicitly: json.loads(bytes) would also guess UTF-16 and UTF-32.
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _malformed("the body is not UTF-8") from None
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
    except _DuplicateKey:
        raise _malformed("a JSON object repeats a key") from None
    except RecursionError:
        raise _malformed("the JSON is nested too deeply") from None
    except ValueError:
        # JSONDecodeError, NaN/Infinity, and integers beyond Python's digit limit.
        raise _malformed("the body is not valid JSON") from None


def _reject_constant(name: str) -> NoReturn:
    # NaN and Infinity are JavaScript, not JSON (RFC 8259).
    raise ValueError(f"{name} is not JSON")


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _DuplicateKey("duplicate key")
    return result


def _malformed(message: str) -> RequestRejected:
    return RequestRejected(400, "malformed_json", message)


def _invalid_request(message: str) -> RequestRejected:
    return RequestRejected(422, "invalid_request", message)
