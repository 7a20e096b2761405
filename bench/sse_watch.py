"""Watches a building's live SSE stream and records, per zone, what each aggregate counted.

It subscribes to `GET /api/v1/buildings/{b}/stream` as a facility manager, in
a thread of its own so that the load generator's event loop never delays a
receipt time. For every `aggregate` event it records:

- the receipt time (`time.time()`, the same clock as the load generator's);
- the time Redis appended the event to the building's stream, from the SSE
  id (a Redis Stream id starts with its wall-clock milliseconds);
- the zone and its 60-minute count summed over kinds.

If the gateway drops the stream (a slow client) it reconnects with
Last-Event-ID, as a browser would, and counts the reconnect.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import orjson


@dataclass(frozen=True)
class Observation:
    received_at: float
    published_at: float
    zone: str
    count: int


def window_count(aggregate: dict[str, object], window: str = "60m") -> int:
    """Σ n of one window over the kinds of a zone's aggregate."""
    kinds = aggregate.get("kinds")
    if not isinstance(kinds, dict):
        return 0
    return sum(int(w.get(window, {}).get("n", 0)) for w in kinds.values() if isinstance(w, dict))


@dataclass
class SseWatch:
    url: str
    token: str
    observations: list[Observation] = field(default_factory=list)
    reconnects: int = 0
    errors: list[str] = field(default_factory=list)
    connected: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _last_id: str | None = None

    def start(self, limit_s: float = 30.0) -> None:
        self._thread = threading.Thread(target=self._run, name="sse-watch", daemon=True)
        self._thread.start()
        if not self.connected.wait(limit_s):
            raise SystemExit(f"no SSE stream from {self.url}: {self.errors[-3:]}")

    def stop(self) -> None:
        """Stop at the next frame (aggregates come every second under load; heartbeats 15 s)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)

    def by_zone(self) -> dict[str, list[Observation]]:
        zones: dict[str, list[Observation]] = {}
        for obs in list(self.observations):
            zones.setdefault(obs.zone, []).append(obs)
        return zones

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except (httpx.HTTPError, orjson.JSONDecodeError, ValueError) as exc:
                self.errors.append(repr(exc))
            if not self._stop.is_set():
                self.reconnects += 1
                time.sleep(0.2)

    def _listen(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "text/event-stream"}
        if self._last_id:
            headers["Last-Event-ID"] = self._last_id
        timeout = httpx.Timeout(10.0, read=60.0)
        with (
            httpx.Client(timeout=timeout) as client,
            client.stream("GET", self.url, headers=headers) as response,
        ):
            if response.status_code != 200:
                raise ValueError(f"SSE answered {response.status_code}: {response.read()!r}")
            self.connected.set()
            for event, event_id, data in _frames(response.iter_lines()):
                received = time.time()
                if self._stop.is_set():
                    return
                if event_id:
                    self._last_id = event_id
                if event != "aggregate" or not event_id:
                    continue
                body = orjson.loads(data)
                self.observations.append(
                    Observation(
                        received,
                        int(event_id.partition("-")[0]) / 1000,
                        str(body["zoneId"]),
                        window_count(body),
                    )
                )


def _frames(lines: Iterator[str]) -> Iterator[tuple[str, str | None, str]]:
    """(event, id, data) per SSE frame; comments (heartbeats) are skipped."""
    event, event_id = "message", None
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield event, event_id, "\n".join(data)
            event, event_id, data = "message", None, []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "id":
                event_id = value
            elif name == "data":
                data.append(value)
