"""The SSE route's resume rules: which Last-Event-IDs are trusted, and missed events
read in bounded XRANGE pages (against an in-memory stand-in for the stream)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.stream_routes import MAX_ID_PART, RESUME_PAGE, _missed_events, resume_id

MAX_ID = f"{MAX_ID_PART}-{MAX_ID_PART}"


@pytest.mark.parametrize(
    ("raw", "newest", "expected"),
    [
        ("5-3", "10-0", "5-3"),
        ("10-0", "10-0", "10-0"),  # the newest itself: nothing missed
        ("0-0", "0-0", "0-0"),  # an empty stream
        ("007-01", "10-0", "7-1"),  # canonical, as Redis would write it
        (MAX_ID, MAX_ID, MAX_ID),
    ],
)
def test_an_id_the_stream_could_have_sent_is_kept(raw: str, newest: str, expected: str) -> None:
    assert resume_id(raw, newest) == expected


@pytest.mark.parametrize(
    ("raw", "newest"),
    [
        ("10-1", "10-0"),  # after the newest entry
        ("11-0", "10-5"),
        ("1-0", "0-0"),  # anything, once the stream is empty
        ("4102444800000-0", "1767225600000-0"),  # 2100-01-01: the future
        (f"{MAX_ID_PART + 1}-0", MAX_ID),  # 2**64: not a 64-bit number
        (f"0-{MAX_ID_PART + 1}", MAX_ID),
        ("99999999999999999999-0", MAX_ID),  # 20 digits, still too big
        ("1" * 21 + "-0", MAX_ID),
        ("1" * 5000 + "-0", MAX_ID),
    ],
)
def test_an_id_beyond_the_stream_or_64_bits_is_refused(raw: str, newest: str) -> None:
    assert resume_id(raw, newest) is None


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "abc",
        "1",
        "1-",
        "-1",
        "1-2-3",
        " 1-2",
        "1-2\n",
        "+1-2",
        "1_0-0",
        "\uff11-\uff12",
        "1-*",
    ],
)
def test_a_malformed_id_is_refused(raw: str | None) -> None:
    assert resume_id(raw, MAX_ID) is None


ids = st.tuples(st.integers(0, 2**70), st.integers(0, 2**70))


@given(raw=st.text(max_size=50) | ids.map(lambda p: f"{p[0]}-{p[1]}"), newest=ids)
def test_resume_id_never_raises_and_keeps_only_ids_up_to_the_newest(
    raw: str, newest: tuple[int, int]
) -> None:
    newest = (min(newest[0], MAX_ID_PART), min(newest[1], MAX_ID_PART))
    kept = resume_id(raw, f"{newest[0]}-{newest[1]}")
    if kept is not None:
        ms, seq = (int(part) for part in kept.split("-"))
        assert (ms, seq) <= newest
        assert f"{ms}-{seq}" == kept


class FakeStream:
    """XRANGE over sorted "ms-0" ids, recording every call's arguments."""

    def __init__(self, count: int) -> None:
        self.entries = [(f"{ms}-0", {"data": str(ms)}) for ms in range(1, count + 1)]
        self.calls: list[dict[str, Any]] = []

    async def xrange(
        self, key: str, min: str, max: str, count: int | None = None
    ) -> list[tuple[str, dict[str, str]]]:
        self.calls.append({"min": min, "max": max, "count": count})
        assert min.startswith("(")
        low, high = int(min[1:].split("-")[0]), int(max.split("-")[0])
        page = [e for e in self.entries if low < int(e[0].split("-")[0]) <= high]
        return page if count is None else page[:count]


def _read_missed(stream: FakeStream, after: str, until: str) -> list[str]:
    async def collect() -> list[str]:
        return [entry[0] async for entry in _missed_events(stream, "k", after, until)]

    return asyncio.run(collect())


@pytest.mark.parametrize("missed", [0, 1, RESUME_PAGE - 1, RESUME_PAGE, RESUME_PAGE + 1, 1234])
def test_missed_events_come_in_pages_of_at_most_resume_page(missed: int) -> None:
    stream = FakeStream(2000)
    after, until = "100-0", f"{100 + missed}-0"
    got = _read_missed(stream, after, until)

    assert got == [f"{ms}-0" for ms in range(101, 101 + missed)]
    assert all(call["count"] == RESUME_PAGE for call in stream.calls)
    # A short page, or a page that reaches `until`, ends the read: no empty query.
    pages = -(-missed // RESUME_PAGE)
    # Each page starts after the last id of the one before.
    assert [call["min"] for call in stream.calls] == [
        f"({100 + RESUME_PAGE * i}-0" for i in range(pages)
    ]


def test_entries_after_until_are_left_to_the_live_feed() -> None:
    stream = FakeStream(50)
    assert _read_missed(stream, "10-0", "20-0") == [f"{ms}-0" for ms in range(11, 21)]
    assert {call["max"] for call in stream.calls} == {"20-0"}


def test_nothing_is_queried_when_nothing_can_be_missed() -> None:
    stream = FakeStream(50)
    assert _read_missed(stream, "20-0", "20-0") == []
    assert stream.calls == []
