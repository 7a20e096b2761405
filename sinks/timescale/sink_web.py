"""The sink's readiness and counters over HTTP: `GET /ready`, `GET /stats` and `GET /metrics`.

A stdlib server on a daemon thread: the sink loop only bumps counters under a
lock, and the server reads a copy. `/ready` is 200 once the consumer holds
partitions and the database answered its last request, 503 otherwise (a
PostgreSQL outage makes the sink unready while it waits, which is what an
operator wants to see). `/metrics` is the Prometheus text of
sinks/timescale/sink_metrics.py, rendered in this server's thread. Nothing
here grows with traffic: counters and the set of assigned partitions only.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class SinkStats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._dlq: dict[str, int] = {}
        self._assigned: set[tuple[str, int]] = set()
        self._db_ok = False

    def add(self, **deltas: int) -> None:
        with self._lock:
            self._counts.update(deltas)

    def dead_lettered(self, codes: list[str]) -> None:
        with self._lock:
            for code in codes:
                self._dlq[code] = self._dlq.get(code, 0) + 1

    def set_db_ok(self, ok: bool) -> None:
        with self._lock:
            self._db_ok = ok

    def assigned(self, partitions: list[tuple[str, int]]) -> None:
        with self._lock:
            self._assigned.update(partitions)
            self._counts["partitions_assigned"] += len(partitions)

    def revoked(self, partitions: list[tuple[str, int]]) -> None:
        with self._lock:
            self._assigned.difference_update(partitions)
            self._counts["partitions_revoked"] += len(partitions)

    def counters(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def ready(self) -> bool:
        with self._lock:
            return bool(self._assigned) and self._db_ok

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "inserted": self._counts["inserted"],
                "replayed": self._counts["replayed"],
                "batches": self._counts["batches"],
                "records": self._counts["records"],
                "retries": self._counts["retries"],
                "dlq": dict(self._dlq),
                "assigned_partitions": len(self._assigned),
                "db_ok": self._db_ok,
            }


METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _handler(
    stats: SinkStats, render_metrics: Callable[[], bytes] | None
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/ready":
                ready = stats.ready()
                self._send(200 if ready else 503, {"ready": ready})
            elif self.path == "/stats":
                self._send(200, stats.snapshot())
            elif self.path == "/metrics" and render_metrics is not None:
                self._send_bytes(200, render_metrics(), METRICS_CONTENT_TYPE)
            else:
                self._send(404, {"error": {"code": "not_found", "message": self.path}})

        def _send(self, status: int, body: dict[str, Any]) -> None:
            self._send_bytes(status, json.dumps(body).encode(), "application/json")

        def _send_bytes(self, status: int, data: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            # Readiness probes every few hundred milliseconds would flood the log.
            pass

    return Handler


class SinkWebServer:
    def __init__(
        self,
        host: str,
        port: int,
        stats: SinkStats,
        render_metrics: Callable[[], bytes] | None = None,
    ) -> None:
        self._server = ThreadingHTTPServer((host, port), _handler(stats, render_metrics))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="sink-web", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
