"""A dead letter's attempt number comes from the re-drive header the reprocess sets."""

from __future__ import annotations

import pytest

from streams.dlq import ATTEMPTS_HEADER, attempts_of


def test_a_record_never_re_driven_fails_its_first_attempt() -> None:
    assert attempts_of([]) == 1
    assert attempts_of([("traceparent", b"00-1-2-01")]) == 1


def test_a_re_driven_record_fails_one_attempt_after_its_letter() -> None:
    assert attempts_of([("traceparent", b"x"), (ATTEMPTS_HEADER, b"2")]) == 3


def test_the_last_header_wins_as_kafka_clients_read_repeated_headers() -> None:
    assert attempts_of([(ATTEMPTS_HEADER, b"1"), (ATTEMPTS_HEADER, b"4")]) == 5


@pytest.mark.parametrize("value", [None, b"", b"-1", b"two", b"\xff"])
def test_a_header_that_is_not_a_count_counts_as_a_first_attempt(value: bytes | None) -> None:
    assert attempts_of([(ATTEMPTS_HEADER, value)]) == 1
