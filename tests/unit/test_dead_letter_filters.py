"""Which letters a set of `sbp replay dlq` options selects, and how `dlq list` counts them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from replay.dead_letters import DeadLetter, LetterFilter
from replay.dlq_summary import DlqSummary

T0 = datetime(2026, 11, 29, 17, 0, tzinfo=UTC)


def letter(
    code: str = "undecodable",
    *,
    topic: str = "votes.raw",
    partition: int = 3,
    at: datetime = T0,
    attempts: int = 1,
    group: str = "sbp-worker",
    dlq_offset: int = 0,
) -> DeadLetter:
    return DeadLetter(
        dlq_partition=partition,
        dlq_offset=dlq_offset,
        original_topic=topic,
        original_partition=partition,
        original_offset=41,
        key=b"acme|hq|3F",
        value=b"\x00\x00\x00\x00\x07junk",
        headers=[("traceparent", b"00-1-2-01")],
        error_code=code,
        error_message="boom",
        failed_at=at,
        attempts=attempts,
        consumer_group=group,
    )


def test_no_option_selects_every_letter() -> None:
    assert LetterFilter.of().matches(letter())


def test_each_option_narrows_the_selection_and_all_must_hold() -> None:
    chosen = LetterFilter.of(
        reasons=["wrong_key", "undecodable"],
        topics=["votes.raw"],
        partitions=[3],
        groups=["sbp-worker"],
    )
    assert chosen.matches(letter("wrong_key"))
    assert not chosen.matches(letter("unknown_schema_id"))
    assert not chosen.matches(letter(topic="votes.accepted"))
    assert not chosen.matches(letter(partition=4))
    assert not chosen.matches(letter(group="sbp-pg-sink"))


def test_since_is_inclusive_and_until_exclusive_so_windows_do_not_overlap() -> None:
    first = LetterFilter.of(since=T0 - timedelta(hours=1), until=T0)
    second = LetterFilter.of(since=T0, until=T0 + timedelta(hours=1))
    at_boundary = letter(at=T0)
    assert (first.matches(at_boundary), second.matches(at_boundary)) == (False, True)


def test_times_in_other_zones_compare_as_instants() -> None:
    paris = timezone(timedelta(hours=1))
    chosen = LetterFilter.of(since=datetime(2026, 11, 29, 18, 0, tzinfo=paris))
    assert chosen.matches(letter(at=T0))
    assert not chosen.matches(letter(at=T0 - timedelta(milliseconds=1)))


@pytest.mark.parametrize(
    ("since", "until", "why"),
    [
        (datetime(2026, 11, 29, 17, 0), None, "UTC offset"),
        (None, datetime(2026, 11, 29, 17, 0), "UTC offset"),
        (T0, T0, "later than --since"),
    ],
)
def test_a_filter_that_cannot_mean_what_was_meant_is_refused(
    since: datetime | None, until: datetime | None, why: str
) -> None:
    with pytest.raises(ValueError, match=why):
        LetterFilter.of(since=since, until=until)


def test_the_filter_describes_only_what_was_given() -> None:
    assert LetterFilter.of().describe() == {}
    assert LetterFilter.of(reasons=["b", "a"], since=T0).describe() == {
        "reasons": ["a", "b"],
        "since": T0.isoformat(),
    }


def test_a_letter_describes_its_bytes_in_base64_and_its_key_as_text() -> None:
    described = letter().describe()
    assert described["key"] == "acme|hq|3F"
    assert described["valueBase64"] == "AAAAAAdqdW5r"
    assert described["headers"] == [{"key": "traceparent", "valueBase64": "MDAtMS0yLTAx"}]
    assert described["original"] == {"topic": "votes.raw", "partition": 3, "offset": 41}


def test_a_letter_is_read_back_from_its_envelope() -> None:
    envelope = {
        "originalTopic": "votes.accepted",
        "originalPartition": 5,
        "originalOffset": 9,
        "originalKey": None,
        "originalValue": b"v",
        "originalHeaders": [{"key": "h", "value": None}],
        "errorCode": "unknown_tenant",
        "errorMessage": "no schema",
        "failedAt": T0,
        "attempts": 2,
        "consumerGroup": "sbp-pg-sink",
    }
    read = DeadLetter.from_envelope(7, 100, envelope)
    assert (read.dlq_partition, read.dlq_offset, read.headers) == (7, 100, [("h", None)])
    assert (read.original_topic, read.attempts, read.key) == ("votes.accepted", 2, None)


def test_the_summary_counts_by_reason_topic_and_partition_with_their_time_span() -> None:
    summary = DlqSummary()
    summary.add(letter("wrong_key", at=T0 + timedelta(minutes=5)))
    summary.add(letter("wrong_key", at=T0, attempts=2))
    summary.add(letter("wrong_key", partition=9, at=T0 + timedelta(minutes=1)))
    summary.add(letter("undecodable", at=T0 + timedelta(minutes=2)))
    described = summary.describe()
    assert described["total"] == 4
    assert described["byReason"] == {"undecodable": 1, "wrong_key": 3}
    assert [
        (r["reason"], r["partition"], r["letters"], r["maxAttempts"]) for r in described["rows"]
    ] == [
        ("undecodable", 3, 1, 1),
        ("wrong_key", 3, 2, 2),
        ("wrong_key", 9, 1, 1),
    ]
    row = described["rows"][1]
    assert (row["firstFailedAt"], row["lastFailedAt"]) == (
        T0.isoformat(),
        (T0 + timedelta(minutes=5)).isoformat(),
    )
    assert (described["firstFailedAt"], described["lastFailedAt"]) == (
        T0.isoformat(),
        (T0 + timedelta(minutes=5)).isoformat(),
    )


def test_an_empty_dlq_summarises_to_zero() -> None:
    described = DlqSummary().describe()
    assert (described["total"], described["rows"], described["firstFailedAt"]) == (0, [], None)
