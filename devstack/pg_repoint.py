"""Point the running stack's services at another PostgreSQL cluster.

Services read `SBP_PG_PORT` once, at start (the one settings object), so a repoint
records the new primary (`postgres.set_primary`, as the promotion did; every later
start reads it through `postgres.service_env`) and restarts each service that
connects to PostgreSQL, one at a time, in `sbp dev up`'s order: the registry (the others look
their schemas up in it), the tenant service, the sink, then the gateway. Each is
ready before the next stops, so at most one is away at a time; apps retry a
refused connection, and the sink re-reads whatever it had not committed.

The vote-stage workers never connect to PostgreSQL and keep running.
"""

from __future__ import annotations

from collections.abc import Callable

from devstack import postgres
from devstack.postgres import ClusterError
from devstack.python_services import ADMIN, GATEWAY, REGISTRY, SINK, PythonService
from sbp.settings import Settings

PG_CLIENTS: tuple[PythonService, ...] = (REGISTRY, ADMIN, SINK, GATEWAY)


def repoint(settings: Settings, name: str, log: Callable[[str], None] = print) -> list[str]:
    """Make cluster `name` the stack's PostgreSQL and restart its clients; returns them."""
    target = postgres.cluster(settings, name)
    if not postgres.answers(settings, target):
        raise ClusterError(f"cluster {name} (port {target.port}) is not running")
    if postgres.in_recovery(settings, target):
        raise ClusterError(f"cluster {name} is a standby; promote it first")
    postgres.set_primary(settings, name)
    restarted = []
    for service in PG_CLIENTS:
        service.down(settings)
        service.up(settings)
        restarted.append(service.name)
        log(f"{service.name}: restarted against {name} (port {target.port}), ready")
    return restarted
