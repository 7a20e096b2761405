"""Versioned, idempotent SQL migrations, recorded in `public.schema_migrations`.

Files are `migrations/NNNN_name.sql`, applied in order, each in its own
transaction, as the owner role (so the owner owns every object and the other
roles own nothing). A file may say `{{app_role}}`, `{{gateway_role}}`,
`{{admin_role}}`, `{{registry_role}}`, `{{sink_role}}` or `{{replay_role}}` where it
grants to that role; the runner substitutes the quoted role name. An
applied file whose content later changes is refused, not re-run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class MigrationDrift(RuntimeError):
    """An applied migration's file was edited after it ran; add a new one instead."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    text: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        number, _, name = path.stem.partition("_")
        found.append(Migration(int(number), name, path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate migration numbers in {directory}")
    return found


def render(migration: Migration, roles: dict[str, str]) -> str:
    """Substitute each `{{<name>_role}}` with the quoted role name."""
    text = migration.text
    for name, role in roles.items():
        text = text.replace("{{" + name + "_role}}", sql.Identifier(role).as_string())
    return text


def migrate(owner_dsn: str, roles: dict[str, str], directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations; returns the names applied by this call."""
    applied_now: list[str] = []
    with psycopg.connect(owner_dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS public.schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for migration in load_migrations(directory):
            with conn.transaction():
                # One runner at a time: a second `dev up` waits instead of racing.
                conn.execute("SELECT pg_advisory_xact_lock(727274)")
                row = conn.execute(
                    "SELECT checksum FROM public.schema_migrations WHERE version = %s",
                    (migration.version,),
                ).fetchone()
                if row is not None:
                    if row[0] != migration.checksum:
                        raise MigrationDrift(
                            f"migration {migration.version}_{migration.name} changed after it "
                            "was applied; write a new migration instead"
                        )
                    continue
                conn.execute(render(migration, roles).encode())
                conn.execute(
                    "INSERT INTO public.schema_migrations (version, name, checksum)"
                    " VALUES (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
                applied_now.append(f"{migration.version:04d}_{migration.name}")
    return applied_now
