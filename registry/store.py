"""The registry's PostgreSQL storage (schema `registry`, migration 0002).

Invariants kept here, with the database's constraints as the backstop:

* A schema id is handed out once per distinct schema (by fingerprint) and its
  row is never changed; the application role cannot update or delete it.
* Writes to one subject are serialized by a transaction-scoped advisory lock on
  the subject, so two racing registrations can't both pass the compatibility
  check against the same history or take the same version number.
* Soft-deleted versions stay in the table, flagged, and keep their numbers;
  new versions always number past them.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from registry import canonical, compatibility
from registry.compatibility import Level
from registry.errors import (
    IncompatibleSchema,
    SchemaNotFound,
    StoreError,
    SubjectNotFound,
    SubjectNotSoftDeleted,
    SubjectSoftDeleted,
    VersionNotFound,
    VersionNotSoftDeleted,
    VersionSoftDeleted,
)

log = logging.getLogger(__name__)

Connection = AsyncConnection[tuple[Any, ...]]
Pool = AsyncConnectionPool[Connection]

# First key of the two-key advisory lock space ("RG"); the second is the
# subject's hash. Hash collisions only serialize two subjects needlessly.
_SUBJECT_LOCK = 0x5247
# The config row that holds the global level (see migration 0002).
_GLOBAL = ""

_VERSION_COLUMNS = (
    "SELECT v.subject, v.version, s.id, s.guid, s.schema_text, v.deleted"
    " FROM registry.subject_versions v JOIN registry.schemas s ON s.id = v.schema_id"
)


@dataclass(frozen=True)
class Registered:
    """One version of a subject."""

    subject: str
    version: int
    schema_id: int
    guid: UUID
    text: str
    deleted: bool = False


@dataclass(frozen=True)
class StoredSchema:
    schema_id: int
    guid: UUID
    text: str


class Store:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Connection]:
        try:
            async with self._pool.connection() as conn:
                yield conn
        except psycopg.Error as exc:
            log.exception("registry store failure")
            raise StoreError(f"Error in the backend data store: {type(exc).__name__}") from exc

    async def ping(self) -> None:
        """Fails unless the database answers and migration 0002 is applied."""
        async with self._connection() as conn:
            await conn.execute("SELECT 1 FROM registry.config LIMIT 1")

    # -- subjects and versions -------------------------------------------------

    async def register(self, subject: str, schema: canonical.AvroSchema) -> Registered:
        """Add `schema` to `subject`, or return the live version that has it."""
        async with self._connection() as conn, conn.transaction():
            await _lock_subject(conn, subject)
            cur = await conn.execute(
                _VERSION_COLUMNS + " WHERE v.subject = %s AND NOT v.deleted AND s.fingerprint = %s",
                (subject, schema.fingerprint),
            )
            if (row := await cur.fetchone()) is not None:
                return Registered(*row)
            history = await _live_history(conn, subject)
            level = await _effective_level(conn, subject)
            verdict = compatibility.check(schema, history, level)
            if not verdict.is_compatible:
                raise IncompatibleSchema(
                    "Schema being registered is incompatible with an earlier schema for "
                    f'subject "{subject}" at level {level}, details: {list(verdict.messages)}'
                )
            stored = await _ensure_schema(conn, schema)
            cur = await conn.execute(
                "INSERT INTO registry.subject_versions (subject, version, schema_id)"
                " SELECT %s, coalesce(max(version), 0) + 1, %s"
                " FROM registry.subject_versions WHERE subject = %s RETURNING version",
                (subject, stored.schema_id, subject),
            )
            (version,) = await _one(cur)
            log.info("registered schema id %s as %s version %s", stored.schema_id, subject, version)
            return Registered(subject, version, stored.schema_id, stored.guid, stored.text)

    async def lookup(
        self, subject: str, schema: canonical.AvroSchema, include_deleted: bool
    ) -> Registered:
        async with self._connection() as conn:
            await _require_subject(conn, subject, include_deleted)
            cur = await conn.execute(
                _VERSION_COLUMNS + " WHERE v.subject = %s AND s.fingerprint = %s"
                " AND (%s OR NOT v.deleted) ORDER BY v.deleted, v.version DESC LIMIT 1",
                (subject, schema.fingerprint, include_deleted),
            )
            row = await cur.fetchone()
        if row is None:
            raise SchemaNotFound(f"Schema not found under subject '{subject}'")
        return Registered(*row)

    async def subjects(self, include_deleted: bool, deleted_only: bool, prefix: str) -> list[str]:
        if deleted_only:
            having = "NOT bool_or(NOT deleted)"
        elif include_deleted:
            having = "true"
        else:
            having = "bool_or(NOT deleted)"
        async with self._connection() as conn:
            cur = await conn.execute(
                "SELECT subject FROM registry.subject_versions"
                " WHERE left(subject, length(%s)) = %s"
                f" GROUP BY subject HAVING {having} ORDER BY subject",
                (prefix, prefix),
            )
            return [r[0] for r in await cur.fetchall()]

    async def versions(self, subject: str, include_deleted: bool, deleted_only: bool) -> list[int]:
        async with self._connection() as conn:
            await _require_subject(conn, subject, include_deleted or deleted_only)
            cur = await conn.execute(
                "SELECT version FROM registry.subject_versions WHERE subject = %s"
                " AND (CASE WHEN %s THEN deleted WHEN %s THEN true ELSE NOT deleted END)"
                " ORDER BY version",
                (subject, deleted_only, include_deleted),
            )
            return [r[0] for r in await cur.fetchall()]

    async def version(self, subject: str, version: int | None, include_deleted: bool) -> Registered:
        """One version; `None` means the latest."""
        async with self._connection() as conn:
            await _require_subject(conn, subject, include_deleted)
            if version is None:
                cur = await conn.execute(
                    _VERSION_COLUMNS + " WHERE v.subject = %s AND (%s OR NOT v.deleted)"
                    " ORDER BY v.version DESC LIMIT 1",
                    (subject, include_deleted),
                )
            else:
                cur = await conn.execute(
                    _VERSION_COLUMNS + " WHERE v.subject = %s AND v.version = %s"
                    " AND (%s OR NOT v.deleted)",
                    (subject, version, include_deleted),
                )
            row = await cur.fetchone()
        if row is None:
            raise VersionNotFound(subject, "latest" if version is None else version)
        return Registered(*row)

    async def live_history(self, subject: str) -> list[tuple[int, canonical.AvroSchema]]:
        async with self._connection() as conn:
            return await _live_history(conn, subject)

    # -- schemas by id ---------------------------------------------------------

    async def schema_by_id(self, schema_id: int) -> StoredSchema:
        async with self._connection() as conn:
            cur = await conn.execute(
                "SELECT id, guid, schema_text FROM registry.schemas WHERE id = %s", (schema_id,)
            )
            row = await cur.fetchone()
        if row is None:
            raise SchemaNotFound(f"Schema {schema_id} not found")
        return StoredSchema(*row)

    async def schema_by_guid(self, guid: UUID) -> StoredSchema:
        async with self._connection() as conn:
            cur = await conn.execute(
                "SELECT id, guid, schema_text FROM registry.schemas WHERE guid = %s", (guid,)
            )
            row = await cur.fetchone()
        if row is None:
            raise SchemaNotFound(f"Schema {guid} not found")
        return StoredSchema(*row)

    async def usages(self, schema_id: int, include_deleted: bool) -> list[tuple[str, int]]:
        """The (subject, version) pairs that hold `schema_id`."""
        await self.schema_by_id(schema_id)
        async with self._connection() as conn:
            cur = await conn.execute(
                "SELECT subject, version FROM registry.subject_versions"
                " WHERE schema_id = %s AND (%s OR NOT deleted) ORDER BY subject, version",
                (schema_id, include_deleted),
            )
            return [(r[0], r[1]) for r in await cur.fetchall()]

    # -- compatibility configuration -------------------------------------------

    async def level(self, subject: str | None) -> Level | None:
        """The level set for `subject` (None: the global one); None if unset."""
        async with self._connection() as conn:
            cur = await conn.execute(
                "SELECT compatibility FROM registry.config WHERE subject = %s",
                (subject or _GLOBAL,),
            )
            row = await cur.fetchone()
        return None if row is None else Level(row[0])

    async def effective_level(self, subject: str) -> Level:
        async with self._connection() as conn:
            return await _effective_level(conn, subject)

    async def set_level(self, subject: str | None, level: Level) -> None:
        async with self._connection() as conn:
            await conn.execute(
                "INSERT INTO registry.config (subject, compatibility) VALUES (%s, %s)"
                " ON CONFLICT (subject) DO UPDATE"
                " SET compatibility = excluded.compatibility, updated_at = now()",
                (subject or _GLOBAL, level.value),
            )

    async def delete_level(self, subject: str | None) -> Level | None:
        """Remove a level; returns what it was, or None if none was set."""
        async with self._connection() as conn:
            cur = await conn.execute(
                "DELETE FROM registry.config WHERE subject = %s RETURNING compatibility",
                (subject or _GLOBAL,),
            )
            row = await cur.fetchone()
        return None if row is None else Level(row[0])

    # -- deletion --------------------------------------------------------------

    async def delete_subject(self, subject: str, permanent: bool) -> list[int]:
        """Soft-delete every live version, or hard-delete an already soft-deleted subject."""
        async with self._connection() as conn, conn.transaction():
            await _lock_subject(conn, subject)
            rows = await _subject_rows(conn, subject)
            if not rows:
                raise SubjectNotFound(subject)
            live = [v for v, deleted in rows if not deleted]
            if not permanent:
                if not live:
                    raise SubjectSoftDeleted(subject)
                await conn.execute(
                    "UPDATE registry.subject_versions SET deleted = true, updated_at = now()"
                    " WHERE subject = %s AND NOT deleted",
                    (subject,),
                )
                return live
            if live:
                raise SubjectNotSoftDeleted(subject)
            await conn.execute(
                "DELETE FROM registry.subject_versions WHERE subject = %s", (subject,)
            )
            await conn.execute("DELETE FROM registry.config WHERE subject = %s", (subject,))
            return [v for v, _ in rows]

    async def delete_version(self, subject: str, version: int | None, permanent: bool) -> int:
        """Soft-delete one live version (None: the latest), or hard-delete a soft-deleted one."""
        async with self._connection() as conn, conn.transaction():
            await _lock_subject(conn, subject)
            rows = dict(await _subject_rows(conn, subject))
            visible = rows if permanent else {v: d for v, d in rows.items() if not d}
            if not visible:
                raise SubjectNotFound(subject)
            target = max(visible) if version is None else version
            if target not in rows:
                raise VersionNotFound(subject, target)
            if not permanent:
                if rows[target]:
                    raise VersionSoftDeleted(subject, target)
                await conn.execute(
                    "UPDATE registry.subject_versions SET deleted = true, updated_at = now()"
                    " WHERE subject = %s AND version = %s",
                    (subject, target),
                )
                return target
            if not rows[target]:
                raise VersionNotSoftDeleted(subject, target)
            await conn.execute(
                "DELETE FROM registry.subject_versions WHERE subject = %s AND version = %s",
                (subject, target),
            )
            return target


async def _lock_subject(conn: Connection, subject: str) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_SUBJECT_LOCK, subject))


async def _one(cur: psycopg.AsyncCursor[tuple[Any, ...]]) -> tuple[Any, ...]:
    row = await cur.fetchone()
    if row is None:
        raise StoreError("the database returned no row where one was expected")
    return row


async def _subject_rows(conn: Connection, subject: str) -> list[tuple[int, bool]]:
    cur = await conn.execute(
        "SELECT version, deleted FROM registry.subject_versions"
        " WHERE subject = %s ORDER BY version",
        (subject,),
    )
    return [(r[0], r[1]) for r in await cur.fetchall()]


async def _require_subject(conn: Connection, subject: str, include_deleted: bool) -> None:
    cur = await conn.execute(
        "SELECT 1 FROM registry.subject_versions"
        " WHERE subject = %s AND (%s OR NOT deleted) LIMIT 1",
        (subject, include_deleted),
    )
    if await cur.fetchone() is None:
        raise SubjectNotFound(subject)


async def _live_history(conn: Connection, subject: str) -> list[tuple[int, canonical.AvroSchema]]:
    cur = await conn.execute(
        "SELECT v.version, s.id, s.schema_text FROM registry.subject_versions v"
        " JOIN registry.schemas s ON s.id = v.schema_id"
        " WHERE v.subject = %s AND NOT v.deleted ORDER BY v.version",
        (subject,),
    )
    history: list[tuple[int, canonical.AvroSchema]] = []
    for version, schema_id, text in await cur.fetchall():
        try:
            history.append((version, canonical.parse(text)))
        except canonical.SchemaInvalid as exc:
            # Accepted once, refused now: a validator change, not the client's fault.
            raise StoreError(f"stored schema {schema_id} no longer parses: {exc}") from exc
    return history


async def _effective_level(conn: Connection, subject: str) -> Level:
    cur = await conn.execute(
        "SELECT compatibility FROM registry.config WHERE subject IN (%s, %s)"
        " ORDER BY subject = %s LIMIT 1",
        (subject, _GLOBAL, _GLOBAL),
    )
    row = await cur.fetchone()
    return compatibility.DEFAULT_LEVEL if row is None else Level(row[0])


async def _ensure_schema(conn: Connection, schema: canonical.AvroSchema) -> StoredSchema:
    select = (
        "SELECT id, guid, schema_text FROM registry.schemas"
        " WHERE schema_type = 'AVRO' AND fingerprint = %s"
    )
    # Look first: an INSERT that hits the conflict would still burn an identity value.
    if (row := await (await conn.execute(select, (schema.fingerprint,))).fetchone()) is not None:
        return StoredSchema(*row)
    # ON CONFLICT DO NOTHING waits for a racing insert of the same schema (from
    # another subject) to commit; the second SELECT then sees its row: one id either way.
    cur = await conn.execute(
        "INSERT INTO registry.schemas (fingerprint, canonical_form, normalized_form, schema_text)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT (schema_type, fingerprint) DO NOTHING"
        " RETURNING id, guid, schema_text",
        (schema.fingerprint, schema.canonical_form, schema.normalized_form, schema.text),
    )
    row = await cur.fetchone()
    if row is None:
        row = await _one(await conn.execute(select, (schema.fingerprint,)))
    return StoredSchema(*row)
