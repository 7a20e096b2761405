"""Consumer-group offsets in Kafka: read them, read the logs' ranges, and apply a reset.

The only module of `replay` that talks to Kafka. It connects as the `admin`
principal: committing offsets for another service's group needs rights no service
principal holds (streams/kafka_acls.py). Every failure surfaces as a ReplayError with
the exit code an operator acts on; nothing is retried here, since a command is
re-run by its operator.

Applying a reset relies on the broker as the last guard: a group coordinator refuses
an admin offset commit while the group has members, so a consumer that joins between
our check and the commit cannot have its offsets moved under it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from confluent_kafka import (
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    TopicPartition,
)

# OffsetSpec is public in confluent_kafka.admin but missing from its export list.
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]

from replay.errors import ReplayError
from replay.exit_codes import ExitCode
from replay.reset_plan import PartitionPosition, ResetKind, ResetRequest
from sbp.settings import Settings

TIMEOUT_S = 15.0
# A reset may only be applied while no consumer holds the group (kafka-consumer-groups).
INACTIVE_STATES = frozenset({ConsumerGroupState.EMPTY, ConsumerGroupState.DEAD})
# What a coordinator answers a commit for a group that has members.
_GROUP_BUSY = frozenset(
    {
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.REBALANCE_IN_PROGRESS,
        KafkaError.FENCED_INSTANCE_ID,
    }
)

# The library leaves these factories unannotated.
_EARLIEST: OffsetSpec = OffsetSpec.earliest()  # type: ignore[no-untyped-call]
_LATEST: OffsetSpec = OffsetSpec.latest()  # type: ignore[no-untyped-call]

# librdkafka logs every failed connection attempt on stderr; an operator needs the one
# error the command ends with, which carries the cause (exit 7).
_QUIET = logging.getLogger("replay.librdkafka")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False

T = TypeVar("T")
Partition = tuple[str, int]


@dataclass(frozen=True)
class GroupState:
    state: ConsumerGroupState
    members: int

    @property
    def name(self) -> str:
        return self.state.name

    @property
    def inactive(self) -> bool:
        return self.state in INACTIVE_STATES

    @property
    def unknown(self) -> bool:
        """DEAD: no member and no metadata, which is also how Kafka describes a group it
        never heard of."""
        return self.state is ConsumerGroupState.DEAD


class KafkaOffsets:
    def __init__(self, settings: Settings) -> None:
        # Typed Any: librdkafka's bindings take a Logger here, which their stubs omit.
        config: dict[str, Any] = {
            **settings.kafka_config("admin"),
            "client.id": "sbp-replay",
            "logger": _QUIET,
        }
        self._admin = AdminClient(config)

    def groups(self) -> list[str]:
        listed = _result(self._admin.list_consumer_groups(request_timeout=TIMEOUT_S))
        if listed.errors:
            # A partial list would show "no lag" for groups it missed: refuse it.
            raise _kafka_error(KafkaException(listed.errors[0]))
        return sorted(g.group_id for g in listed.valid)

    def group_state(self, group: str) -> GroupState:
        futures = self._admin.describe_consumer_groups([group], request_timeout=TIMEOUT_S)
        description = _result(futures[group])
        return GroupState(description.state, len(description.members))

    def topic_partitions(self, topic: str) -> list[int]:
        """The partitions of `topic`; NOT_FOUND when the topic does not exist."""
        try:
            metadata = self._admin.list_topics(timeout=TIMEOUT_S)
        except KafkaException as exc:
            raise _kafka_error(exc) from None
        found = metadata.topics.get(topic)
        if found is None or found.error is not None:
            raise ReplayError(ExitCode.NOT_FOUND, f"unknown topic {topic!r}")
        return sorted(found.partitions)

    def committed(
        self, group: str, partitions: Iterable[Partition] | None = None
    ) -> dict[Partition, int | None]:
        """The group's committed offset per partition: those given (None where the group
        has none), or, without `partitions`, every partition the group committed."""
        wanted = None if partitions is None else [TopicPartition(t, p) for t, p in partitions]
        request = ConsumerGroupTopicPartitions(group, wanted)
        futures = self._admin.list_consumer_group_offsets([request], request_timeout=TIMEOUT_S)
        answer = _result(futures[group])
        committed: dict[Partition, int | None] = {}
        for tp in answer.topic_partitions:
            if tp.error is not None:
                raise ReplayError(ExitCode.KAFKA, f"{tp.topic}[{tp.partition}]: {tp.error}")
            # Negative is librdkafka's "no offset" (OFFSET_INVALID): never committed.
            committed[(tp.topic, tp.partition)] = None if tp.offset < 0 else tp.offset
        return committed

    def log_ranges(self, partitions: Iterable[Partition]) -> dict[Partition, tuple[int, int]]:
        """(log start, log end) of each partition."""
        wanted = list(partitions)
        starts = self._list_offsets(wanted, _EARLIEST)
        ends = self._list_offsets(wanted, _LATEST)
        return {tp: (_known(starts[tp], tp), _known(ends[tp], tp)) for tp in wanted}

    def log_ends(self, partitions: Iterable[Partition]) -> dict[Partition, int]:
        wanted = list(partitions)
        ends = self._list_offsets(wanted, _LATEST)
        return {tp: _known(ends[tp], tp) for tp in wanted}

    def offsets_for_time(
        self, partitions: Iterable[Partition], timestamp_ms: int
    ) -> dict[Partition, int | None]:
        """The first offset whose timestamp is at or after `timestamp_ms`, per partition;
        None where no record is (Kafka answers -1)."""
        found = self._list_offsets(list(partitions), OffsetSpec.for_timestamp(timestamp_ms))
        return {tp: (None if offset < 0 else offset) for tp, offset in found.items()}

    def positions(
        self, group: str, topic: str, partitions: list[int] | None, request: ResetRequest
    ) -> list[PartitionPosition]:
        """What planning `request` needs to know of each partition (all of the topic's
        when `partitions` is None); NOT_FOUND for a partition the topic lacks."""
        existing = self.topic_partitions(topic)
        chosen = sorted(set(partitions)) if partitions else existing
        missing = sorted(set(chosen) - set(existing))
        if missing:
            raise ReplayError(
                ExitCode.NOT_FOUND,
                f"{topic} has no partition {', '.join(map(str, missing))} "
                f"(it has 0..{len(existing) - 1})",
            )
        wanted = [(topic, p) for p in chosen]
        committed = self.committed(group, wanted)
        ranges = self.log_ranges(wanted)
        for_time = (
            self.offsets_for_time(wanted, request.timestamp_ms)
            if request.kind is ResetKind.DATETIME
            else {}
        )
        return [
            PartitionPosition(tp[1], committed.get(tp), *ranges[tp], for_time.get(tp))
            for tp in wanted
        ]

    def apply(self, group: str, targets: dict[Partition, int]) -> None:
        """Commit `targets` as the group's offsets; GROUP_ACTIVE if the broker refuses
        because a consumer holds the group."""
        request = ConsumerGroupTopicPartitions(
            group, [TopicPartition(t, p, offset) for (t, p), offset in sorted(targets.items())]
        )
        futures = self._admin.alter_consumer_group_offsets([request], request_timeout=TIMEOUT_S)
        answer = _result(futures[group])
        failed = [tp for tp in answer.topic_partitions if tp.error is not None]
        if failed:
            first = failed[0]
            raise _commit_refused(group, f"{first.topic}[{first.partition}]", first.error)

    def _list_offsets(self, partitions: list[Partition], spec: OffsetSpec) -> dict[Partition, int]:
        if not partitions:
            return {}
        futures = self._admin.list_offsets(
            {TopicPartition(t, p): spec for t, p in partitions}, request_timeout=TIMEOUT_S
        )
        return {(tp.topic, tp.partition): _result(f).offset for tp, f in futures.items()}


def _result(future: Future[T]) -> T:
    try:
        return future.result(timeout=TIMEOUT_S * 2)
    except KafkaException as exc:
        raise _kafka_error(exc) from None
    except TimeoutError:
        raise ReplayError(ExitCode.KAFKA, "Kafka did not answer in time") from None


def _kafka_error(exc: KafkaException) -> ReplayError:
    error: Any = exc.args[0] if exc.args else None
    if isinstance(error, KafkaError):
        if error.code() in _GROUP_BUSY:
            return _commit_refused("the group", "", error)
        return ReplayError(ExitCode.KAFKA, f"Kafka: {error.str()} ({error.name()})")
    return ReplayError(ExitCode.KAFKA, f"Kafka: {exc}")


def _commit_refused(group: str, where: str, error: Any) -> ReplayError:
    code = error.code() if isinstance(error, KafkaError) else None
    if code in _GROUP_BUSY:
        return ReplayError(
            ExitCode.GROUP_ACTIVE,
            f"{group} has active members: the broker refused the commit; nothing was changed",
        )
    return ReplayError(ExitCode.KAFKA, f"Kafka refused the commit {where}: {error}".strip())


def _known(offset: int, tp: Partition) -> int:
    if offset < 0:
        raise ReplayError(ExitCode.KAFKA, f"{tp[0]}[{tp[1]}]: Kafka gave no offset ({offset})")
    return offset
