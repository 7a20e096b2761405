"""The config view: every tenant's zones and settings, followed live from the config topics.

The one follower of `config.zones` and `config.tenant-settings`: the gateway
(its zone directory, skew tolerances and rate budgets) and the worker (zone
names and floors in live snapshots, deleted zones) run this same class. A
thread reads both topics whole, from the beginning, with a confluent-kafka
consumer that never joins its group (every process needs every record, and
there is nothing to commit; librdkafka still requires a group id, and looks
its coordinator up, so the principal holds READ on that group). Each record is
decoded by the one Avro codec and applied to `TenantConfig`
(streams/tables/tenant_config.py), which anyone may read without a lock. The
view is `ready` once it has read up to the ends the topics had when it started.

Why not a faust GlobalTable in the worker. A GlobalTable would make the config
topics part of the worker's consumer group and faust's recovery, which is where
the brief's known faults live (§3: records skipped and acked during recovery or
an old generation, faust-streaming #596/#216/#221), and it has its own:
- faust's own GlobalTable docstring warns that several app instances "may cause
  an app to be stuck in an infinite recovery loop", and the open issue #283
  ("GlobalTable not working when using multiple instances", fix #325 still
  unmerged) shows instances whose copy never sees another's updates;
- changelog records read after "Worker ready" were not applied (#212, fixed by
  #213), and a table fed by a topic that another group writes needs the extra
  `synchronize_all_active_partitions` option (#426) and still missed updates
  when fed straight into its changelog (robinhood/faust #541);
- recovery of an empty changelog partition (config.tenant-settings before any
  tenant changes a setting) misbehaves (#597), and every rebalance of the vote
  stage's group would re-run a recovery that holds the votes back.
The config topics are small, compacted, single-partition and written by
another service: reading them whole, outside any group, in a thread, is simple,
has no rebalance, and never blocks the event loop (decoding, registry look-ups
and the consumer's polls all happen in the thread). The worker's readiness
waits for the view (streams/worker.py), as the gateway's does.
"""

from __future__ import annotations

import logging
import threading
import time

from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaException,
    Message,
    TopicPartition,
)

from admin.tenant_settings import TenantSettings
from schemas.codec import AvroCodec
from streams.tables.tenant_config import (
    REMOVED_ZONE_MEMORY_S,
    Removal,
    TenantConfig,
    TenantZones,
    Zone,
)
from streams.topics import CONFIG_TENANT_SETTINGS, CONFIG_ZONES

log = logging.getLogger(__name__)
FOLLOWED = (CONFIG_ZONES.name, CONFIG_TENANT_SETTINGS.name)


class ConfigView:
    def __init__(self, kafka_config: dict[str, str], codec: AvroCodec, group_id: str) -> None:
        self._kafka_config = kafka_config
        self._codec = codec
        self._group_id = group_id
        self._config = TenantConfig()
        self.ready = threading.Event()
        self.records = 0
        self.skipped = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="config-view", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    # --- reading: any thread, no lock (streams/tables/tenant_config.py) ------

    def zones_of(self, tenant_id: str) -> TenantZones | None:
        return self._config.zones_of(tenant_id)

    def zone(self, tenant_id: str, building_id: str, zone_id: str) -> Zone | None:
        return self._config.zone(tenant_id, building_id, zone_id)

    def is_removed(self, tenant_id: str, building_id: str, zone_id: str) -> bool:
        return self._config.is_removed(tenant_id, building_id, zone_id)

    def removals_after(self, seq: int) -> list[Removal]:
        return self._config.removals_after(seq)

    def settings_of(self, tenant_id: str) -> TenantSettings:
        return self._config.settings_of(tenant_id)

    # --- the thread -----------------------------------------------------------

    def _run(self) -> None:
        consumer = Consumer(
            {
                **self._kafka_config,
                # Required by the client, never joined: partitions are assigned directly.
                "group.id": self._group_id,
                "enable.auto.commit": False,
                "enable.partition.eof": False,
            }
        )
        partitions = [TopicPartition(topic, 0, OFFSET_BEGINNING) for topic in FOLLOWED]
        try:
            ends = self._ends(consumer, partitions)
            consumer.assign(partitions)
            positions = {(tp.topic, tp.partition): 0 for tp in partitions}
            while not self._stop.is_set():
                for message in consumer.consume(500, timeout=0.5):
                    if message.error():
                        log.warning("config topic error: %s", message.error())
                        continue
                    topic, partition, offset = (
                        message.topic(),
                        message.partition(),
                        message.offset(),
                    )
                    if topic is None or partition is None or offset is None:
                        continue
                    self._apply(topic, message)
                    positions[(topic, partition)] = offset + 1
                if not self.ready.is_set() and all(positions[k] >= end for k, end in ends.items()):
                    self.ready.set()
                self._config.forget_removals(time.time() - REMOVED_ZONE_MEMORY_S)
        finally:
            consumer.close()

    def _ends(
        self, consumer: Consumer, partitions: list[TopicPartition]
    ) -> dict[tuple[str, int], int]:
        while True:
            try:
                return {
                    (tp.topic, tp.partition): consumer.get_watermark_offsets(tp, timeout=5)[1]
                    for tp in partitions
                }
            except KafkaException as exc:
                if self._stop.wait(1.0):
                    return {}
                log.warning("config topics not readable yet: %s", exc)

    def _apply(self, topic: str, message: Message) -> None:
        self.records += 1
        key, value = message.key(), message.value()
        try:
            if key is None:
                raise ValueError("a config record without a key")
            record = None if value is None else self._codec.decode(value).record
            if topic == CONFIG_ZONES.name:
                self._config.apply_zone(key, record, _written_at_s(message))
            else:
                self._config.apply_settings(key, record)
        except Exception:
            # A record this process cannot read must not stop it reading the rest.
            self.skipped += 1
            log.exception("config record on %s at offset %s skipped", topic, message.offset())


def _written_at_s(message: Message) -> float:
    """When the relay wrote the record (its CreateTime), or now if the broker gave none."""
    kind, ms = message.timestamp()
    return ms / 1000 if kind != TIMESTAMP_NOT_AVAILABLE else time.time()
