"""`sbp replay redrive`: re-publish a range of votes.raw back into votes.raw.

Each record goes back with the same key, value and headers, to the same partition,
so the vote stage reads it again as if the gateway had sent it twice. That is
idempotent: the stage's dedup (by tenantId|voteUuid, kept as long as votes.raw keeps
records) answers `duplicate` for every vote it already accepted, and a vote it never
counted (its earlier processing was lost, or a fix now lets it through) is counted
once. A record that failed before fails again and goes to the DLQ as a first attempt
(re-drive dead letters with `dlq reprocess`, which counts attempts).

Dry-run by default; `--execute` records the plan in the operator log, in the
transaction that brackets the re-publishing.
"""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from identity.rbac import Action
from replay.cli_common import (
    DEV_OPERATOR,
    JSON,
    TOKEN,
    RedriveProgress,
    console,
    operator,
    reported,
)
from replay.errors import ReplayError
from replay.exit_codes import ExitCode
from replay.kafka_offsets import KafkaOffsets
from replay.kafka_records import Redriver, headers_of, scan
from replay.operator_log import LogEntry, OperatorLogTransaction
from replay.redrive_range import Bound, LogPosition, PartitionRange, plan_range
from replay.render import echo_json
from replay.reprocess_plan import REDRIVE_PRINCIPALS
from sbp.settings import Settings, get_settings
from streams.topics import VOTES_RAW, WORKER_APP_ID

# Only votes.raw: its consumer, the vote stage, dedups every record it re-reads.
REDRIVABLE = (VOTES_RAW.name,)
PARTITIONS = typer.Option(
    None, "--partition", min=0, help="only this partition (repeatable); default: all"
)


def redrive(
    topic: str = typer.Option(..., "--topic", help="the topic to re-drive: votes.raw"),
    first: str = typer.Option(
        ..., "--from", help="an offset, or an ISO 8601 datetime with a UTC offset (inclusive)"
    ),
    last: str = typer.Option(
        ..., "--to", help="an offset, or an ISO 8601 datetime with a UTC offset (exclusive)"
    ),
    partition: list[int] | None = PARTITIONS,
    execute: bool = typer.Option(
        False, "--execute", help="re-publish the range and record it in the operator log"
    ),
    json_out: bool = JSON,
    token: str | None = TOKEN,
    dev_operator: bool = DEV_OPERATOR,
) -> None:
    """Re-publish the records of votes.raw between two offsets or times into votes.raw
    (same key, value, headers and partition); idempotent through the vote stage's dedup.

    A time bound is the first record at or after it; --from is inclusive, --to
    exclusive; both are clamped to each partition's log."""
    with reported():
        if topic not in REDRIVABLE:
            raise ReplayError(
                ExitCode.USAGE, f"only {', '.join(REDRIVABLE)} can be re-driven (got {topic!r})"
            )
        try:
            bounds = Bound.parse(first, "--from"), Bound.parse(last, "--to")
        except ValueError as exc:
            raise ReplayError(ExitCode.USAGE, str(exc)) from None
        principal = operator(Action.REPLAY_OPERATE, token, dev_operator)
        settings = get_settings()
        ranges = plan_range(*bounds, _positions(KafkaOffsets(settings), topic, partition, *bounds))
        total = sum(r.records for r in ranges)
        detail: dict[str, Any] = {
            "from": bounds[0].describe(),
            "to": bounds[1].describe(),
            "ranges": [r.describe() for r in ranges if r.records],
            "records": total,
        }
        published, refused, interrupted = 0, 0, None
        executed = execute and total > 0
        if executed:
            entry = LogEntry(principal, "replay.redrive", WORKER_APP_ID, topic, detail)
            with OperatorLogTransaction(settings) as log:
                log.record(entry)
                published, refused, interrupted = _republish(settings, topic, ranges, total)
                # Committed even after a failure midway: what was re-published is logged.
                log.commit(entry)
        if json_out:
            echo_json(
                {
                    "topic": topic,
                    "executed": executed,
                    **detail,
                    "published": published,
                    "refused": refused,
                }
            )
        else:
            _print(topic, ranges, executed)
        if refused or interrupted:
            raise ReplayError(
                ExitCode.PARTIAL,
                f"re-published {published} of {total} records"
                + (f"; Kafka refused {refused}" if refused else "")
                + (f"; stopped: {interrupted}" if interrupted else "")
                + ". Re-driving the same range again is harmless (dedup)",
            )


def _republish(
    settings: Settings, topic: str, ranges: list[PartitionRange], total: int
) -> tuple[int, int, str | None]:
    """Re-publish the ranges; (published, refused, why it stopped early or None)."""
    producer = Redriver(settings, REDRIVE_PRINCIPALS[topic])
    wanted = {r.partition: (r.start, r.end) for r in ranges}
    produced, interrupted = 0, None
    try:
        with RedriveProgress(total) as advance:
            for msg in scan(settings, topic, wanted):
                partition, offset = msg.partition() or 0, msg.offset() or 0
                producer.produce(
                    topic, partition, msg.key(), msg.value(), headers_of(msg), (partition, offset)
                )
                produced += 1
                advance()
    except ReplayError as exc:
        interrupted = exc.message
    refused = len(producer.finish())
    return produced - refused, refused, interrupted


def _positions(
    kafka: KafkaOffsets, topic: str, partitions: list[int] | None, first: Bound, last: Bound
) -> list[LogPosition]:
    existing = kafka.topic_partitions(topic)
    chosen = sorted(set(partitions)) if partitions else existing
    missing = sorted(set(chosen) - set(existing))
    if missing:
        raise ReplayError(
            ExitCode.NOT_FOUND, f"{topic} has no partition {', '.join(map(str, missing))}"
        )
    wanted = [(topic, p) for p in chosen]
    ranges = kafka.log_ranges(wanted)
    from_time = _for_time(kafka, wanted, first)
    to_time = _for_time(kafka, wanted, last)
    return [
        LogPosition(p, *ranges[(t, p)], from_time.get((t, p)), to_time.get((t, p)))
        for t, p in wanted
    ]


def _for_time(
    kafka: KafkaOffsets, wanted: list[tuple[str, int]], bound: Bound
) -> dict[tuple[str, int], int | None]:
    at = bound.timestamp_ms
    return {} if at is None else kafka.offsets_for_time(wanted, at)


def _print(topic: str, ranges: list[PartitionRange], executed: bool) -> None:
    table = Table("partition", "from", "to (exclusive)", "records", title=f"redrive {topic}")
    table.title_justify = "left"
    for r in ranges:
        if r.records:
            table.add_row(str(r.partition), str(r.start), str(r.end), str(r.records))
    table.add_section()
    table.add_row("total", "", "", str(sum(r.records for r in ranges)))
    console.print(table)
    if executed:
        console.print("[green]re-published[/green] and recorded in the operator log")
    else:
        console.print("dry-run: nothing changed; add --execute to re-publish this range")
