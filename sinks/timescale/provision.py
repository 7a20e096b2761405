"""Database provisioning that needs the superuser: roles, the database, extensions.

The owner role owns every object and runs migrations; the application role is
not a superuser, has no BYPASSRLS, owns nothing, and gets only what the
migrations grant. Idempotent: roles are altered back to these attributes if
someone changed them.
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg
from psycopg import sql

from sbp.settings import Settings


def bootstrap_database(settings: Settings, superuser_dsn: Callable[[str], str]) -> None:
    """Create the owner and application roles and the database, idempotently."""
    with psycopg.connect(superuser_dsn("postgres"), autocommit=True) as conn:
        for role, password in (
            (settings.pg_owner_user, settings.pg_owner_password),
            (settings.pg_app_user, settings.pg_app_password),
        ):
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            verb = sql.SQL("ALTER") if exists else sql.SQL("CREATE")
            conn.execute(
                sql.SQL(
                    "{} ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD {}"
                ).format(verb, sql.Identifier(role), sql.Literal(password))
            )
        db = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (settings.pg_database,)
        ).fetchone()
        if not db:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(settings.pg_database), sql.Identifier(settings.pg_owner_user)
                )
            )
    with psycopg.connect(superuser_dsn(settings.pg_database), autocommit=True) as conn:
        # Extensions need a superuser; the owner's migrations then only use them.
        available = conn.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
        ).fetchone()
        if available:
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        conn.execute(
            sql.SQL(
                "REVOKE ALL ON SCHEMA public FROM PUBLIC; REVOKE ALL ON DATABASE {} FROM PUBLIC"
            ).format(sql.Identifier(settings.pg_database))
        )
        conn.execute(
            # TEMPORARY: the sinks COPY into temp tables (COPY into an RLS table is refused).
            sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(
                sql.Identifier(settings.pg_database), sql.Identifier(settings.pg_app_user)
            )
        )
