"""The stack's private PostgreSQL 15 clusters (Debian's binaries) under the state dir.

There are two slots: `main` (`postgres/`, on `pg_port`), made by `sbp dev up`, and
`replica` (`postgres-replica/`, on `pg_replica_port`), a streaming standby made on
demand (devstack/pg_replication.py). Which one is the primary is recorded in
`postgres-primary` in the state dir (main when absent), written by a promotion;
every service start reads it (`service_env`), and a repoint restarts the running
ones. So "the stack's PostgreSQL" is whichever slot that file names, and `pg_port`
is only main's port.

A cluster that lost a failover is fenced (a `FENCED` file beside its data): nothing
starts it again, since it could come back as a second primary with writes the new
one never saw. Only rebuilding it as a standby (or removing it) clears the fence.

PostgreSQL refuses to run as root, and CI runs as root, so when we are root every
cluster is initialised and run as the `postgres` user. They listen on loopback TCP
only (no socket file) and authenticate everyone with scram; the superuser password
is random and kept in a 0600 file in main's slot, shared by every copy of the data.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg

from devstack.processes import ManagedProcess, grant_traverse, wait_until_ready
from sbp.settings import Settings

PG_BIN = Path("/usr/lib/postgresql/15/bin")

MAIN = "main"
REPLICA = "replica"
CLUSTERS = (MAIN, REPLICA)


class ClusterError(RuntimeError):
    """A cluster operation that would be unsafe or cannot be done; the message says why."""


@dataclass(frozen=True)
class Cluster:
    name: str
    root: Path
    port: int
    run_dir: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def fence_file(self) -> Path:
        return self.root / "FENCED"

    @property
    def process(self) -> ManagedProcess:
        # main keeps the pid and log file names the stack has always used.
        label = "postgres" if self.name == MAIN else f"postgres-{self.name}"
        return ManagedProcess(label, self.run_dir, marker=str(self.data))

    def exists(self) -> bool:
        return (self.data / "PG_VERSION").exists()

    def is_standby(self) -> bool:
        return (self.data / "standby.signal").exists()

    def is_fenced(self) -> bool:
        return self.fence_file.exists()


def pg_dir(settings: Settings) -> Path:
    return settings.state_dir / "postgres"


def cluster(settings: Settings, name: str) -> Cluster:
    if name == MAIN:
        return Cluster(MAIN, pg_dir(settings), settings.pg_port, settings.state_dir / "run")
    if name == REPLICA:
        root = settings.state_dir / "postgres-replica"
        return Cluster(REPLICA, root, settings.pg_replica_port, settings.state_dir / "run")
    raise ClusterError(f"unknown cluster {name!r}; one of {', '.join(CLUSTERS)}")


def _primary_file(settings: Settings) -> Path:
    return settings.state_dir / "postgres-primary"


def primary(settings: Settings) -> Cluster:
    """The stack's primary: the cluster every service start points at."""
    try:
        name = _primary_file(settings).read_text().strip()
    except FileNotFoundError:
        name = MAIN
    return cluster(settings, name)


def set_primary(settings: Settings, name: str) -> None:
    cluster(settings, name)  # refuses an unknown name before anything is written
    path = _primary_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(name + "\n")
    temporary.replace(path)


def primary_settings(settings: Settings) -> Settings:
    """`settings` with `pg_port` at the current primary: what the services run with."""
    return settings.model_copy(update={"pg_port": primary(settings).port})


def service_env(settings: Settings) -> dict[str, str]:
    """The variables that point a stack process at the current primary."""
    return {"SBP_PG_PORT": str(primary(settings).port)}


def _password_file(settings: Settings) -> Path:
    return pg_dir(settings) / "superuser.password"


def process(settings: Settings) -> ManagedProcess:
    return primary(settings).process


def run_as() -> str | None:
    return "postgres" if os.geteuid() == 0 else None


def give_to_service_user(path: Path) -> None:
    """Make `path` the cluster user's when we are root (PostgreSQL's files must be)."""
    user = run_as()
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def superuser_dsn(settings: Settings, dbname: str = "postgres", port: int | None = None) -> str:
    """The superuser's DSN for the primary (or the cluster on `port`): the configured
    password, else the local stack's generated one."""
    password = settings.pg_superuser_password or _password_file(settings).read_text().strip()
    on = settings.model_copy(update={"pg_port": port or primary(settings).port})
    return on.pg_superuser_dsn(password, dbname)


def hba_rules(settings: Settings) -> str:
    """Loopback TCP only, scram for everyone. Replication connections (which the `all`
    database keyword does not cover) only for the replication role, and that role
    for nothing else: the first matching line decides."""
    user = settings.pg_replication_user
    return (
        "# Written by sbp dev: loopback TCP only, passwords for everyone.\n"
        f"host replication {user} 127.0.0.1/32 scram-sha-256\n"
        f"host replication {user} ::1/128 scram-sha-256\n"
        f"host all {user} all reject\n"
        "host all all 127.0.0.1/32 scram-sha-256\n"
        "host all all ::1/128 scram-sha-256\n"
    )


def init_cluster(settings: Settings) -> None:
    main = cluster(settings, MAIN)
    if main.exists() or primary(settings).name != MAIN:
        return
    if not (PG_BIN / "initdb").exists():
        raise RuntimeError(f"{PG_BIN}/initdb not found; run scripts/setup (postgresql-15)")
    main.root.mkdir(parents=True, exist_ok=True)
    pwfile = _password_file(settings)
    pwfile.write_text(secrets.token_urlsafe(24) + "\n")
    user = run_as()
    if user is not None:
        grant_traverse(settings.state_dir)
        give_to_service_user(main.root)
        give_to_service_user(pwfile)
    pwfile.chmod(0o600)
    try:
        _initdb(settings, main.data, pwfile, user)
    except subprocess.CalledProcessError:
        # A half-made data dir would make every later attempt fail too.
        shutil.rmtree(main.data, ignore_errors=True)
        raise
    (main.data / "pg_hba.conf").write_text(hba_rules(settings))


def _initdb(settings: Settings, data: Path, pwfile: Path, user: str | None) -> None:
    subprocess.run(
        [
            str(PG_BIN / "initdb"),
            "-D",
            str(data),
            "-U",
            settings.pg_superuser,
            "--auth=scram-sha-256",
            f"--pwfile={pwfile}",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
        ],
        check=True,
        # Drop root's groups as well: with group root kept, a root-owned folder's
        # group bits (often none) would apply instead of its "other" bits.
        user=user,
        group=user,
        extra_groups=[] if user is not None else None,
        stdout=subprocess.DEVNULL,
    )


def answers(settings: Settings, target: Cluster) -> bool:
    """True if the cluster accepts a superuser login (a hot standby does too)."""
    try:
        with psycopg.connect(superuser_dsn(settings, port=target.port), connect_timeout=2) as c:
            c.execute("SELECT 1")
    except (psycopg.Error, FileNotFoundError):
        return False
    return True


def in_recovery(settings: Settings, target: Cluster) -> bool:
    with psycopg.connect(superuser_dsn(settings, port=target.port), connect_timeout=2) as conn:
        row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    return bool(row and row[0])


def is_ready(settings: Settings) -> bool:
    return answers(settings, primary(settings))


def start(settings: Settings, target: Cluster, timeout: float = 60.0) -> None:
    """Start one cluster (a standby too, by its standby.signal) and wait until it answers."""
    if target.is_fenced():
        raise ClusterError(
            f"cluster {target.name} is fenced ({target.fence_file.read_text().strip()}); "
            f"rebuild it as a standby (sbp dev pg standby {target.name}) or remove it"
        )
    proc = target.process
    if not proc.is_running():
        # postgres does not accept a pid file path; its postmaster.pid stays in the
        # data dir and ours (the postmaster's pid) in the run dir.
        target.run_dir.mkdir(parents=True, exist_ok=True)
        proc.log_file.touch()
        give_to_service_user(proc.log_file)
        proc.start(
            [
                str(PG_BIN / "postgres"),
                "-D",
                str(target.data),
                "-c",
                f"port={target.port}",
                "-c",
                f"listen_addresses={settings.host}",
                "-c",
                "unix_socket_directories=",
                "-c",
                "max_connections=200",
                "-c",
                "shared_buffers=256MB",
                "-c",
                "fsync=on",
                "-c",
                "synchronous_commit=on",
            ],
            user=run_as(),
        )
    wait_until_ready(proc, lambda: answers(settings, target), timeout)


def up(settings: Settings, timeout: float = 60.0) -> None:
    """Start the primary, then every standby that has data and no fence."""
    init_cluster(settings)
    current = primary(settings)
    start(settings, current, timeout)
    for name in CLUSTERS:
        other = cluster(settings, name)
        if other != current and other.exists() and other.is_standby() and not other.is_fenced():
            start(settings, other, timeout)


def stop(target: Cluster) -> bool:
    # SIGINT is PostgreSQL's "fast" shutdown: it rolls back open transactions instead
    # of waiting for clients to leave, and a primary's WAL senders still ship every
    # last record (the shutdown checkpoint included) to connected standbys first.
    return target.process.stop(sig=signal.SIGINT, timeout=60.0)


def kill(target: Cluster) -> bool:
    """SIGKILL the postmaster and every backend at once, as when its host is lost: no
    shutdown checkpoint, and WAL not yet streamed to a standby is never sent."""
    pid = target.process.pid()
    if pid is None:
        return False
    # Started in a session of its own, so its process group is exactly the cluster.
    os.killpg(pid, signal.SIGKILL)
    target.process.stop(timeout=10.0)  # reaps it and removes the pid file
    return True


def down(settings: Settings) -> bool:
    """Stop every cluster, standbys first (a primary's shutdown waits on its senders)."""
    current = primary(settings)
    others = [cluster(settings, n) for n in CLUSTERS if n != current.name]
    stopped = [stop(c) for c in others]
    return stop(current) or any(stopped)
