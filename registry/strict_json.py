"""Strict JSON for untrusted input (pure: no I/O).

Python's `json` module accepts input that later fails far from the parser, as a
500: deep nesting (RecursionError), integer literals over 4300 digits (a plain
ValueError), escaped lone surrogates (UnicodeEncodeError once the text is
encoded), `NaN` and `Infinity` (not JSON, and unreadable by other clients).
`loads` refuses all of these with one error type. What it accepts is I-JSON
(RFC 7493: UTF-8, no lone surrogates, unique member names, numbers a double can
hold), nested at most `MAX_JSON_DEPTH` levels.

The nesting is measured before parsing, so a deep document is refused without
building it, and the parser never gets near the recursion limit.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

from registry.limits import MAX_INT_DIGITS, MAX_JSON_DEPTH

# A JSON string literal, quotes included. The unrolled form never backtracks,
# so a 1 MiB string costs one linear pass.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
# `\uD800`-`\uDFFF` escapes: only text holding one can decode to a lone surrogate.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_RAW_SURROGATE = re.compile("[\ud800-\udfff]")
_PREVIEW_CHARS = 40


class JsonRejected(ValueError):
    """The input is not strict JSON; the message says why."""


def loads(data: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse `data` as strict JSON; raises `JsonRejected`."""
    text = _text(data)
    depth = nesting_depth(text)
    if depth > max_depth:
        raise JsonRejected(f"JSON nested {depth} levels deep; at most {max_depth} are accepted")
    try:
        value = json.loads(
            text,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_reject_constant,
            object_pairs_hook=_unique_members,
        )
    except JsonRejected:
        raise
    except json.JSONDecodeError as exc:
        raise JsonRejected(f"malformed JSON: {exc}") from exc
    if _SURROGATE_ESCAPE.search(text):
        _reject_lone_surrogates(value)
    return value


def nesting_depth(text: str) -> int:
    """The deepest nesting of objects and arrays in `text`, strings skipped.

    Exact for valid JSON. For invalid JSON it is never below the depth the
    parser reaches before it stops at the first error, since up to that point
    both see the same strings and the same brackets in the same order.
    """
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets), initial=0))


def preview(text: str) -> str:
    """`text` quoted for an error message, cut short if long."""
    if len(text) <= _PREVIEW_CHARS:
        return repr(text)
    return f"{text[:_PREVIEW_CHARS]!r}... ({len(text)} characters)"


def _text(data: bytes | str) -> str:
    if isinstance(data, bytes):
        try:
            # Strict UTF-8 also refuses encoded surrogates (CESU-8).
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JsonRejected(f"not UTF-8: {exc.reason} at byte {exc.start}") from exc
    if _RAW_SURROGATE.search(data):
        raise JsonRejected("text holds a lone surrogate, which is not Unicode text")
    return data


def _parse_int(literal: str) -> int:
    digits = len(literal) - literal.startswith("-")
    if digits > MAX_INT_DIGITS:
        raise JsonRejected(f"integer of {digits} digits; at most {MAX_INT_DIGITS} are accepted")
    return int(literal)


def _parse_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise JsonRejected(f"number {preview(literal)} is out of a double's range")
    return value


def _reject_constant(name: str) -> Any:
    raise JsonRejected(f"{name} is not a JSON value")


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Duplicate names mean different things to different parsers (first or
    # last wins), so what the registry validated could differ from what a
    # client reads.
    members: dict[str, Any] = {}
    for name, value in pairs:
        if name in members:
            raise JsonRejected(f"member name {preview(name)} appears twice in one object")
        members[name] = value
    return members


def _reject_lone_surrogates(value: Any) -> None:
    # Encoding the whole value walks every key and string in C; a surrogate
    # pair escape decodes to one valid character and passes.
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise JsonRejected("a string holds a lone surrogate escape, which is not Unicode") from exc
