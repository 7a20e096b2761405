"""`sbp dev pg`: the local stack's PostgreSQL primary and streaming standby, for the
failover runbook (runbooks/postgres-failover.md).

Clusters are named by slot: `main` (port SBP_PG_PORT) and `replica` (port
SBP_PG_REPLICA_PORT). Either may be the primary; `status` says which one the
services use. Errors that would make an unsafe change exit 2 and change nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TypeVar

import typer
from rich.console import Console
from rich.table import Table

from sbp.settings import get_settings

app = typer.Typer(no_args_is_help=True, help="PostgreSQL: standby, promote, repoint (failover).")
console = Console()

T = TypeVar("T")

CLUSTER = typer.Argument(..., help="main or replica")


def _refusing(action: Callable[[], T]) -> T:
    """Run `action`; a refused or failed cluster operation exits 2 with its reason."""
    from devstack.postgres import ClusterError

    try:
        return action()
    except ClusterError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


@app.command("status")
def pg_status(as_json: bool = typer.Option(False, "--json", help="machine-readable")) -> None:
    """Each cluster: port, role, whether the services use it, and replication lag."""
    from dataclasses import asdict

    from devstack import pg_replication

    rows = pg_replication.status(get_settings())
    if as_json:
        print(json.dumps({"clusters": [asdict(r) for r in rows]}, indent=2, default=str))
        return
    table = Table("cluster", "port", "pid", "role", "services", "replication")
    for row in rows:
        table.add_row(
            row.name,
            str(row.port),
            str(row.pid or "-"),
            row.role,
            "→ here" if row.serves else "",
            json.dumps(row.detail, default=str) if row.detail else "",
        )
    console.print(table)


@app.command("standby")
def pg_standby(name: str = CLUSTER) -> None:
    """(Re)build NAME as a streaming standby of the primary (pg_basebackup -R); its old
    data is discarded. Returns once it streams."""
    from devstack import pg_replication

    _refusing(lambda: pg_replication.build_standby(get_settings(), name))
    console.print(f"{name}: streaming from the primary")


@app.command("promote")
def pg_promote(name: str = CLUSTER) -> None:
    """Promote standby NAME; refused while another cluster answers as a primary. Fences
    the cluster it replaces, so nothing starts it again as a second primary."""
    from devstack import pg_replication

    position = _refusing(lambda: pg_replication.promote(get_settings(), name))
    last = position.last_replayed_commit
    console.print(f"{name}: promoted; last transaction replayed before promotion: {last}")
    console.print(
        "if the old primary was lost rather than stopped cleanly, what it committed after"
        " that time may be missing here (runbooks/postgres-failover.md, step 4)"
    )


@app.command("repoint")
def pg_repoint(name: str = CLUSTER) -> None:
    """Make primary NAME the stack's PostgreSQL: restart registry, admin, pg-sink and
    gateway against it, one at a time."""
    from devstack.pg_repoint import repoint

    restarted = _refusing(lambda: repoint(get_settings(), name, log=console.print))
    console.print(f"services on {name}: {', '.join(restarted)}")


@app.command("stop")
def pg_stop(name: str = CLUSTER) -> None:
    """Clean (fast) shutdown of NAME; a primary first ships its last WAL to its standby."""
    from devstack import postgres

    stopped = _refusing(lambda: postgres.stop(postgres.cluster(get_settings(), name)))
    console.print(f"{name}: {'stopped' if stopped else 'was not running'}")


@app.command("kill")
def pg_kill(name: str = CLUSTER) -> None:
    """Drills only: SIGKILL every process of NAME at once, as if its host were lost."""
    from devstack import postgres

    killed = _refusing(lambda: postgres.kill(postgres.cluster(get_settings(), name)))
    console.print(f"{name}: {'killed' if killed else 'was not running'}")


@app.command("remove")
def pg_remove(name: str = CLUSTER) -> None:
    """Stop NAME and delete its data; refused for the primary the services use."""
    from devstack import pg_replication

    existed = _refusing(lambda: pg_replication.remove(get_settings(), name))
    console.print(f"{name}: {'removed' if existed else 'had no data'}")


@app.command("env")
def pg_env() -> None:
    """Print SBP_PG_PORT=<the primary's port>, for CLI commands run after a failover:
    `env $(sbp dev pg env) sbp …`."""
    from devstack import postgres

    for key, value in postgres.service_env(get_settings()).items():
        print(f"{key}={value}")
