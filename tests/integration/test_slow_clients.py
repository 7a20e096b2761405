"""Slow clients (slowloris) on the running gateway and registry: a connection whose
headers or body do not arrive in time is closed, while a prompt request on the same
server is answered. The four slow connections run at once, so the test takes about
the body deadline (30 s), not the sum."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from sbp.settings import Settings
from sbp.slow_client_guard import BODY_TIMEOUT_S, HEADER_TIMEOUT_S, MAX_HEADER_BYTES

SLACK_S = 5.0


def _closed_after(host: str, port: int, first_bytes: bytes, limit_s: float) -> float:
    """Send `first_bytes`, then one byte a second; seconds until the server closed."""
    start = time.monotonic()
    with socket.create_connection((host, port), timeout=limit_s + SLACK_S) as sock:
        sock.sendall(first_bytes)
        while time.monotonic() - start < limit_s + SLACK_S:
            sock.settimeout(1.0)
            try:
                if sock.recv(4096) == b"":
                    return time.monotonic() - start
            except TimeoutError:
                pass
            except ConnectionResetError:
                return time.monotonic() - start
            try:
                sock.sendall(b"x")
            except (BrokenPipeError, ConnectionResetError):
                return time.monotonic() - start
    return float("inf")


def test_slow_headers_and_bodies_are_cut_off(stack: Settings) -> None:
    host = stack.host
    partial_headers = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "
    partial_body = (
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100000\r\n\r\n{"
    )
    cases = {
        ("gateway", "headers"): (stack.gateway_port, partial_headers, HEADER_TIMEOUT_S),
        ("gateway", "body"): (stack.gateway_port, partial_body, BODY_TIMEOUT_S),
        ("registry", "headers"): (stack.registry_port, partial_headers, HEADER_TIMEOUT_S),
        ("registry", "body"): (
            stack.registry_port,
            partial_body.replace(b"/api/v1/auth/login", b"/subjects/x/versions"),
            BODY_TIMEOUT_S,
        ),
    }
    with ThreadPoolExecutor(len(cases)) as pool:
        futures = {
            name: pool.submit(_closed_after, host, port, data, limit)
            for name, (port, data, limit) in cases.items()
        }
        # Positive control while the slow clients hold their connections.
        assert (
            httpx.get(f"http://{host}:{stack.gateway_port}/healthz", timeout=5).status_code == 200
        )
        assert httpx.get(f"{stack.registry_url}/healthz", timeout=5).status_code == 200
        closed = {name: f.result() for name, f in futures.items()}
    print(f"\nslow clients closed after: { {k: round(v, 1) for k, v in closed.items()} }")
    for (service, part), seconds in closed.items():
        limit = HEADER_TIMEOUT_S if part == "headers" else BODY_TIMEOUT_S
        assert limit - 1 <= seconds <= limit + SLACK_S, f"{service} slow {part}: {seconds:.1f} s"


def test_oversized_headers_are_cut_off(stack: Settings) -> None:
    """A request line and headers past 64 KiB close the connection before the parser
    buffers them; a normal request on the same server is answered."""
    for port in (stack.gateway_port, stack.registry_port):
        with socket.create_connection((stack.host, port), timeout=10) as sock:
            sock.sendall(b"GET /healthz?" + b"a" * (MAX_HEADER_BYTES + 1) + b" HTTP/1.1\r\n")
            sock.settimeout(10)
            try:
                closed = sock.recv(4096) == b""
            except ConnectionResetError:
                closed = True
        assert closed, port
        assert httpx.get(f"http://{stack.host}:{port}/healthz", timeout=5).status_code == 200
