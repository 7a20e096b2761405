"""The PostgreSQL sink's readiness and counters, as its /ready and /stats serve them."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from sinks.timescale.sink_web import SinkStats, SinkWebServer


def test_ready_needs_both_partitions_and_an_answering_database() -> None:
    stats = SinkStats()
    assert not stats.ready()
    stats.assigned([("votes.accepted", 0), ("votes.accepted", 1)])
    assert not stats.ready()
    stats.set_db_ok(True)
    assert stats.ready()
    stats.set_db_ok(False)
    assert not stats.ready()
    stats.set_db_ok(True)
    stats.revoked([("votes.accepted", 0)])
    assert stats.ready()
    stats.revoked([("votes.accepted", 1)])
    assert not stats.ready()


def test_counters_add_up_and_dead_letters_are_counted_by_code() -> None:
    stats = SinkStats()
    stats.add(inserted=1990, replayed=10, batches=1, records=2000)
    stats.add(inserted=5, batches=1, records=7, retries=3)
    stats.dead_lettered(["undecodable", "db_rejected", "undecodable"])
    assert stats.snapshot() == {
        "inserted": 1995,
        "replayed": 10,
        "batches": 2,
        "records": 2007,
        "retries": 3,
        "dlq": {"undecodable": 2, "db_rejected": 1},
        "assigned_partitions": 0,
        "db_ok": False,
    }


@pytest.fixture
def served() -> Iterator[tuple[SinkStats, str]]:
    stats = SinkStats()
    server = SinkWebServer("127.0.0.1", 0, stats)
    server.start()
    yield stats, f"http://127.0.0.1:{server.port}"
    server.stop()


def _get(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def test_the_endpoints_serve_readiness_and_counters(served: tuple[SinkStats, str]) -> None:
    stats, base = served
    assert _get(f"{base}/ready") == (503, {"ready": False})
    stats.assigned([("votes.accepted", 3)])
    stats.set_db_ok(True)
    stats.add(inserted=4)
    assert _get(f"{base}/ready") == (200, {"ready": True})
    status, body = _get(f"{base}/stats")
    assert status == 200
    assert body["inserted"] == 4
    assert body["assigned_partitions"] == 1
    assert _get(f"{base}/nope")[0] == 404
