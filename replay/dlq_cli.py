"""`sbp replay dlq`: list, show and reprocess the dead letters of votes.dlq.

`list` counts letters (by reason, original topic and partition, with the times they
span); `show` prints the letters themselves, up to `--limit`; `reprocess` re-drives
each selected letter's original record into its original topic and partition
(replay/reprocess_plan.py), a dry-run unless `--execute`. All three take the same
filters (replay/dead_letters.py) and read votes.dlq without any consumer group
(replay/kafka_records.py).

A second reprocess re-drives nothing the first did: `--execute` records the runs of
DLQ offsets it re-drove in the ledger `ops.dlq_redrive`, in the transaction of its
operator-log row (replay/redrive_ledger.py), and every reprocess skips them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
import typer

from identity.rbac import Action
from replay import redrive_ledger
from replay.cli_common import (
    DEV_OPERATOR,
    EPILOG,
    JSON,
    TOKEN,
    RedriveProgress,
    console,
    operator,
    reported,
)
from replay.dead_letters import DeadLetter, LetterFilter
from replay.dlq_reader import DLQ, decoded_original, dlq_bounds, read_letters
from replay.dlq_render import print_letters, print_reprocess, print_summary
from replay.dlq_summary import DlqSummary
from replay.errors import ReplayError
from replay.exit_codes import ExitCode
from replay.kafka_offsets import KafkaOffsets
from replay.kafka_records import Redriver
from replay.operator_log import LogEntry, OperatorLogTransaction
from replay.redrive_runs import RedrivenOffsets, Run, RunBuilder
from replay.render import echo_json
from replay.reprocess_plan import (
    DEFAULT_MAX_ATTEMPTS,
    REDRIVE_PRINCIPALS,
    ReprocessPlan,
    Verdict,
    redrive_headers,
    verdict,
)
from sbp.settings import Settings, get_settings
from schemas.codec import AvroCodec, registry_client

dlq = typer.Typer(
    no_args_is_help=True,
    help="The dead letters of votes.dlq: counts, records, and re-driving them.",
    epilog=EPILOG,
)

# Module-level because a list default must not be built per call (ruff B008).
REASONS = typer.Option(None, "--reason", help="only this errorCode (repeatable)")
SINCE = typer.Option(None, "--since", help="letters that failed at or after (ISO 8601, UTC offset)")
UNTIL = typer.Option(None, "--until", help="letters that failed before (ISO 8601, UTC offset)")
TOPICS = typer.Option(None, "--topic", help="only letters from this original topic (repeatable)")
PARTITIONS = typer.Option(
    None, "--partition", min=0, help="only letters from this original partition (repeatable)"
)
GROUPS = typer.Option(None, "--group", help="only letters of this consumer group (repeatable)")


def _filter(
    reasons: list[str] | None,
    since: str | None,
    until: str | None,
    topics: list[str] | None,
    partitions: list[int] | None,
    groups: list[str] | None,
) -> LetterFilter:
    try:
        return LetterFilter.of(
            reasons or (),
            _datetime("--since", since),
            _datetime("--until", until),
            topics or (),
            partitions or (),
            groups or (),
        )
    except ValueError as exc:
        raise ReplayError(ExitCode.USAGE, str(exc)) from None


def _datetime(option: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ReplayError(
            ExitCode.USAGE, f"{option} {text!r} is not an ISO 8601 datetime"
        ) from None


def _codec(settings: Settings) -> AvroCodec:
    return AvroCodec(registry_client(settings))


@dlq.command("list", epilog=EPILOG)
def dlq_list(
    reason: list[str] | None = REASONS,
    since: str | None = SINCE,
    until: str | None = UNTIL,
    topic: list[str] | None = TOPICS,
    partition: list[int] | None = PARTITIONS,
    group: list[str] | None = GROUPS,
    json_out: bool = JSON,
    token: str | None = TOKEN,
    dev_operator: bool = DEV_OPERATOR,
) -> None:
    """Count the letters by reason, original topic and partition, with the times they
    span and the most attempts any of them used."""
    with reported():
        chosen = _filter(reason, since, until, topic, partition, group)
        operator(Action.REPLAY_READ, token, dev_operator)
        settings = get_settings()
        bounds = dlq_bounds(KafkaOffsets(settings), chosen.since)
        summary = DlqSummary()
        for _p, _o, letter in read_letters(settings, _codec(settings), bounds):
            if letter is None:
                summary.unreadable += 1
            elif chosen.matches(letter):
                summary.add(letter)
        if json_out:
            echo_json({"filter": chosen.describe(), **summary.describe()})
        else:
            print_summary(console, summary)


@dlq.command("show", epilog=EPILOG)
def dlq_show(
    reason: list[str] | None = REASONS,
    since: str | None = SINCE,
    until: str | None = UNTIL,
    topic: list[str] | None = TOPICS,
    partition: list[int] | None = PARTITIONS,
    group: list[str] | None = GROUPS,
    limit: int = typer.Option(20, "--limit", min=1, max=10_000, help="at most this many letters"),
    json_out: bool = JSON,
    token: str | None = TOKEN,
    dev_operator: bool = DEV_OPERATOR,
) -> None:
    """The letters themselves, the first --limit that match: where they came from, why
    they failed, the original key, headers and value (base64 and hex, and decoded when
    it is Avro the registry knows)."""
    with reported():
        chosen = _filter(reason, since, until, topic, partition, group)
        operator(Action.REPLAY_OPERATE, token, dev_operator)
        settings = get_settings()
        codec = _codec(settings)
        bounds = dlq_bounds(KafkaOffsets(settings), chosen.since)
        shown: list[dict[str, Any]] = []
        more = False
        for _p, _o, letter in read_letters(settings, codec, bounds):
            if letter is None or not chosen.matches(letter):
                continue
            if len(shown) == limit:
                more = True  # one more exists: say so, and stop reading
                break
            shown.append(
                {
                    **letter.describe(),
                    "valueHex": (letter.value or b"").hex(),
                    "decoded": decoded_original(codec, letter),
                }
            )
        if json_out:
            echo_json({"filter": chosen.describe(), "letters": shown, "more": more})
        else:
            print_letters(console, shown, more)


@dlq.command("reprocess", epilog=EPILOG)
def dlq_reprocess(
    reason: list[str] | None = REASONS,
    since: str | None = SINCE,
    until: str | None = UNTIL,
    topic: list[str] | None = TOPICS,
    partition: list[int] | None = PARTITIONS,
    group: list[str] | None = GROUPS,
    max_attempts: int = typer.Option(
        DEFAULT_MAX_ATTEMPTS,
        "--max-attempts",
        min=1,
        help="skip (and report) letters that already used this many attempts",
    ),
    execute: bool = typer.Option(
        False, "--execute", help="re-drive the plan and record it in the operator log"
    ),
    json_out: bool = JSON,
    token: str | None = TOKEN,
    dev_operator: bool = DEV_OPERATOR,
) -> None:
    """Re-drive the selected letters' original records into their original topic and
    partition, through the same agent path (dedup holds).

    A dry-run prints, per reason, how many letters would be re-driven, how many an
    earlier reprocess already re-drove, and how many are at the attempts cap. A record
    that fails again returns to the DLQ with attempts + 1."""
    with reported():
        chosen = _filter(reason, since, until, topic, partition, group)
        principal = operator(Action.REPLAY_OPERATE, token, dev_operator)
        settings = get_settings()
        codec = _codec(settings)
        plan = ReprocessPlan(max_attempts)
        redrive_id = uuid.uuid4()
        outcome = RedriveOutcome()
        with OperatorLogTransaction(settings) as log:
            done = redrive_ledger.lock_and_read(log.connection, DLQ)
            bounds = dlq_bounds(KafkaOffsets(settings), chosen.since)
            for _p, _o, letter in read_letters(settings, codec, bounds):
                if letter is not None and chosen.matches(letter):
                    plan.add(letter, verdict(letter, done, max_attempts))
            detail: dict[str, Any] = {
                "redriveId": str(redrive_id),
                "filter": chosen.describe(),
                "dlqRanges": {str(p): list(r) for p, r in sorted(bounds.items()) if r[0] < r[1]},
                **plan.describe(),
            }
            to_redrive = plan.total(Verdict.REDRIVE)
            executed = execute and to_redrive > 0
            if executed:
                groups = ",".join(sorted(chosen.groups)) or "*"
                entry = LogEntry(principal, "replay.dlq.reprocess", groups, DLQ, detail)
                log.record(entry)
                select = _Selection(chosen, done, max_attempts)
                outcome = _redrive(settings, codec, bounds, select, to_redrive)
                try:
                    redrive_ledger.record(log.connection, redrive_id, DLQ, outcome.runs)
                except psycopg.Error as exc:
                    raise ReplayError(
                        ExitCode.APPLIED_NOT_LOGGED,
                        f"letters were re-driven but the ledger rows were lost ({exc}); "
                        f"record this reprocess by hand: redriveId {redrive_id}, "
                        f"runs {[(r.partition, r.first, r.last) for r in outcome.runs]}",
                    ) from None
                log.commit(entry)
        result = {
            "executed": executed,
            **detail,
            "redriven": outcome.redriven,
            "refused": outcome.refused,
        }
        if json_out:
            echo_json(result)
        else:
            print_reprocess(console, plan, executed, outcome.redriven)
        if outcome.refused or outcome.interrupted:
            raise ReplayError(
                ExitCode.PARTIAL,
                f"re-drove {outcome.redriven} of {to_redrive} letters"
                + (f"; Kafka refused {outcome.refused}" if outcome.refused else "")
                + (f"; stopped: {outcome.interrupted}" if outcome.interrupted else "")
                + ". Those re-driven are recorded: run the same reprocess again for the rest",
            )


@dataclass(frozen=True)
class _Selection:
    """Which letters the execute pass re-drives: the same rule as the plan's."""

    chosen: LetterFilter
    done: RedrivenOffsets
    max_attempts: int

    def redrives(self, letter: DeadLetter | None) -> bool:
        return (
            letter is not None
            and self.chosen.matches(letter)
            and verdict(letter, self.done, self.max_attempts) is Verdict.REDRIVE
        )


@dataclass
class RedriveOutcome:
    runs: list[Run] = field(default_factory=list)
    redriven: int = 0
    refused: int = 0
    # Why the pass stopped before its end (a read failed), if it did.
    interrupted: str | None = None


def _redrive(
    settings: Settings,
    codec: AvroCodec,
    bounds: dict[int, tuple[int, int]],
    select: _Selection,
    total: int,
) -> RedriveOutcome:
    """The execute pass: the same letters as the plan (the same DLQ ranges, the ledger
    still locked), each produced to its original topic and partition. A read that fails
    midway stops the pass, and what was produced is still recorded, so nothing is
    re-driven without its ledger run."""
    runs = RunBuilder()
    redrivers = {topic: Redriver(settings, p) for topic, p in REDRIVE_PRINCIPALS.items()}
    outcome = RedriveOutcome()
    try:
        with RedriveProgress(total) as advance:
            for partition, offset, letter in read_letters(settings, codec, bounds):
                if letter is None or not select.redrives(letter):
                    runs.skipped(partition)
                    continue
                redrivers[letter.original_topic].produce(
                    letter.original_topic,
                    letter.original_partition,
                    letter.key,
                    letter.value,
                    redrive_headers(letter),
                    tag=(partition, offset),
                )
                runs.redriven(partition, offset)
                outcome.redriven += 1
                advance()
    except ReplayError as exc:
        outcome.interrupted = exc.message
    refused = [tag for r in redrivers.values() for tag in r.finish()]
    outcome.refused = len(refused)
    outcome.redriven -= len(refused)
    outcome.runs = runs.runs(refused)
    return outcome
