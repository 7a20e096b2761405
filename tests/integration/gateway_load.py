"""A steady vote load through the gateway, as occupants' apps send it.

Each user posts 100-item batches on one keep-alive connection. A request that
fails in transport is sent again with the same votes, as the app does; on such a
re-send `duplicate` means the first attempt was published (the gateway marks a
vote only once Kafka confirmed it). What the gateway answered is kept, so a drill
can check that every accepted vote was stored and counted once.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import httpx

from tests.integration.conftest import Tenant
from tests.integration.observe import wait_for

BATCH = 100
ATTEMPTS = 5
PUBLISHED = ("accepted", "late_submission")


class GatewayLoad:
    """Posts `votes` in 100-item batches at `rate` votes per second, round-robin over users."""

    def __init__(
        self,
        tenant: Tenant,
        votes: Sequence[dict[str, Any]],
        rate: int,
        users: int = 4,
        attempts: int = ATTEMPTS,
        retry_pause_s: float = 0.2,
    ) -> None:
        self.tenant = tenant
        self.batches = [list(votes[i : i + BATCH]) for i in range(0, len(votes), BATCH)]
        self.rate = rate
        self.users = [f"occupant-{i}" for i in range(users)]
        # A drill that restarts the gateway needs the app's patience: it keeps retrying
        # until the gateway is back.
        self.attempts = attempts
        self.retry_pause_s = retry_pause_s
        self.statuses: Counter[str] = Counter()
        self.resent = 0
        self.sent = 0
        self.accepted: set[str] = set()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="gateway-load", daemon=True)

    def _post(self, client: httpx.Client, headers: dict[str, str], batch: list[Any]) -> None:
        for attempt in range(self.attempts):
            try:
                response = client.post(
                    "/api/v1/votes/batch", json={"items": batch}, headers=headers
                )
            except httpx.TransportError:
                self.resent += 1
                time.sleep(self.retry_pause_s)
                continue
            if response.status_code >= 500:
                self.resent += 1
                time.sleep(self.retry_pause_s)
                continue
            assert response.status_code == 200, response.text
            for result in response.json()["results"]:
                status = result["status"]
                self.statuses[status] += 1
                if status in PUBLISHED or (attempt > 0 and status == "duplicate"):
                    self.accepted.add(result["voteUuid"])
            return
        raise AssertionError(f"a batch failed {self.attempts} times in transport")

    def _run(self) -> None:
        try:
            headers = [self.tenant.headers(user=u) for u in self.users]
            with httpx.Client(base_url=self.tenant.gateway, timeout=30) as client:
                start = time.monotonic()
                for i, batch in enumerate(self.batches):
                    self._post(client, headers[i % len(headers)], batch)
                    self.sent += len(batch)
                    due = start + self.sent / self.rate
                    time.sleep(max(0.0, due - time.monotonic()))
        except BaseException as exc:  # surfaced by join()
            self.error = exc

    def start(self) -> GatewayLoad:
        self._thread.start()
        return self

    def wait_sent(self, count: int, timeout: float = 120.0) -> None:
        wait_for(
            lambda: self.sent >= count or self.error is not None, timeout, f"{count} votes sent"
        )

    def join(self, timeout: float = 300.0) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the gateway load did not finish"
        if self.error is not None:
            raise self.error
