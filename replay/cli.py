"""`sbp replay`: consumer lag, committed offsets and offset resets, for operators; the
DLQ commands (replay/dlq_cli.py) and the range re-drive (replay/redrive_cli.py) join here.

Every command first proves its caller is an operator (replay/operator_auth.py), then
talks to Kafka as the admin principal. A reset is a dry-run unless `--execute` is
given; `--execute` refuses while the group has members and records the reset in the
operator log. Failures print one line on stderr and exit with a documented code
(replay/exit_codes.py).
"""

from __future__ import annotations

from datetime import datetime

import typer

from identity.rbac import Action
from replay.cli_common import (
    AUTH_HELP,
    DEV_OPERATOR,
    EPILOG,
    JSON,
    TOKEN,
    console,
    operator,
    reported,
)
from replay.dlq_cli import dlq
from replay.errors import ReplayError
from replay.exit_codes import ExitCode
from replay.kafka_offsets import KafkaOffsets
from replay.lag import GroupLag, PartitionLag
from replay.operator_log import LogEntry, record_and_apply
from replay.redrive_cli import redrive
from replay.render import echo_json, print_lag, print_offsets, print_plan
from replay.reset_plan import ResetRequest, plan_reset
from sbp.settings import get_settings

app = typer.Typer(
    no_args_is_help=True,
    help="Operators' tools: lag, offsets, resets, the DLQ, range re-drives. " + AUTH_HELP,
    epilog=EPILOG,
)
offsets = typer.Typer(
    no_args_is_help=True, help="A group's committed offsets, and resets.", epilog=EPILOG
)
app.add_typer(offsets, name="offsets")
app.add_typer(dlq, name="dlq")
app.command("redrive", epilog=EPILOG)(redrive)

# Module-level because a list default must not be built per call (ruff B008).
GROUPS = typer.Option(None, "--group", help="only this group (repeatable); default: every group")
PARTITIONS = typer.Option(
    None, "--partition", min=0, help="only this partition (repeatable); default: all"
)


@app.command("lag", epilog=EPILOG)
def lag(
    group: list[str] | None = GROUPS,
    json_out: bool = JSON,
    token: str | None = TOKEN,
    dev_operator: bool = DEV_OPERATOR,
) -> None:
    """Lag per consumer group, topic and partition, with each group's total.

    Lag is the log end minus the committed offset; a partition the group never
    committed shows '-' and is left out of the total."""
    with reported():
        operator(Action.REPLAY_READ, token, dev_operator)
        kafka = KafkaOffsets(get_settings())
        names = group or kafka.groups()
        read = [(name, kafka.group_state(name), kafka.committed(name)) for name in names]
        for name, state, committed in read:
            # Kafka describes a group it never heard of as DEAD; named, it is a typo.
            if group and state.unknown and not committed:
                raise ReplayError(ExitCode.NOT_FOUND, f"unknown consumer group {name!r}")
        ends = kafka.log_ends({tp for _, _, committed in read for tp in committed})
        report = [
            GroupLag(
                name,
                state.name,
                state.members,
                [PartitionLag(t, p, offset, ends[(t, p)]) for (t, p), offset in committed.items()],
            )
            for name, state, committed in read
        ]
        if json_out:
            echo_json({"groups": [g.describe() for g in report]})
        else:
            print_lag(console, report)


@offsets.command("show", epilog=EPILOG)
def offsets_show(
    group: str = typer.Option(..., "--group", help="the consumer group"),
    topic: str | None = typer.Option(
        None, "--topic", help="every partition of this topic, committed or not"
    ),
    json_out: bool = JSON,
    token: str | None = TOKEN,
    dev_operator: bool = DEV_OPERATOR,
) -> None:
    """A group's committed offsets beside each log's start and end, and the lag."""
    with reported():
        operator(Action.REPLAY_READ, token, dev_operator)
        kafka = KafkaOffsets(get_settings())
        state = kafka.group_state(group)
        if topic is not None:
            wanted = [(topic, p) for p in kafka.topic_partitions(topic)]
            committed = kafka.committed(group, wanted)
        else:
            committed = kafka.committed(group)
            if not committed:
                raise ReplayError(
                    ExitCode.NOT_FOUND,
                    f"group {group!r} has no committed offsets (state {state.name}); "
                    "name a --topic to see its partitions anyway",
                )
        ranges = kafka.log_ranges(committed)
        shown = GroupLag(
            group,
            state.name,
            state.members,
            [
                PartitionLag(t, p, offset, ranges[(t, p)][1], log_start=ranges[(t, p)][0])
                for (t, p), offset in committed.items()
            ],
        )
        if json_out:
            echo_json(shown.describe())
        else:
            print_offsets(console, shown)


@offsets.command("reset", epilog=EPILOG)
def offsets_reset(
    group: str = typer.Option(..., "--group", help="the consumer group to move"),
    topic: str = typer.Option(..., "--topic", help="the topic whose offsets move"),
    partition: list[int] | None = PARTITIONS,
    to_earliest: bool = typer.Option(False, "--to-earliest", help="to each log's start"),
    to_latest: bool = typer.Option(False, "--to-latest", help="to each log's end"),
    to_datetime: str | None = typer.Option(
        None,
        "--to-datetime",
        help="ISO 8601 with a UTC offset: the first record at or after it "
        "(the log end where there is none)",
    ),
    to_offset: int | None = typer.Option(
        None, "--to-offset", help="this offset, clamped to the log's start and end"
    ),
    shift_by: int | None = typer.Option(
        None, "--shift-by", help="±N from the committed offset, clamped to the log"
    ),
    execute: bool = typer.Option(
        False, "--execute", help="apply the plan (refused while the group has members)"
    ),
    json_out: bool = JSON,
    token: str | None = TOKEN,
    dev_operator: bool = DEV_OPERATOR,
) -> None:
    """Plan, and with --execute apply, a reset of a group's offsets on a topic.

    kafka-consumer-groups' semantics. The default is a dry-run that prints, per
    partition, the current offset, the target and the delta. --execute refuses
    while the group has members, and records who, what and when in the operator log."""
    with reported():
        request = _reset_request(to_earliest, to_latest, to_datetime, to_offset, shift_by)
        principal = operator(Action.OFFSETS_RESET, token, dev_operator)
        settings = get_settings()
        kafka = KafkaOffsets(settings)
        state = kafka.group_state(group)
        positions = kafka.positions(group, topic, partition or None, request)
        plan = plan_reset(request, positions)
        detail = {
            "request": request.describe(),
            "groupState": state.name,
            "plan": [p.describe() for p in plan],
        }
        if execute:
            if not state.inactive:
                raise ReplayError(
                    ExitCode.GROUP_ACTIVE,
                    f"group {group!r} is {state.name} with {state.members} member(s); stop its "
                    "consumers first (the state must be EMPTY or DEAD); nothing was changed",
                )
            record_and_apply(
                settings,
                LogEntry(principal, Action.OFFSETS_RESET.value, group, topic, detail),
                lambda: kafka.apply(group, {(topic, p.partition): p.target for p in plan}),
            )
        if json_out:
            echo_json({"group": group, "topic": topic, "executed": execute, **detail})
        else:
            mode = "executed" if execute else "dry-run"
            header = (
                f"{group} on {topic}: {request.kind.value} ({mode}; group {state.name}, "
                f"{state.members} member(s))"
            )
            print_plan(console, header, plan, execute)


def _reset_request(
    to_earliest: bool,
    to_latest: bool,
    to_datetime: str | None,
    to_offset: int | None,
    shift_by: int | None,
) -> ResetRequest:
    given = [
        name
        for name, value in [
            ("--to-earliest", to_earliest or None),
            ("--to-latest", to_latest or None),
            ("--to-datetime", to_datetime),
            ("--to-offset", to_offset),
            ("--shift-by", shift_by),
        ]
        if value is not None
    ]
    if len(given) != 1:
        raise ReplayError(
            ExitCode.USAGE,
            "give exactly one of --to-earliest, --to-latest, --to-datetime, --to-offset, "
            f"--shift-by (got {', '.join(given) or 'none'})",
        )
    if to_earliest:
        return ResetRequest.to_earliest()
    if to_latest:
        return ResetRequest.to_latest()
    if to_offset is not None:
        return ResetRequest.to_offset(to_offset)
    if shift_by is not None:
        return ResetRequest.shift_by(shift_by)
    assert to_datetime is not None
    try:
        at = datetime.fromisoformat(to_datetime)
    except ValueError:
        raise ReplayError(
            ExitCode.USAGE, f"--to-datetime {to_datetime!r} is not an ISO 8601 datetime"
        ) from None
    return ResetRequest.to_datetime(at)
