"""What the vote stage needs from its consumer, as one small interface.

`FaustConsumer` is the real one, over the faust app's consumer. Unit tests
pass their own, so the stage's batch logic runs under `agent.test_context()`
without a broker; integration tests and the drills use the real one.
"""

from __future__ import annotations

from typing import Any, Protocol

from faust.types import TP

from streams.app import is_ready


class ConsumerPort(Protocol):
    def ready(self) -> bool:
        """Partitions assigned and the state recovered: batches may be processed."""

    def held(self) -> set[int]:
        """The partitions of the input topic this worker holds now."""

    def rebalancing(self) -> bool:
        """A rebalance has stopped the flow, and faust waits for the batch in hand."""

    async def log_start(self, partition: int) -> int: ...

    async def log_end(self, partition: int) -> int: ...

    async def seek(self, partition: int, offset: int) -> None: ...


class FaustConsumer:
    def __init__(self, app: Any, topic: str) -> None:
        self._app = app
        self._topic = topic

    def ready(self) -> bool:
        return is_ready(self._app)

    def rebalancing(self) -> bool:
        # faust ends a rebalance by resuming the flow and only then clearing
        # `rebalancing`; batches in that window are safe (and worth) holding.
        return bool(self._app.rebalancing) and not self._app.consumer.flow_active

    def held(self) -> set[int]:
        return {tp.partition for tp in self._app.consumer.assignment() if tp.topic == self._topic}

    async def log_start(self, partition: int) -> int:
        tp = TP(self._topic, partition)
        return int((await self._app.consumer.earliest_offsets(tp)).get(tp, 0))

    async def log_end(self, partition: int) -> int:
        tp = TP(self._topic, partition)
        return int((await self._app.consumer.highwaters(tp)).get(tp, 0))

    async def seek(self, partition: int, offset: int) -> None:
        # `seek_wait` runs the seek on the consumer's own thread. faust's `seek`
        # changes the position from this thread while that one consumes and
        # advances it, and under load the seek was lost (the same gap sought
        # again and again, 170k records re-read at a worker start).
        await self._app.consumer.seek_wait({TP(self._topic, partition): offset})
