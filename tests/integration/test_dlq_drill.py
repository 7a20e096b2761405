"""The poison-and-repair drill (issue 8, "Prove it" 1), on the real stack.

1,000 bad records of three kinds go onto votes.raw beside good votes:

- `unknown_schema_id`: votes written with a schema the registry does not have yet
  (a release that produced before its schema was registered): recoverable, once the
  schema is registered;
- `undecodable`: framed with a known schema id, but with bytes after the record: never;
- `wrong_key`: sound votes under another zone's key: never (the bytes are the fault).

`dlq list` counts them by reason exactly. The cause of the first kind is fixed (the
schema registered), and `dlq reprocess --execute` re-drives every letter: PostgreSQL
and the live windows gain exactly the recoverable votes, the others return to the DLQ
with attempts 2, and a second reprocess changes nothing (the ledger says the letters
were re-driven, and their new letters are at the attempts cap).
"""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import fastavro
import psycopg
from confluent_kafka.schema_registry import Schema

from devstack.raw_votes import KINDS, RawVoteProducer, raw_vote
from replay.exit_codes import ExitCode
from sbp.settings import Settings
from schemas import catalog
from schemas.codec import Writer, registry_client
from streams.tables.comfort_buckets import zone_key
from streams.topics import VOTES_DLQ, VOTES_RAW
from tests.integration.conftest import Tenant
from tests.integration.drills import expected_windows, published_windows
from tests.integration.observe import end_offsets, vote_count, vote_rows, wait_for
from tests.integration.operators import operator_log, operator_token, replay

GOOD = 200
RECOVERABLE = 400
UNDECODABLE = 300
WRONG_KEY = 300


def _votes(tenant: Tenant, count: int, rng: random.Random) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    votes = []
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        votes.append(
            raw_vote(
                tenant.tenant_id,
                tenant.building_id,
                rng.choice(tenant.zones),
                kind=kind,
                value=rng.randint(-3, 3) if kind == "thermal" else rng.randint(1, 5),
                user_ref=f"ref-{rng.randint(1, 50)}",
                client_ts=now - timedelta(seconds=rng.randint(5, 600)),
                received_at=now,
            )
        )
    return votes


def _next_schema_id(settings: Settings) -> int:
    """The id the registry will hand the next new schema (an identity column)."""
    with psycopg.connect(settings.pg_dsn("owner")) as conn:
        # last_value is NULL until the sequence is first used.
        row = conn.execute(
            "SELECT coalesce(last_value + increment_by, start_value) FROM pg_sequences"
            " WHERE schemaname = 'registry' AND sequencename = 'schemas_id_seq'"
        ).fetchone()
    assert row is not None
    return int(row[0])


def _future_schema() -> dict[str, Any]:
    """The newest votes.raw schema plus a field no registered schema has: a new id."""
    schema: dict[str, Any] = json.loads(catalog.latest(catalog.value_subject(VOTES_RAW.name)).text)
    schema["fields"].append(
        {"name": f"release{uuid.uuid4().hex}", "type": ["null", "string"], "default": None}
    )
    return schema


def _dlq(token: str, since: datetime, *args: str) -> dict[str, Any]:
    result = replay(token, "dlq", *args, "--since", since.isoformat(), "--json")
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def _attempts_by_reason(token: str, since: datetime) -> Counter[tuple[str, int]]:
    shown = _dlq(token, since, "show", "--limit", "10000")
    assert shown["more"] is False
    return Counter((letter["errorCode"], letter["attempts"]) for letter in shown["letters"])


def _windows_equal(tenant: Tenant, votes: list[dict[str, Any]]) -> None:
    want = expected_windows(votes)
    wait_for(
        lambda: (
            published_windows(tenant.settings, tenant.tenant_id, tenant.building_id, tenant.zones)
            == want
        ),
        120,
        f"the 60-minute windows counting exactly {len(votes)} votes",
    )


def test_poison_then_repair_re_drives_exactly_the_recoverable_votes(tenant: Tenant) -> None:
    settings = tenant.settings
    token, operator_user = operator_token(tenant)
    rng = random.Random(88)
    since = datetime.now(UTC)
    good = _votes(tenant, GOOD, rng)
    recoverable = _votes(tenant, RECOVERABLE, rng)
    doomed_undecodable = _votes(tenant, UNDECODABLE, rng)
    doomed_wrong_key = _votes(tenant, WRONG_KEY, rng)

    future = _future_schema()
    future_id = _next_schema_id(settings)
    future_writer = Writer("drill", future_id, fastavro.parse_schema(future))
    with RawVoteProducer(settings) as producer:
        producer.produce(good)
        for vote in recoverable:
            key, _value = producer.encode(vote)
            producer.produce_bytes(key, producer.codec.encode(future_writer, vote))
        for vote in doomed_undecodable:
            key, value = producer.encode(vote)
            producer.produce_bytes(key, value + b"\x00")  # a byte after the record
        for vote in doomed_wrong_key:
            _key, value = producer.encode(vote)
            other = next(z for z in tenant.zones if z != vote["zoneId"])
            producer.produce_bytes(
                zone_key(tenant.tenant_id, tenant.building_id, other).encode(), value
            )

    # The good votes are stored and counted; the 1,000 others are letters, by reason.
    wait_for(lambda: vote_count(settings, tenant.tenant_id) == GOOD, 120, f"{GOOD} rows")
    wait_for(lambda: _dlq(token, since, "list")["total"] >= 1000, 120, "1,000 letters in the DLQ")
    listed = _dlq(token, since, "list")
    assert listed["byReason"] == {
        "undecodable": UNDECODABLE,
        "unknown_schema_id": RECOVERABLE,
        "wrong_key": WRONG_KEY,
    }
    assert {(r["topic"], r["maxAttempts"]) for r in listed["rows"]} == {(VOTES_RAW.name, 1)}
    only_recoverable = _dlq(token, since, "list", "--reason", "unknown_schema_id")
    assert only_recoverable["total"] == RECOVERABLE
    _windows_equal(tenant, good)

    # The plan, before anything changes: every letter would be re-driven.
    planned = _dlq(token, since, "reprocess", "--max-attempts", "2")
    assert planned["executed"] is False
    assert planned["totals"] == {
        "redrive": 1000,
        "already-redriven": 0,
        "attempts-cap": 0,
        "not-redrivable": 0,
    }
    assert planned["redriveByTopic"] == {VOTES_RAW.name: 1000}

    # The fix: the release's schema is registered, under the id its records carry.
    with registry_client(settings) as client:
        registered = client.register_schema(
            f"drill-{uuid.uuid4().hex}-value", Schema(json.dumps(future), "AVRO")
        )
    assert registered == future_id

    raw_total = sum(end_offsets(settings, VOTES_RAW.name).values())
    executed = _dlq(token, since, "reprocess", "--max-attempts", "2", "--execute")
    assert (executed["executed"], executed["redriven"], executed["refused"]) == (True, 1000, 0)
    assert sum(end_offsets(settings, VOTES_RAW.name).values()) == raw_total + 1000

    # PostgreSQL and the windows gain exactly the recoverable votes, once each.
    wait_for(
        lambda: vote_count(settings, tenant.tenant_id) >= GOOD + RECOVERABLE,
        120,
        "the recoverable votes stored",
    )
    stored = sorted(r[0] for r in vote_rows(settings, tenant.tenant_id))
    assert stored == sorted(str(v["voteUuid"]) for v in good + recoverable)
    _windows_equal(tenant, good + recoverable)
    # The unrecoverable ones are back, with attempts 2, beside their first letters.
    wait_for(
        lambda: _dlq(token, since, "list")["total"] >= 1000 + UNDECODABLE + WRONG_KEY,
        120,
        "the re-driven letters that failed again",
    )
    assert _attempts_by_reason(token, since) == {
        ("unknown_schema_id", 1): RECOVERABLE,
        ("undecodable", 1): UNDECODABLE,
        ("undecodable", 2): UNDECODABLE,
        ("wrong_key", 1): WRONG_KEY,
        ("wrong_key", 2): WRONG_KEY,
    }

    # A second reprocess changes nothing: the first letters were re-driven, the new
    # ones are at the cap; nothing is produced, nothing logged.
    dlq_end = end_offsets(settings, VOTES_DLQ.name)
    raw_end = end_offsets(settings, VOTES_RAW.name)
    again = _dlq(token, since, "reprocess", "--max-attempts", "2", "--execute")
    assert again["executed"] is False
    assert again["totals"] == {
        "redrive": 0,
        "already-redriven": 1000,
        "attempts-cap": UNDECODABLE + WRONG_KEY,
        "not-redrivable": 0,
    }
    assert end_offsets(settings, VOTES_RAW.name) == raw_end
    assert end_offsets(settings, VOTES_DLQ.name) == dlq_end
    assert vote_count(settings, tenant.tenant_id) == GOOD + RECOVERABLE

    [row] = operator_log(settings, operator_user)
    _tenant, _user, action, _group, topic, detail, _at = row
    assert (action, topic) == ("replay.dlq.reprocess", VOTES_DLQ.name)
    assert detail["totals"]["redrive"] == 1000
    assert detail["filter"] == {"since": since.isoformat()}


def test_reprocess_refuses_a_naive_time_and_a_non_operator(tenant: Tenant) -> None:
    token, _user = operator_token(tenant)
    naive = replay(token, "dlq", "reprocess", "--since", "2026-11-29T17:00:00")
    assert naive.returncode == ExitCode.USAGE
    assert "UTC offset" in naive.stderr
    occupant = replay(tenant.token(), "dlq", "list")
    assert occupant.returncode == ExitCode.FORBIDDEN
