"""A reprocess that Kafka refuses in part, on the real stack: the letter Kafka would
not take is reported (exit 10) and left out of the ledger, so the next reprocess
re-drives it, and only it."""

from __future__ import annotations

import json
import uuid
from typing import Any

from confluent_kafka import Producer

from replay.exit_codes import ExitCode
from sbp.settings import Settings
from schemas import catalog
from schemas.codec import AvroCodec, registry_client
from streams.dlq import SourceRecord, envelope
from streams.topics import VOTES_DLQ, VOTES_RAW
from tests.integration.conftest import Tenant
from tests.integration.operators import operator_log, operator_token, replay


def _letters(settings: Settings, reason: str, sources: list[SourceRecord]) -> None:
    """Dead letters as the vote stage writes them, onto one DLQ partition in order."""
    subject = catalog.value_subject(VOTES_DLQ.name)
    with registry_client(settings) as client:
        codec = AvroCodec(client)
        writer = codec.writer(subject, catalog.latest(subject).text)
    producer = Producer({**settings.kafka_config("admin"), "enable.idempotence": True})
    for source in sources:
        value = codec.encode(writer, envelope(source, reason, "drill", 1, "sbp-worker"))
        producer.produce(VOTES_DLQ.name, key=source.key, value=value, partition=0)
    assert producer.flush(30) == 0


def _reprocess(token: str, reason: str, *extra: str) -> tuple[int, dict[str, Any], str]:
    result = replay(token, "dlq", "reprocess", "--reason", reason, "--json", *extra)
    return result.returncode, json.loads(result.stdout), result.stderr


def test_a_letter_kafka_refuses_is_reported_and_re_driven_by_the_next_reprocess(
    tenant: Tenant,
) -> None:
    settings = tenant.settings
    token, operator_user = operator_token(tenant)
    reason = f"drill_{uuid.uuid4().hex[:8]}"
    key = f"{tenant.tenant_id}|b1|z1".encode()
    _letters(
        settings,
        reason,
        [
            # votes.raw has 24 partitions: Kafka refuses partition 99.
            SourceRecord(VOTES_RAW.name, 99, 0, key, b"lost", []),
            SourceRecord(VOTES_RAW.name, 0, 0, key, b"not avro", []),
        ],
    )

    code, first, stderr = _reprocess(token, reason, "--execute")
    assert code == ExitCode.PARTIAL, stderr
    assert "Kafka refused 1" in stderr
    assert (first["executed"], first["redriven"], first["refused"]) == (True, 1, 1)
    # Logged: the row records the plan, the ledger only what Kafka took.
    [row] = operator_log(settings, operator_user)
    assert row[5]["totals"]["redrive"] == 2

    code, again, stderr = _reprocess(token, reason)
    assert code == 0, stderr
    assert again["totals"] == {
        "redrive": 1,
        "already-redriven": 1,
        "attempts-cap": 0,
        "not-redrivable": 0,
    }
