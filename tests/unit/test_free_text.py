"""Invisible formatting characters in a vote's free text: stripped from the comment,
refused in deviceId and appVersion, and failing every strictly formatted field."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.vote_validation import ItemError, ItemStatus, strip_invisible
from tests.unit.test_vote_validation import check, item

# Listed by code point, independently of the module's pattern.
BIDI_CONTROLS = {
    "LRE U+202A": "\u202a",
    "RLE U+202B": "\u202b",
    "PDF U+202C": "\u202c",
    "LRO U+202D": "\u202d",
    "RLO U+202E": "\u202e",
    "LRI U+2066": "\u2066",
    "RLI U+2067": "\u2067",
    "FSI U+2068": "\u2068",
    "PDI U+2069": "\u2069",
    "LRM U+200E": "\u200e",
    "RLM U+200F": "\u200f",
    "ALM U+061C": "\u061c",
}
ZERO_WIDTH = {
    "ZWSP U+200B": "\u200b",
    "ZWNJ U+200C": "\u200c",
    "ZWJ U+200D": "\u200d",
    "WJ U+2060": "\u2060",
    "BOM U+FEFF": "\ufeff",
}
INVISIBLE = {**BIDI_CONTROLS, **ZERO_WIDTH}
# Where in the text: a spoof needs it in the middle, padding sits at the ends.
PLACES = {
    "start": lambda c: f"{c}pixel-8",
    "middle": lambda c: f"pix{c}el-8",
    "end": lambda c: f"pixel-8{c}",
    "alone": lambda c: c,
}
invisible_cases = pytest.mark.parametrize("char", INVISIBLE.values(), ids=INVISIBLE.keys())
place_cases = pytest.mark.parametrize("place", PLACES.values(), ids=PLACES.keys())


# --- comment: stripped, vote kept -------------------------------------------------------------


@invisible_cases
@place_cases
def test_comment_is_accepted_without_the_character(char: str, place: object) -> None:
    sent = place(char)  # type: ignore[operator]
    outcome = check(item(comment=sent))
    assert outcome.status is ItemStatus.accepted
    assert outcome.vote is not None
    assert outcome.vote.comment == sent.replace(char, "")


def test_a_trojan_source_comment_loses_its_overrides_but_keeps_its_text() -> None:
    # Renders as "too cold" on a bidi-aware dashboard, while the stored text says otherwise.
    sent = "\u202etoo hot\u202c \u2066fine\u2069 \u200f\ufeff"
    outcome = check(item(comment=sent))
    assert outcome.vote is not None and outcome.vote.comment == "too hot fine "


def test_rtl_comment_keeps_its_letters() -> None:
    sent = "\u200fالجو حار\u200f \u061cجدا"  # noqa: RUF001 (Arabic on purpose)
    outcome = check(item(comment=sent))
    assert outcome.vote is not None and outcome.vote.comment == "الجو حار جدا"


def test_emoji_zwj_sequence_is_stored_as_its_parts() -> None:
    family = "\N{MAN}\u200d\N{WOMAN}\u200d\N{GIRL}"
    outcome = check(item(comment=family))
    assert outcome.vote is not None and outcome.vote.comment == "\N{MAN}\N{WOMAN}\N{GIRL}"


def test_comment_length_counts_the_characters_as_sent() -> None:
    # 280 as sent is accepted (and shorter once stripped); 281 as sent is not.
    accepted = check(item(comment="x" * 270 + "\u200b" * 10))
    assert accepted.vote is not None and accepted.vote.comment == "x" * 270
    assert check(item(comment="x" * 271 + "\u200b" * 10)).error is ItemError.invalid_value


def test_control_characters_are_still_refused_in_a_comment_with_invisible_ones() -> None:
    assert check(item(comment="\u200bok\x00")).error is ItemError.invalid_value


@given(st.text())
def test_stripping_removes_exactly_the_listed_characters(text: str) -> None:
    stripped = strip_invisible(text)
    assert not set(stripped) & set(INVISIBLE.values())
    assert stripped == "".join(c for c in text if c not in INVISIBLE.values())


# --- deviceId and appVersion: refused ---------------------------------------------------------


@pytest.mark.parametrize("field", ["deviceId", "appVersion"])
@invisible_cases
@place_cases
def test_device_field_with_the_character_is_invalid_value(
    field: str, char: str, place: object
) -> None:
    sent = place(char)  # type: ignore[operator]
    outcome = check(item(**{field: sent}))
    assert outcome.status is ItemStatus.rejected
    assert outcome.error is ItemError.invalid_value
    assert (
        outcome.message == f"{field} contains invisible formatting characters (bidi or zero-width)"
    )
    assert char not in (outcome.message or "")


@pytest.mark.parametrize("field", ["deviceId", "appVersion"])
def test_device_field_without_them_is_accepted(field: str) -> None:
    # Positive control: the same value minus the character passes.
    outcome = check(item(**{field: "pixel-8"}))
    assert outcome.status is ItemStatus.accepted


# --- strictly formatted fields: already refused by their format -------------------------------


@invisible_cases
@pytest.mark.parametrize(
    ("field", "valid", "error"),
    [
        ("voteUuid", "6f1c2a4e-8b3d-4f5a-9c7e-1d2b3a4c5e6f", ItemError.invalid_schema),
        ("buildingId", "hq", ItemError.invalid_schema),
        ("zoneId", "3F-East", ItemError.invalid_schema),
        ("clientTs", "2026-03-10T11:59:00Z", ItemError.invalid_schema),
        ("kind", "thermal", ItemError.invalid_value),
        ("preference", "cooler", ItemError.invalid_value),
    ],
)
def test_formatted_field_with_the_character_is_refused(
    char: str, field: str, valid: str, error: ItemError
) -> None:
    assert check(item(**{field: valid})).status is ItemStatus.accepted
    for sent in (char + valid, valid[:2] + char + valid[2:], valid + char):
        assert check(item(**{field: sent})).error is error
