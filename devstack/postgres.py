"""A private PostgreSQL 15 cluster (Debian's binaries) under the state dir.

PostgreSQL refuses to run as root, and CI runs as root, so when we are root the
cluster is initialised and run as the `postgres` user. It listens on loopback
TCP only (no socket file) and authenticates everyone with scram; the superuser
password is random and kept in a 0600 file beside the data dir.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import subprocess
from pathlib import Path

import psycopg

from devstack.processes import ManagedProcess, grant_traverse, wait_until_ready
from sbp.settings import Settings

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def pg_dir(settings: Settings) -> Path:
    return settings.state_dir / "postgres"


def _data_dir(settings: Settings) -> Path:
    return pg_dir(settings) / "data"


def _password_file(settings: Settings) -> Path:
    return pg_dir(settings) / "superuser.password"


def process(settings: Settings) -> ManagedProcess:
    return ManagedProcess("postgres", settings.state_dir / "run", marker=str(_data_dir(settings)))


def _run_as() -> str | None:
    return "postgres" if os.geteuid() == 0 else None


def superuser_dsn(settings: Settings, dbname: str = "postgres") -> str:
    """The configured superuser password, else the local cluster's generated one."""
    password = settings.pg_superuser_password or _password_file(settings).read_text().strip()
    return settings.pg_superuser_dsn(password, dbname)


def init_cluster(settings: Settings) -> None:
    data = _data_dir(settings)
    if (data / "PG_VERSION").exists():
        return
    if not (PG_BIN / "initdb").exists():
        raise RuntimeError(f"{PG_BIN}/initdb not found; run scripts/setup (postgresql-15)")
    root = pg_dir(settings)
    root.mkdir(parents=True, exist_ok=True)
    pwfile = _password_file(settings)
    pwfile.write_text(secrets.token_urlsafe(24) + "\n")
    user = _run_as()
    if user is not None:
        entry = pwd.getpwnam(user)
        grant_traverse(settings.state_dir)
        os.chown(root, entry.pw_uid, entry.pw_gid)
        os.chown(pwfile, entry.pw_uid, entry.pw_gid)
    pwfile.chmod(0o600)
    try:
        _initdb(settings, data, pwfile, user)
    except subprocess.CalledProcessError:
        # A half-made data dir would make every later attempt fail too.
        shutil.rmtree(data, ignore_errors=True)
        raise
    (data / "pg_hba.conf").write_text(
        "# Written by sbp dev: loopback TCP only, passwords for everyone.\n"
        "host all all 127.0.0.1/32 scram-sha-256\n"
        "host all all ::1/128 scram-sha-256\n"
    )


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


def is_ready(settings: Settings) -> bool:
    try:
        with psycopg.connect(superuser_dsn(settings), connect_timeout=2) as conn:
            conn.execute("SELECT 1")
    except (psycopg.Error, FileNotFoundError):
        return False
    return True


def up(settings: Settings, timeout: float = 60.0) -> None:
    init_cluster(settings)
    proc = process(settings)
    if not proc.is_running():
        # postgres does not accept a pid file path; its postmaster.pid stays in the
        # data dir and ours (the postmaster's pid) in the run dir.
        run_dir = settings.state_dir / "run"
        run_dir.mkdir(parents=True, exist_ok=True)
        user = _run_as()
        if user is not None:
            entry = pwd.getpwnam(user)
            log = proc.log_file
            log.touch()
            os.chown(log, entry.pw_uid, entry.pw_gid)
        proc.start(
            [
                str(PG_BIN / "postgres"),
                "-D",
                str(_data_dir(settings)),
                "-c",
                f"port={settings.pg_port}",
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
            user=user,
        )
    wait_until_ready(proc, lambda: is_ready(settings), timeout)


def down(settings: Settings) -> bool:
    # SIGINT is PostgreSQL's "fast" shutdown: it rolls back open transactions
    # instead of waiting for clients to leave.
    return process(settings).stop(sig=signal.SIGINT, timeout=60.0)
