"""Debian's redis-server 7 on its own port, with persistence off.

The dev stack's Redis is a cache and stream fan-out only: snapshots are rebuilt
from Kafka and PostgreSQL, so nothing is written to disk.
"""

from __future__ import annotations

import shutil

import redis

from devstack.processes import ManagedProcess, wait_until_ready
from sbp.settings import Settings


def process(settings: Settings) -> ManagedProcess:
    return ManagedProcess("redis", settings.state_dir / "run", marker=str(settings.redis_port))


def is_ready(settings: Settings) -> bool:
    try:
        client = redis.Redis.from_url(settings.redis_url, socket_timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis.RedisError:
        return False


def up(settings: Settings, timeout: float = 30.0) -> None:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed; run scripts/setup (redis-server)")
    proc = process(settings)
    if not proc.is_running():
        workdir = settings.state_dir / "redis"
        workdir.mkdir(parents=True, exist_ok=True)
        proc.start(
            [
                binary,
                "--bind",
                settings.host,
                "--port",
                str(settings.redis_port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(workdir),
                "--protected-mode",
                "yes",
            ]
        )
    wait_until_ready(proc, lambda: is_ready(settings), timeout)


def down(settings: Settings) -> bool:
    return process(settings).stop()
