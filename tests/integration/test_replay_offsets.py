"""`sbp replay` against the real broker, on a scratch consumer group of its own: what an
operator reads (lag, offsets), the reset rules on real log ends, and the exit codes.

The group has committed offsets and no members, as a group whose consumers are
stopped; it is deleted afterwards, so it never shows in another test's `lag`.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from replay.errors import ReplayError
from replay.exit_codes import ExitCode
from replay.kafka_offsets import KafkaOffsets
from sbp.settings import Settings
from streams.topics import VOTES_ACCEPTED
from tests.integration.conftest import Tenant
from tests.integration.observe import committed_offsets, end_offsets, wait_for
from tests.integration.operators import operator_log, operator_token, replay

TOPIC = VOTES_ACCEPTED.name


def closed_port() -> int:
    """A local port nothing listens on: a service out of reach."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def scratch_group(stack: Settings) -> Iterator[tuple[str, dict[int, int]]]:
    """A group whose committed offsets are 0 on partitions 0 and 1 and none elsewhere;
    yields it with the topic's log ends."""
    group = f"sbp-tests-replay-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({**stack.kafka_config("admin")})
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(TOPIC, p, 0) for p in (0, 1)])
    admin.alter_consumer_group_offsets([request])[group].result(timeout=30)
    try:
        yield group, end_offsets(stack, TOPIC)
    finally:
        admin.delete_consumer_groups([group])[group].result(timeout=30)


def test_lag_and_offsets_show_report_the_group_as_kafka_holds_it(
    tenant: Tenant, scratch_group: tuple[str, dict[int, int]]
) -> None:
    group, ends = scratch_group
    token, _ = operator_token(tenant)
    lag = replay(token, "lag", "--group", group, "--json")
    assert lag.returncode == 0, lag.stderr
    [reported] = json.loads(lag.stdout)["groups"]
    assert (reported["group"], reported["state"], reported["members"]) == (group, "EMPTY", 0)
    assert [(p["partition"], p["committed"], p["lag"]) for p in reported["partitions"]] == [
        (0, 0, ends[0]),
        (1, 0, ends[1]),
    ]
    assert reported["totalLag"] == ends[0] + ends[1]

    shown = replay(token, "offsets", "show", "--group", group, "--topic", TOPIC, "--json")
    assert shown.returncode == 0, shown.stderr
    partitions = json.loads(shown.stdout)["partitions"]
    # Every partition of the topic, the uncommitted ones with no offset and no lag.
    assert len(partitions) == len(ends)
    assert partitions[2]["committed"] is None and partitions[2]["lag"] is None
    assert all(p["logStart"] <= p["logEnd"] == ends[p["partition"]] for p in partitions)


def test_a_reset_is_clamped_to_the_log_and_a_dry_run_changes_nothing(
    tenant: Tenant, scratch_group: tuple[str, dict[int, int]]
) -> None:
    group, ends = scratch_group
    token, user = operator_token(tenant)
    reset = ["offsets", "reset", "--group", group, "--topic", TOPIC, "--json"]
    plan = replay(token, *reset, "--partition", "0", "--to-offset", str(ends[0] + 1000))
    assert plan.returncode == 0, plan.stderr
    [planned] = json.loads(plan.stdout)["plan"]
    assert (planned["current"], planned["target"]) == (0, ends[0])
    assert planned["note"] == f"{ends[0] + 1000} is past the log end: clamped"
    assert committed_offsets(tenant.settings, group, TOPIC)[0] == 0
    assert operator_log(tenant.settings, user) == []

    # The group never committed partition 2: nothing to shift from.
    shift = replay(token, *reset, "--partition", "2", "--shift-by", "-1")
    assert shift.returncode == ExitCode.USAGE
    assert "partition 2 has no committed offset" in shift.stderr


def test_execute_on_a_stopped_group_moves_it_and_logs_one_row(
    tenant: Tenant, scratch_group: tuple[str, dict[int, int]]
) -> None:
    group, ends = scratch_group
    token, user = operator_token(tenant)
    done = replay(
        token,
        "offsets",
        "reset",
        "--group",
        group,
        "--topic",
        TOPIC,
        "--partition",
        "1",
        "--partition",
        "2",
        "--to-latest",
        "--execute",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    committed = committed_offsets(tenant.settings, group, TOPIC)
    # Only the partitions named moved; partition 0 kept its offset.
    assert (committed[0], committed[1], committed[2]) == (0, ends[1], ends[2])
    [(_, _, action, logged_group, topic, detail, _)] = operator_log(tenant.settings, user)
    assert (action, logged_group, topic) == ("replay.offsets.reset", group, TOPIC)
    assert detail["request"] == {"kind": "to-latest"}
    assert detail["plan"] == json.loads(done.stdout)["plan"]


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["lag", "--group", "sbp-tests-no-such-group"], ExitCode.NOT_FOUND, "unknown consumer"),
        (
            ["offsets", "reset", "--group", "g", "--topic", "no.such.topic", "--to-latest"],
            ExitCode.NOT_FOUND,
            "unknown topic",
        ),
        (
            [
                *("offsets", "reset", "--group", "g", "--topic", TOPIC),
                *("--partition", "999", "--to-latest"),
            ],
            ExitCode.NOT_FOUND,
            "has no partition 999",
        ),
    ],
    ids=["group", "topic", "partition"],
)
def test_unknown_names_exit_not_found(
    tenant: Tenant, args: list[str], code: ExitCode, says: str
) -> None:
    token, _ = operator_token(tenant)
    result = replay(token, *args)
    assert result.returncode == code, result.stderr
    assert says in result.stderr


def test_a_non_operator_token_is_forbidden_before_kafka_is_asked(tenant: Tenant) -> None:
    result = replay(tenant.token(role="tenant_admin", user="admin-1"), "lag")
    assert result.returncode == ExitCode.FORBIDDEN
    assert "may not perform 'replay.read'" in result.stderr
    assert result.stdout == ""


def test_a_consumer_that_joins_after_the_check_is_still_protected(
    tenant: Tenant, scratch_group: tuple[str, dict[int, int]]
) -> None:
    """--execute checks the group is empty; a consumer joining just after is stopped by
    the broker, which refuses an admin commit to a group with members."""
    group, _ = scratch_group
    assigned: list[object] = []
    consumer = Consumer(
        {
            **tenant.settings.kafka_config("admin"),
            "group.id": group,
            "enable.auto.commit": False,
            "session.timeout.ms": 10_000,
        }
    )
    consumer.subscribe([TOPIC], on_assign=lambda _c, partitions: assigned.extend(partitions))

    def joined() -> bool:
        consumer.poll(0.2)  # runs the group protocol; what it reads is never committed
        return bool(assigned)

    try:
        wait_for(joined, 60, "an assignment")
        with pytest.raises(ReplayError) as refused:
            KafkaOffsets(tenant.settings).apply(group, {(TOPIC, 0): 5})
        assert refused.value.exit_code is ExitCode.GROUP_ACTIVE
        assert committed_offsets(tenant.settings, group, TOPIC)[0] == 0

        token, user = operator_token(tenant)
        reset = ["offsets", "reset", "--group", group, "--topic", TOPIC, "--to-earliest"]
        executed = replay(token, *reset, "--execute")
        assert executed.returncode == ExitCode.GROUP_ACTIVE, executed.stderr
        assert operator_log(tenant.settings, user) == []
    finally:
        consumer.close()


def test_kafka_unreachable_exits_7_and_changes_nothing(tenant: Tenant) -> None:
    token, user = operator_token(tenant)
    reset = ["offsets", "reset", "--group", "g", "--topic", TOPIC, "--to-latest", "--execute"]
    result = replay(token, *reset, env={"SBP_KAFKA_PORT": str(closed_port())})
    assert result.returncode == ExitCode.KAFKA, result.stderr
    # One line that names the cause, not librdkafka's retry chatter.
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "Kafka:" in result.stderr
    assert operator_log(tenant.settings, user) == []


def test_no_operator_log_means_no_reset(
    tenant: Tenant, scratch_group: tuple[str, dict[int, int]]
) -> None:
    """The log row is written before Kafka is touched: with PostgreSQL out of reach the
    reset is refused (exit 8) and the group keeps its offsets."""
    group, _ = scratch_group
    token, _ = operator_token(tenant)
    reset = ["offsets", "reset", "--group", group, "--topic", TOPIC, "--partition", "5"]
    unreachable = {"SBP_PG_PORT": str(closed_port())}
    result = replay(token, *reset, "--to-latest", "--execute", env=unreachable)
    assert result.returncode == ExitCode.OPERATOR_LOG, result.stderr
    assert "nothing was changed" in result.stderr
    # Applied, the reset would have committed partition 5 (at its log end, even 0).
    assert committed_offsets(tenant.settings, group, TOPIC)[5] < 0
