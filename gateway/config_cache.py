"""The gateway's copy of the config.* topics: zones and settings of every tenant.

A thread reads `config.zones` and `config.tenant-settings` whole, from the
beginning, with no consumer group (every gateway needs every record, and there is
nothing to commit), and keeps each key's latest state; a tombstone removes a zone.
It is ready once it has read up to the ends the topics had when it started.

Readers (the zone directory, the vote routes) get a tenant's entry, which the thread
replaces whole (one dict item assignment, atomic in CPython) and never mutates in
place, so no lock is needed to read.
"""

from __future__ import annotations

import logging
import threading

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from admin.tenant_settings import DEFAULT_SETTINGS, TenantSettings, parse_settings
from schemas.codec import AvroCodec
from streams.topics import CONFIG_TENANT_SETTINGS, CONFIG_ZONES

log = logging.getLogger(__name__)


class ConfigCache:
    def __init__(self, kafka_config: dict[str, str], codec: AvroCodec) -> None:
        self._config = kafka_config
        self._codec = codec
        # tenant → building → zone ids; a tenant is present once any zone record of it
        # was read (then it is authoritative for that tenant, deletions included).
        self._zones: dict[str, dict[str, frozenset[str]]] = {}
        self._settings: dict[str, TenantSettings] = {}
        self.ready = threading.Event()
        self.records = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="config-cache", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def zones_of(self, tenant_id: str) -> dict[str, frozenset[str]] | None:
        """The tenant's zones by building, or None if no zone record of it was read."""
        return self._zones.get(tenant_id)

    def settings_of(self, tenant_id: str) -> TenantSettings:
        return self._settings.get(tenant_id, DEFAULT_SETTINGS)

    def _run(self) -> None:
        consumer = Consumer(
            {
                **self._config,
                # Required by the client, never joined: partitions are assigned directly.
                "group.id": "sbp-gateway-config",
                "enable.auto.commit": False,
                "enable.partition.eof": False,
            }
        )
        partitions = [
            TopicPartition(CONFIG_ZONES.name, 0, OFFSET_BEGINNING),
            TopicPartition(CONFIG_TENANT_SETTINGS.name, 0, OFFSET_BEGINNING),
        ]
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
                    self._apply(topic, message.key(), message.value())
                    positions[(topic, partition)] = offset + 1
                if not self.ready.is_set() and all(positions[k] >= end for k, end in ends.items()):
                    self.ready.set()
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

    def _apply(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        self.records += 1
        try:
            if topic == CONFIG_ZONES.name:
                self._apply_zone(key, value)
            elif topic == CONFIG_TENANT_SETTINGS.name and value is not None:
                record = self._codec.decode(value).record
                tenant_id = record.pop("tenantId")
                record.pop("version", None)
                self._settings[tenant_id] = parse_settings(record)
        except Exception:
            # A record this gateway cannot read must not stop it reading the rest.
            log.exception("config record on %s skipped", topic)

    def _apply_zone(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        tenant_id, building_id, zone_id = key.decode().split("|")
        buildings = dict(self._zones.get(tenant_id, {}))
        zones = set(buildings.get(building_id, frozenset()))
        if value is None:
            zones.discard(zone_id)
        else:
            zones.add(zone_id)
        if zones:
            buildings[building_id] = frozenset(zones)
        else:
            buildings.pop(building_id, None)
        self._zones[tenant_id] = buildings
