"""Checks on admin request bodies. Pure: a failure is a RequestRejected with its code.

Names are free text shown to people, so besides a length they may hold no control
characters and no bidi or zero-width format characters (Unicode category Cf), which
could make a name display as something other than what it is.
"""

from __future__ import annotations

import unicodedata

from gateway.batch_request import RequestRejected
from identity.principal import is_valid_id

MAX_NAME_CHARS = 200


def text_id(body: dict[str, object], field: str) -> str:
    value = body.get(field)
    if not is_valid_id(value):
        raise RequestRejected(422, "invalid_id", f"{field} must be 1 to 64 of [A-Za-z0-9_-]")
    return value


def name(body: dict[str, object], field: str = "name") -> str:
    value = body.get(field)
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME_CHARS:
        raise RequestRejected(
            422, "invalid_name", f"{field} must be a string of 1 to {MAX_NAME_CHARS} characters"
        )
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in value):
        raise RequestRejected(
            422, "invalid_name", f"{field} may not hold control, format or unassigned characters"
        )
    if value != value.strip():
        raise RequestRejected(422, "invalid_name", f"{field} may not start or end with spaces")
    return value


def id_list(body: dict[str, object], field: str, max_items: int = 1000) -> list[str]:
    value = body.get(field, [])
    if (
        not isinstance(value, list)
        or len(value) > max_items
        or not all(is_valid_id(v) for v in value)
    ):
        raise RequestRejected(422, "invalid_id", f"{field} must be a list of ids")
    return sorted(set(value))


def optional_text(body: dict[str, object], field: str, max_chars: int = 320) -> str | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= max_chars:
        raise RequestRejected(422, "invalid_request", f"{field} must be 1 to {max_chars} chars")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in value):
        raise RequestRejected(422, "invalid_request", f"{field} may not hold control characters")
    return value
