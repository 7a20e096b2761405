"""SSE timing behaviour, on a second gateway process of its own with a short heartbeat:
heartbeats on an idle stream, and the stream ending when the token expires."""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from devstack.processes import ManagedProcess, wait_until_ready
from sbp.settings import REPO_ROOT, Settings
from tests.integration.conftest import Tenant


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def quick_gateway(stack: Settings) -> Iterator[str]:
    port = _free_port()
    proc = ManagedProcess(f"gateway-test-{port}", stack.state_dir / "run", marker=f"{port}")
    env = {
        **os.environ,
        "SBP_SSE_HEARTBEAT_S": "0.3",
        "SBP_GATEWAY_PORT": str(port),
        # Its metrics on any free port: the stack's gateway holds the usual one.
        "SBP_GATEWAY_METRICS_PORT_OVERRIDE": "0",
    }
    proc.start(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "gateway.app:create_app",
            "--host",
            stack.host,
            "--port",
            str(port),
        ],
        env=env,
        cwd=REPO_ROOT,
    )
    url = f"http://{stack.host}:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until_ready(proc, ready, 60)
        yield url
    finally:
        proc.stop()


def test_idle_stream_gets_heartbeats_and_ends_when_the_token_expires(
    tenant: Tenant, quick_gateway: str
) -> None:
    token = tenant.token(role="fm", user="fm-1", ttl_s=3)
    lines: list[str] = []
    started = time.monotonic()
    with httpx.stream(
        "GET",
        f"{quick_gateway}/api/v1/buildings/b1/stream",
        headers={"Authorization": f"Bearer {token}"},
        timeout=15,
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            lines.append(line)
    elapsed = time.monotonic() - started

    # The server closed the stream by itself, about when the 3 s token expired.
    assert 1.5 < elapsed < 10, elapsed
    assert "event: snapshot" in lines
    assert lines.count(": heartbeat") >= 3
    assert "event: end" in lines
    assert 'data: {"reason": "token_expired"}' in lines
