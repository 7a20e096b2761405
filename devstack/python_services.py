"""The project's own Python processes in the dev stack: registry, worker, gateway.

Each is started detached with the current interpreter and is ready when its
HTTP readiness endpoint answers 200.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from devstack import postgres
from devstack.processes import ManagedProcess, wait_until_ready
from sbp.settings import REPO_ROOT, Settings


@dataclass(frozen=True)
class PythonService:
    name: str
    marker: str
    argv: Callable[[Settings], list[str]]
    ready_url: Callable[[Settings], str]
    timeout_s: float = 90.0

    def process(self, settings: Settings) -> ManagedProcess:
        return ManagedProcess(self.name, settings.state_dir / "run", marker=self.marker)

    def is_ready(self, settings: Settings) -> bool:
        try:
            return httpx.get(self.ready_url(settings), timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def start(self, settings: Settings, env: dict[str, str] | None = None) -> None:
        """Start unless running; `env` adds variables (e.g. a drill's short horizons)."""
        proc = self.process(settings)
        if not proc.is_running():
            # The stack's current PostgreSQL primary (a failover may have moved it).
            environment = {**os.environ, **postgres.service_env(settings), **(env or {})}
            proc.start([sys.executable, *self.argv(settings)], cwd=REPO_ROOT, env=environment)

    def wait_ready(self, settings: Settings) -> None:
        wait_until_ready(self.process(settings), lambda: self.is_ready(settings), self.timeout_s)

    def up(self, settings: Settings, env: dict[str, str] | None = None) -> None:
        self.start(settings, env)
        self.wait_ready(settings)

    def down(self, settings: Settings) -> bool:
        return self.process(settings).stop()


def _uvicorn(factory: str, port: Callable[[Settings], int]) -> Callable[[Settings], list[str]]:
    return lambda s: [
        "-m",
        "uvicorn",
        "--factory",
        factory,
        "--host",
        s.host,
        "--port",
        str(port(s)),
        "--no-access-log",
        # The C event loop and HTTP parser (the gateway's per-request overhead), with
        # read deadlines against slow clients.
        "--loop",
        "uvloop",
        "--http",
        "sbp.slow_client_guard:GuardedHttpToolsProtocol",
    ]


REGISTRY = PythonService(
    name="registry",
    marker="registry.app:create_app",
    argv=_uvicorn("registry.app:create_app", lambda s: s.registry_port),
    ready_url=lambda s: f"{s.registry_url}/healthz",
)


ADMIN = PythonService(
    name="admin",
    marker="admin.app:create_app",
    argv=_uvicorn("admin.app:create_app", lambda s: s.admin_port),
    ready_url=lambda s: f"{s.admin_url}/readyz",
)


def worker(instance: int) -> PythonService:
    """Worker `instance` of the group; its port and data dir derive from the number."""
    return PythonService(
        name=f"worker-{instance}",
        # The trailing space keeps instance 1 from matching instance 12's command line.
        marker=f"streams.worker --instance={instance} ",
        argv=lambda s: ["-m", "streams.worker", f"--instance={instance}"],
        ready_url=lambda s: f"http://{s.host}:{s.worker_port(instance)}/ready",
        timeout_s=180.0,
    )


WORKER = worker(1)

SINK = PythonService(
    name="pg-sink",
    marker="sinks.timescale.sink_worker",
    argv=lambda s: ["-m", "sinks.timescale.sink_worker"],
    ready_url=lambda s: f"http://{s.host}:{s.sink_web_port}/ready",
    timeout_s=120.0,
)

GATEWAY = PythonService(
    name="gateway",
    marker="gateway.app:create_app",
    argv=_uvicorn("gateway.app:create_app", lambda s: s.gateway_port),
    ready_url=lambda s: f"http://{s.host}:{s.gateway_port}/readyz",
)
