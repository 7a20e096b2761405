"""What `dlq reprocess` does with each letter: the verdicts, the re-driven record's
headers, the plan's counts, and the ledger runs that make a second reprocess a no-op."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from replay.redrive_runs import RedrivenOffsets, Run, RunBuilder
from replay.reprocess_plan import ReprocessPlan, Verdict, redrive_headers, verdict
from streams.dlq import ATTEMPTS_HEADER, attempts_of
from tests.unit.test_dead_letter_filters import letter

NOTHING_DONE = RedrivenOffsets()


def test_a_fresh_letter_of_a_pipeline_topic_is_re_driven() -> None:
    assert verdict(letter(topic="votes.raw"), NOTHING_DONE, 3) is Verdict.REDRIVE
    assert verdict(letter(topic="votes.accepted"), NOTHING_DONE, 3) is Verdict.REDRIVE


def test_a_letter_at_the_attempts_cap_stays() -> None:
    assert verdict(letter(attempts=2), NOTHING_DONE, 3) is Verdict.REDRIVE
    assert verdict(letter(attempts=3), NOTHING_DONE, 3) is Verdict.AT_CAP


def test_a_letter_an_earlier_reprocess_re_drove_is_not_re_driven_again() -> None:
    done = RedrivenOffsets([Run(3, 10, 20)])
    assert verdict(letter(partition=3, dlq_offset=15), done, 3) is Verdict.ALREADY_REDRIVEN
    assert verdict(letter(partition=3, dlq_offset=21), done, 3) is Verdict.REDRIVE
    assert verdict(letter(partition=4, dlq_offset=15), done, 3) is Verdict.REDRIVE


def test_a_letter_from_a_topic_no_pipeline_stage_reads_cannot_be_re_driven() -> None:
    assert verdict(letter(topic="config.zones"), NOTHING_DONE, 3) is Verdict.NOT_REDRIVABLE


def test_the_re_driven_record_keeps_its_headers_and_says_its_attempts_once() -> None:
    again = letter(attempts=2)
    again = type(again)(**{**again.__dict__, "headers": [("a", b"1"), (ATTEMPTS_HEADER, b"1")]})
    headers = redrive_headers(again)
    assert headers == [("a", b"1"), (ATTEMPTS_HEADER, b"2")]
    # The dead-letter writer, reading those headers, counts the failure as attempt 3.
    assert attempts_of(headers) == 3


def test_the_plan_counts_each_verdict_per_reason() -> None:
    plan = ReprocessPlan(max_attempts=2)
    for judged, code in [
        (Verdict.REDRIVE, "wrong_key"),
        (Verdict.REDRIVE, "wrong_key"),
        (Verdict.AT_CAP, "wrong_key"),
        (Verdict.ALREADY_REDRIVEN, "undecodable"),
    ]:
        plan.add(letter(code), judged)
    described = plan.describe()
    assert described["byReason"]["wrong_key"] == {
        "redrive": 2,
        "already-redriven": 0,
        "attempts-cap": 1,
        "not-redrivable": 0,
    }
    assert described["totals"]["already-redriven"] == 1
    assert described["redriveByTopic"] == {"votes.raw": 2}


def test_max_attempts_below_one_is_refused() -> None:
    with pytest.raises(ValueError):
        ReprocessPlan(max_attempts=0)


def test_a_whole_partition_re_driven_is_one_run_and_a_skip_ends_a_run() -> None:
    runs = RunBuilder()
    for offset in range(5):
        runs.redriven(0, offset)
    runs.redriven(1, 7)
    runs.skipped(1)
    runs.redriven(1, 9)
    assert runs.runs() == [Run(0, 0, 4), Run(1, 7, 7), Run(1, 9, 9)]


def test_a_letter_kafka_refused_is_cut_out_of_its_run() -> None:
    runs = RunBuilder()
    for offset in range(10, 15):
        runs.redriven(2, offset)
    assert runs.runs(refused=[(2, 12), (2, 10)]) == [Run(2, 11, 11), Run(2, 13, 14)]


@given(st.lists(st.tuples(st.integers(0, 2), st.booleans()), max_size=80), st.data())
def test_the_runs_claim_exactly_the_letters_re_driven_and_delivered(
    events: list[tuple[int, bool]], data: st.DataObject
) -> None:
    # A scan: each partition's records in offset order, each re-driven or skipped.
    next_offset = {0: 0, 1: 0, 2: 0}
    builder = RunBuilder()
    redriven: set[tuple[int, int]] = set()
    for partition, redrive in events:
        offset = next_offset[partition]
        next_offset[partition] += 1
        if redrive:
            builder.redriven(partition, offset)
            redriven.add((partition, offset))
        else:
            builder.skipped(partition)
    refused = data.draw(st.sets(st.sampled_from(sorted(redriven)))) if redriven else set()
    done = RedrivenOffsets(builder.runs(refused))
    scanned = {(p, o) for p, n in next_offset.items() for o in range(n)}
    assert {(p, o) for p, o in scanned if done.contains(p, o)} == redriven - refused
