"""The SSE route's limits on real gateways (docs/sse-limits.md).

- A resume reads every missed event, across XRANGE pages, in order; a
  Last-Event-ID the stream never sent gets a snapshot and a working stream.
- A burst of 300 connects to the stack's gateway is all served.
- A building's reader ends when its last client leaves, seen from outside: each
  reader holds one Redis connection of its own, so a gateway process's
  established connections to Redis (read from /proc) rise by one per live
  building and fall back when the clients leave. Nothing is added to the
  gateway for this.
- Clients that leave mid-body or mid-stream, or stop reading, log no traceback.

The reader and log checks run on a gateway process of this module's own, started
with the stack's exact command line (uvloop, the guarded HTTP protocol) on
another port, so its Redis connections and its log are this module's alone.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from devstack.processes import ManagedProcess, wait_until_ready
from devstack.python_services import GATEWAY
from devstack.seed import seed_zones
from gateway.stream_routes import RESUME_PAGE, WRITE_TIMEOUT_S
from identity.dev_cli import mint_dev_token
from sbp.settings import REPO_ROOT, Settings
from sinks.live.redis_keys import building_events
from tests.integration.conftest import Tenant
from tests.integration.sse_client import SseEvent, sse_events

BUILDINGS = tuple(f"b{i}" for i in range(1, 7))
MAX_ID = f"{2**64 - 1}-{2**64 - 1}"


# --- a gateway process of this module's own ---------------------------------------------------


@dataclass(frozen=True)
class OwnGateway:
    url: str
    host: str
    port: int
    pid: int
    log: Path
    redis_port: int

    def log_offset(self) -> int:
        return self.log.stat().st_size

    def log_since(self, offset: int) -> str:
        with self.log.open("rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def redis_connections(self) -> int:
        """This process's established TCP connections to Redis."""
        return len(self._redis_local_ports())

    def redis_pollers(self, within_ms: int) -> int:
        """Of those, how many sent Redis anything in the last `within_ms` (from `ss`).

        A reader sends an XREAD at least every block period (5 s); a pooled
        connection sends only when a request uses it.
        """
        ours = self._redis_local_ports()
        out = subprocess.run(
            ["ss", "-Htni", "state", "established", f"dst :{self.redis_port}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        pollers, port = 0, None
        for line in out.splitlines():
            if not line[:1].isspace():  # a socket's first line: its addresses
                port = int(line.split()[2].rsplit(":", 1)[1])
            elif port in ours:
                lastsnd = re.search(r"\blastsnd:(\d+)", line)
                # Never sent since connect: no "lastsnd" at all; count it as recent.
                if lastsnd is None or int(lastsnd[1]) < within_ms:
                    pollers += 1
        return pollers

    def _redis_local_ports(self) -> set[int]:
        inodes = set()
        for fd in Path(f"/proc/{self.pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue  # closed while listing
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
        ports = set()
        for table in ("tcp", "tcp6"):
            lines = Path(f"/proc/{self.pid}/net/{table}").read_text().splitlines()[1:]
            for line in lines:
                fields = line.split()
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                established = fields[3] == "01"
                if established and remote_port == self.redis_port and fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        return ports


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def own_gateway(stack: Settings) -> Iterator[OwnGateway]:
    port = _free_port()
    settings = stack.model_copy(update={"gateway_port": port})
    proc = ManagedProcess(f"gateway-sse-limits-{port}", stack.state_dir / "run", marker=f"{port}")
    env = {
        **os.environ,
        "SBP_GATEWAY_PORT": str(port),
        # Its metrics on any free port: port + 1 may be taken (the stack's gateway, or
        # any other process), and the gateway refuses to start without it.
        "SBP_GATEWAY_METRICS_PORT_OVERRIDE": "0",
    }
    pid = proc.start([sys.executable, *GATEWAY.argv(settings)], env=env, cwd=REPO_ROOT)
    try:
        wait_until_ready(proc, lambda: GATEWAY.is_ready(settings), GATEWAY.timeout_s)
        yield OwnGateway(
            f"http://{stack.host}:{port}", stack.host, port, pid, proc.log_file, stack.redis_port
        )
    finally:
        proc.stop()


# --- tenants, streams and Redis ---------------------------------------------------------------


@dataclass(frozen=True)
class Campus:
    """A tenant of its own with several buildings, and an fm token for all of them."""

    settings: Settings
    tenant_id: str

    def headers(self, ttl_s: int = 900) -> dict[str, str]:
        token = mint_dev_token(
            self.settings, self.tenant_id, "fm-1", "fm", list(BUILDINGS), ttl_s=ttl_s
        )
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def campus(stack: Settings) -> Campus:
    tenant_id = f"t-{uuid.uuid4().hex[:12]}"
    for building in BUILDINGS:
        seed_zones(stack, tenant_id, building, [("f1", "z1", "zone 1")])
    return Campus(stack, tenant_id)


def _stream_url(base: str, building: str) -> str:
    return f"{base}/api/v1/buildings/{building}/stream"


def _known(base: str, campus: Campus) -> None:
    """Wait until the gateway knows every building: a gateway learns zones from the
    config topics, record by record, so a just-seeded building may 404 briefly."""

    def all_open() -> bool:
        for building in BUILDINGS:
            url = _stream_url(base, building)
            with httpx.stream("GET", url, headers=campus.headers(), timeout=10) as response:
                if response.status_code != 200:
                    return False
        return True

    _wait(all_open, 30, f"{base} to know buildings {BUILDINGS}")


@asynccontextmanager
async def _sse(
    client: httpx.AsyncClient, url: str, headers: dict[str, str]
) -> AsyncIterator[AsyncIterator[SseEvent]]:
    async with client.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200, (response.status_code, await response.aread())
        # Held here: an abandoned line iterator, once collected, closes the connection.
        events = sse_events(response)
        yield events


async def _next(events: AsyncIterator[SseEvent]) -> SseEvent:
    return await asyncio.wait_for(anext(events), timeout=30)


def _append(
    settings: Settings, tenant_id: str, building: str, count: int, size: int = 0
) -> list[str]:
    """XADD `count` events as the worker does (its own ACL user); returns their ids."""
    key = building_events(tenant_id, building)
    with redis.Redis.from_url(settings.redis_url_for("worker"), decode_responses=True) as r:
        pipe = r.pipeline(transaction=False)
        for i in range(count):
            data = json.dumps({"n": i, "pad": "x" * size})
            pipe.xadd(key, {"type": "aggregate", "data": data})
        return [str(stream_id) for stream_id in pipe.execute()]


def _wait(probe: Callable[[], bool], within_s: float, what: str) -> float:
    start = time.monotonic()
    while not probe():
        if time.monotonic() - start > within_s:
            raise AssertionError(f"timed out after {within_s}s waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - start


async def _settled(gateway: OwnGateway, campus: Campus) -> int:
    """The Redis connection count with no stream open and the shared pool connected.

    A client that leaves in the middle of a Redis command makes redis-py close that
    pooled connection (its reply is in flight); the pool reconnects on next use.
    One stream, opened alone and closed, does that; what remains is the pools'
    connections plus any reader still alive.
    """
    url = _stream_url(gateway.url, "b1")
    headers = campus.headers()
    async with httpx.AsyncClient(timeout=30) as client, _sse(client, url, headers) as events:
        await _next(events)
    return await asyncio.to_thread(_steady, gateway)


def _steady(gateway: OwnGateway, quiet_s: float = 1.5, within_s: float = 20) -> int:
    """The Redis connection count once it has not changed for `quiet_s`."""
    deadline = time.monotonic() + within_s
    last, since = gateway.redis_connections(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = gateway.redis_connections()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return now
    raise AssertionError(f"Redis connections never settled (last {last})")


async def _await_count(gateway: OwnGateway, expected: int, within_s: float, what: str) -> float:
    start = time.monotonic()
    while (now := gateway.redis_connections()) != expected:
        if time.monotonic() - start > within_s:
            raise AssertionError(f"{what}: {now} Redis connections, expected {expected}")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


def _no_traceback(log_text: str) -> None:
    assert "Traceback" not in log_text, log_text
    assert "Exception in ASGI application" not in log_text, log_text


# --- resume -------------------------------------------------------------------------------------


async def test_resume_reads_every_missed_event_across_pages(tenant: Tenant) -> None:
    missed = 2 * RESUME_PAGE + 234
    ids = _append(tenant.settings, tenant.tenant_id, "b1", 100 + missed)
    resume_from, expected = ids[99], ids[100:]
    headers = {**tenant.headers(role="fm", user="fm-1"), "Last-Event-ID": resume_from}
    url = _stream_url(tenant.gateway, "b1")
    async with httpx.AsyncClient(timeout=30) as client, _sse(client, url, headers) as events:
        replayed = [await _next(events) for _ in expected]
        # Then live, from where the replay ended.
        (live_id,) = _append(tenant.settings, tenant.tenant_id, "b1", 1)
        live = await _next(events)

    assert [e.id for e in replayed] == expected  # all of them, in order, no snapshot
    assert [e.json["n"] for e in replayed] == list(range(100, 100 + missed))
    assert (live.event, live.id) == ("aggregate", live_id)


async def test_a_last_event_id_the_stream_never_sent_gets_a_snapshot(
    own_gateway: OwnGateway, campus: Campus
) -> None:
    _known(own_gateway.url, campus)
    ids = _append(campus.settings, campus.tenant_id, "b1", 3)

    def never_sent(newest: str) -> list[str]:
        ms, seq = (int(part) for part in newest.split("-"))
        return [
            f"{ms}-{seq + 1}",  # after the newest entry
            f"{ms + 86_400_000}-0",  # a day in the future
            f"{2**64}-0",  # beyond 64 bits: Redis itself refuses it
            "99999999999999999999-0",
            MAX_ID,  # the largest id there is: no "(" range can start after it
            "1-0",  # before the oldest entry: what came between is gone
            "abc",
            "",
        ]

    offset = own_gateway.log_offset()
    url = _stream_url(own_gateway.url, "b1")
    async with httpx.AsyncClient(timeout=30) as client:
        # Positive control: an id the stream sent resumes right after it.
        headers = {**campus.headers(), "Last-Event-ID": ids[0]}
        async with _sse(client, url, headers) as events:
            assert [(await _next(events)).id for _ in ids[1:]] == ids[1:]

        newest = ids[-1]
        for case in range(len(never_sent(newest))):
            for how in ("header", "query"):
                raw = never_sent(newest)[case]  # relative to the stream as it is now
                headers = campus.headers()
                target = url
                if how == "header":
                    headers["Last-Event-ID"] = raw
                else:
                    target = f"{url}?lastEventId={raw}"
                async with _sse(client, target, headers) as events:
                    first = await _next(events)
                    assert first.event == "snapshot", (raw, how, first)
                    # And the stream works: the next event arrives live.
                    (newest,) = _append(campus.settings, campus.tenant_id, "b1", 1)
                    assert (await _next(events)).id == newest, (raw, how)
    _no_traceback(own_gateway.log_since(offset))


# --- a burst of connects ------------------------------------------------------------------------


async def test_a_burst_of_300_connects_is_all_served(tenant: Tenant) -> None:
    n = 300
    url = _stream_url(tenant.gateway, tenant.building_id)
    headers = {"Authorization": f"Bearer {tenant.token(role='fm', user='fm-1')}"}
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=0)
    opened = asyncio.Event()
    ready: list[str] = []

    async def connect(client: httpx.AsyncClient) -> tuple[int, str]:
        async with client.stream("GET", url, headers=headers) as response:
            if response.status_code != 200:
                return response.status_code, (await response.aread()).decode()[:200]
            first = await asyncio.wait_for(anext(sse_events(response)), timeout=60)
            ready.append(first.event)
            if len(ready) == n:
                opened.set()
            # Hold the stream until all are open: 300 at once, not one after another.
            await asyncio.wait_for(opened.wait(), timeout=90)
            return response.status_code, first.event

    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        started = time.monotonic()
        results = await asyncio.gather(*(connect(client) for _ in range(n)))
        took = time.monotonic() - started
    print(f"\n{n} SSE connects served in {took:.1f} s")
    assert results == [(200, "snapshot")] * n


# --- readers released ---------------------------------------------------------------------------


async def test_readers_end_when_their_clients_disconnect(
    own_gateway: OwnGateway, campus: Campus
) -> None:
    _known(own_gateway.url, campus)
    headers = campus.headers()
    # Warm up: the shared pool's connection is made once, and stays.
    url = _stream_url(own_gateway.url, "b1")
    async with httpx.AsyncClient(timeout=30) as client, _sse(client, url, headers) as events:
        await _next(events)
    base = _steady(own_gateway)

    async with httpx.AsyncClient(timeout=30) as client, AsyncExitStack() as streams:
        # Three clients on each building, opened one by one (so the shared pool
        # never needs a second connection): one reader, so one connection, each.
        for building in BUILDINGS * 3:
            events = await streams.enter_async_context(
                _sse(client, _stream_url(own_gateway.url, building), headers)
            )
            assert (await _next(events)).event == "snapshot"
        await _await_count(own_gateway, base + len(BUILDINGS), 10, "one reader per building")
        await asyncio.sleep(1.0)
        assert own_gateway.redis_connections() == base + len(BUILDINGS)
    # All clients gone: every reader ends, within a block period (5 s) and then some.
    took = await _await_count(own_gateway, base, 8, "readers after the clients left")
    print(f"\n{len(BUILDINGS)} readers released {took:.2f} s after their clients left")

    # A new client starts a new reader, and its leaving ends it.
    url = _stream_url(own_gateway.url, "b2")
    async with httpx.AsyncClient(timeout=30) as client, _sse(client, url, headers) as events:
        await _next(events)
        await _await_count(own_gateway, base + 1, 10, "a fresh reader")
    await _await_count(own_gateway, base, 8, "the fresh reader after its client left")


# --- clients that leave -----------------------------------------------------------------------


def _request(method: str, path: str, host: str, headers: dict[str, str], length: int = 0) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if method == "POST":
        lines += ["Content-Type: application/json", f"Content-Length: {length}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _leave(sock: socket.socket, reset: bool) -> None:
    if reset:
        # RST instead of FIN: the abrupt way a phone leaving coverage looks.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _read_until(sock: socket.socket, marker: bytes, limit: int = 1 << 20) -> bytes:
    seen = b""
    sock.settimeout(30)
    while marker not in seen and len(seen) < limit:
        chunk = sock.recv(65536)
        if not chunk:
            break
        seen += chunk
    assert marker in seen, seen[:500]
    return seen


async def test_clients_leaving_mid_body_or_mid_stream_log_no_traceback(
    own_gateway: OwnGateway, campus: Campus
) -> None:
    _known(own_gateway.url, campus)
    ids = _append(campus.settings, campus.tenant_id, "b3", 3 * RESUME_PAGE)
    offset = own_gateway.log_offset()
    host = f"{own_gateway.host}:{own_gateway.port}"
    auth = campus.headers()
    stream_path = "/api/v1/buildings/b1/stream"
    body = json.dumps({"items": [{"voteUuid": str(uuid.uuid4())}] * 50}).encode()

    def connect() -> socket.socket:
        return socket.create_connection((own_gateway.host, own_gateway.port), timeout=30)

    def scenarios(reset: bool) -> None:
        # Mid-body: a vote batch and a single vote whose bodies stop halfway.
        for path in ("/api/v1/votes/batch", "/api/v1/votes"):
            sock = connect()
            sock.sendall(_request("POST", path, host, auth, len(body)) + body[: len(body) // 2])
            time.sleep(0.2)
            _leave(sock, reset)
        # Mid-stream: before any response byte, after the first bytes, after the
        # snapshot, and in the middle of a 1,500-event resume.
        sock = connect()
        sock.sendall(_request("GET", stream_path, host, auth))
        _leave(sock, reset)
        sock = connect()
        sock.sendall(_request("GET", stream_path, host, auth))
        _read_until(sock, b"retry: 2000")
        _leave(sock, reset)
        sock = connect()
        sock.sendall(_request("GET", stream_path, host, auth))
        _read_until(sock, b"event: snapshot")
        _leave(sock, reset)
        sock = connect()
        resume = {**auth, "Last-Event-ID": ids[0]}
        sock.sendall(_request("GET", "/api/v1/buildings/b3/stream", host, resume))
        _read_until(sock, ids[10].encode())
        _leave(sock, reset)

    for reset in (False, True):
        await asyncio.to_thread(scenarios, reset)

    # Mid-stream while events flow: clients leave as events are being delivered.
    async def watch_and_leave(
        client: httpx.AsyncClient, building: str, after: int, ready: asyncio.Event
    ) -> None:
        async with _sse(client, _stream_url(own_gateway.url, building), auth) as events:
            assert (await _next(events)).event == "snapshot"
            ready.set()
            for _ in range(after):
                await _next(events)

    async with httpx.AsyncClient(timeout=30) as client:
        watchers = []
        for building in ("b4", "b5"):
            for after in (1, 5, 20):
                # Opened one at a time, so the shared Redis pool needs no second
                # connection and the count below sees readers only.
                ready = asyncio.Event()
                watchers.append(
                    asyncio.create_task(watch_and_leave(client, building, after, ready))
                )
                await asyncio.wait_for(ready.wait(), timeout=30)
        for _ in range(20):
            for building in ("b4", "b5"):
                await asyncio.to_thread(_append, campus.settings, campus.tenant_id, building, 5)
            await asyncio.sleep(0.05)
        await asyncio.wait_for(asyncio.gather(*watchers), timeout=60)

    # Every reader those clients started has ended: soon nothing polls Redis. (The
    # connection count cannot show it here: clients leaving mid-command close pooled
    # connections, and overlapping requests open more.)
    quiet_ms = 5000 + 1500  # a reader's XREAD block, and then some
    await asyncio.to_thread(
        _wait, lambda: own_gateway.redis_pollers(quiet_ms) == 0, 20, "no reader polling Redis"
    )
    # Nothing was logged as a crash.
    _no_traceback(own_gateway.log_since(offset))


async def test_a_client_that_stops_reading_is_cut_off_and_frees_its_reader(
    own_gateway: OwnGateway, campus: Campus
) -> None:
    _known(own_gateway.url, campus)
    base = await _settled(own_gateway, campus)
    offset = own_gateway.log_offset()
    host = f"{own_gateway.host}:{own_gateway.port}"
    sock = socket.socket()
    # A tiny receive window, and no reads: the gateway's sends soon block.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((own_gateway.host, own_gateway.port))
    try:
        sock.sendall(_request("GET", "/api/v1/buildings/b6/stream", host, campus.headers()))
        await _await_count(own_gateway, base + 1, 10, "the stalled client's reader")
        stalled_at = time.monotonic()
        # 20 MB of events: more than the socket buffers, then more than its queue.
        for _ in range(20):
            await asyncio.to_thread(_append, campus.settings, campus.tenant_id, "b6", 50, 20_000)

        # Dropped from the feed once its queue overflowed, so its reader ends while
        # the connection is still open...
        await _await_count(own_gateway, base, 15, "the reader of a client that stopped reading")
        # ...and the connection itself is given up after WRITE_TIMEOUT_S.
        cut = "SSE client read nothing"
        await asyncio.to_thread(
            _wait, lambda: cut in own_gateway.log_since(offset), WRITE_TIMEOUT_S + 20, cut
        )
        assert time.monotonic() - stalled_at >= WRITE_TIMEOUT_S - 1
    finally:
        _leave(sock, reset=True)
    _no_traceback(own_gateway.log_since(offset))
