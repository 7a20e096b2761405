"""Streaming replication between the stack's two PostgreSQL slots: build a standby,
promote it, read the lag.

- **Least privilege.** A standby logs in as `pg_replication_user`: a role with
  REPLICATION and LOGIN only (no superuser, no database privileges), by scram,
  from loopback only (`postgres.hba_rules`). Its password is kept in a 0600
  passfile that `primary_conninfo` names, never on a command line.
- **Asynchronous.** The primary does not wait for the standby: a commit is
  acknowledged once it is durable locally. A primary lost abruptly may so take
  its last transactions with it (runbooks/postgres-failover.md says what the
  stack does about it).
- **One primary.** `promote` refuses while another cluster answers as a
  primary, and fences a cluster it replaces so nothing restarts it.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from devstack import postgres
from devstack.postgres import PG_BIN, Cluster, ClusterError
from sbp.settings import Settings


def _passfile(settings: Settings) -> Path:
    return postgres.pg_dir(settings) / "replication.pgpass"


def _write_passfile(settings: Settings) -> Path:
    path = _passfile(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    user, password = settings.pg_replication_user, settings.pg_replication_password
    escaped = password.replace("\\", "\\\\").replace(":", "\\:")
    path.write_text(f"*:*:*:{user}:{escaped}\n")
    path.chmod(0o600)
    postgres.give_to_service_user(path)
    return path


def ensure_replication_access(settings: Settings, source: Cluster) -> None:
    """The replication role and its pg_hba rule on `source` (idempotent)."""
    role = sql.Identifier(settings.pg_replication_user)
    with psycopg.connect(postgres.superuser_dsn(settings, port=source.port), autocommit=True) as c:
        found = c.execute(
            "SELECT 1 FROM pg_roles WHERE rolname = %s", (settings.pg_replication_user,)
        ).fetchone()
        verb = sql.SQL("ALTER") if found else sql.SQL("CREATE")
        c.execute(
            sql.SQL(
                "{} ROLE {} WITH LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE"
                " NOBYPASSRLS PASSWORD {}"
            ).format(verb, role, sql.Literal(settings.pg_replication_password))
        )
        hba = source.data / "pg_hba.conf"
        if hba.read_text() != postgres.hba_rules(settings):
            hba.write_text(postgres.hba_rules(settings))
            c.execute("SELECT pg_reload_conf()")


def build_standby(settings: Settings, name: str, timeout: float = 120.0) -> None:
    """(Re)make cluster `name` a streaming standby of the current primary: its old data
    (a fenced former primary, a stale standby) is discarded and copied afresh."""
    source = postgres.primary(settings)
    target = postgres.cluster(settings, name)
    if target == source:
        raise ClusterError(f"cluster {name} is the primary the services use; it cannot follow")
    if not postgres.answers(settings, source) or postgres.in_recovery(settings, source):
        raise ClusterError(f"the primary ({source.name}, port {source.port}) is not up")
    ensure_replication_access(settings, source)
    postgres.stop(target)
    shutil.rmtree(target.data, ignore_errors=True)
    target.root.mkdir(parents=True, exist_ok=True)
    postgres.give_to_service_user(target.root)
    conninfo = make_conninfo(
        host=settings.pg_host or settings.host,
        port=source.port,
        user=settings.pg_replication_user,
        passfile=str(_write_passfile(settings)),
        # Names the standby in pg_stat_replication (and for synchronous_standby_names).
        application_name=target.name,
    )
    user = postgres.run_as()
    result = subprocess.run(
        # -R writes standby.signal and primary_conninfo; -X stream copies the WAL made
        # during the copy, so the standby starts consistent; -c fast does not wait
        # for the next scheduled checkpoint.
        [
            str(PG_BIN / "pg_basebackup"),
            *("-D", str(target.data), "-d", conninfo),
            *("-X", "stream", "-R", "-c", "fast", "-w"),
        ],
        user=user,
        group=user,
        extra_groups=[] if user is not None else None,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        shutil.rmtree(target.data, ignore_errors=True)
        raise ClusterError(f"pg_basebackup failed: {result.stderr.strip()}")
    target.fence_file.unlink(missing_ok=True)
    postgres.start(settings, target)
    _wait_streaming(settings, source, target, timeout)


def _wait_streaming(settings: Settings, source: Cluster, target: Cluster, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        rows = replication(settings, source)
        if any(r["standby"] == target.name and r["state"] == "streaming" for r in rows):
            return
        if time.monotonic() > deadline:
            raise ClusterError(
                f"{target.name} does not stream from {source.name} after {timeout:.0f}s; "
                f"log {target.process.log_file}:\n{target.process.log_tail()}"
            )
        time.sleep(0.2)


def replication(settings: Settings, source: Cluster) -> list[dict[str, Any]]:
    """What a primary sees of its standbys: state and how far behind each one replays."""
    with psycopg.connect(postgres.superuser_dsn(settings, port=source.port)) as conn:
        rows = conn.execute(
            "SELECT application_name, state, sync_state,"
            " pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint,"
            " extract(epoch FROM replay_lag)::float8"
            " FROM pg_stat_replication ORDER BY application_name"
        ).fetchall()
    return [
        {
            "standby": r[0],
            "state": r[1],
            "sync": r[2],
            "replayLagBytes": r[3],
            "replayLagSeconds": r[4],
        }
        for r in rows
    ]


@dataclass(frozen=True)
class StandbyPosition:
    receiving: bool
    received_lsn: str | None
    replayed_lsn: str | None
    # The commit time of the last transaction replayed: everything the old primary
    # committed after it may be missing here.
    last_replayed_commit: datetime | None


def standby_position(settings: Settings, target: Cluster) -> StandbyPosition:
    with psycopg.connect(postgres.superuser_dsn(settings, port=target.port)) as conn:
        row = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming'),"
            " pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text,"
            " pg_last_xact_replay_timestamp()"
        ).fetchone()
    assert row is not None
    return StandbyPosition(bool(row[0]), row[1], row[2], row[3])


def promote(settings: Settings, name: str, timeout: int = 60) -> StandbyPosition:
    """Promote standby `name`, fence every other cluster that is down, and record
    `name` as the stack's primary.

    Refused while another cluster answers as a primary: two primaries would each
    take writes the other never sees. Returns the standby's position just before
    promotion, whose `last_replayed_commit` bounds what the old primary may have
    taken with it."""
    target = postgres.cluster(settings, name)
    if not postgres.answers(settings, target):
        raise ClusterError(f"cluster {name} is not running")
    if not postgres.in_recovery(settings, target):
        raise ClusterError(f"cluster {name} is already a primary")
    others = [postgres.cluster(settings, n) for n in postgres.CLUSTERS if n != name]
    for other in others:
        if postgres.answers(settings, other) and not postgres.in_recovery(settings, other):
            raise ClusterError(
                f"cluster {other.name} (port {other.port}) still answers as a primary; "
                f"stop it (sbp dev pg stop {other.name}) before promoting {name}"
            )
    position = standby_position(settings, target)
    stamp = datetime.now().astimezone().isoformat(timespec="seconds")
    for other in others:
        if other.exists() and not other.process.is_running():
            other.fence_file.write_text(f"replaced by {name} at {stamp}\n")
    dsn = postgres.superuser_dsn(settings, port=target.port)
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT pg_promote(true, %s)", (timeout,)).fetchone()
        if not (row and row[0]):
            raise ClusterError(f"{name} did not finish promotion in {timeout}s")
        # A primary follows no one: drop the connection to its old primary that
        # pg_basebackup -R wrote, so no copy made from it later inherits it.
        conn.execute("ALTER SYSTEM RESET primary_conninfo")
        conn.execute("SELECT pg_reload_conf()")
    # From now on every service start (and `sbp dev pg env`) uses the new primary; the
    # running services move with `repoint`.
    postgres.set_primary(settings, name)
    return position


def remove(settings: Settings, name: str) -> bool:
    """Stop cluster `name` and delete its data (not the primary the services use)."""
    target = postgres.cluster(settings, name)
    if target == postgres.primary(settings):
        raise ClusterError(f"cluster {name} is the primary the services use")
    existed = target.exists()
    postgres.stop(target)
    shutil.rmtree(target.data, ignore_errors=True)
    target.fence_file.unlink(missing_ok=True)
    return existed


@dataclass
class ClusterStatus:
    name: str
    port: int
    pid: int | None
    role: str  # primary, standby, fenced, down, absent
    serves: bool  # the stack's services point at it
    detail: dict[str, Any] = field(default_factory=dict)


def status(settings: Settings) -> list[ClusterStatus]:
    current = postgres.primary(settings)
    result = []
    for name in postgres.CLUSTERS:
        c = postgres.cluster(settings, name)
        pid = c.process.pid()
        row = ClusterStatus(name, c.port, pid, "absent", c == current)
        if pid is not None and postgres.answers(settings, c):
            if postgres.in_recovery(settings, c):
                row.role = "standby"
                position = standby_position(settings, c)
                row.detail = {
                    "streaming": position.receiving,
                    "replayedLsn": position.replayed_lsn,
                    "lastReplayedCommit": position.last_replayed_commit.isoformat()
                    if position.last_replayed_commit
                    else None,
                }
            else:
                row.role = "primary"
                row.detail = {"standbys": replication(settings, c)}
        elif c.is_fenced():
            row.role = "fenced"
        elif c.exists():
            row.role = "down"
        result.append(row)
    return result
