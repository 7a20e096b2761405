"""Accounts, refresh tokens and the auth audit in PostgreSQL (migration 0004).

SQL only: what each statement means is decided in `identity.auth_service`. Every
function runs inside a transaction the caller opened with `tenant_scope`, so RLS
confines each statement to one tenant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import psycopg

Conn = psycopg.AsyncConnection[Any]


@dataclass(frozen=True)
class Account:
    tenant_id: str
    user_id: str
    role: str
    building_ids: tuple[str, ...]
    password_hash: str
    totp_secret_cipher: bytes | None
    totp_last_step: int
    disabled: bool


@dataclass(frozen=True)
class RefreshRow:
    family_id: str
    user_id: str
    expires_at: datetime
    rotated_at: datetime | None
    successor_cipher: bytes | None
    family_revoked: bool


async def tenant_scope(conn: Conn, tenant_id: str) -> None:
    await conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_id,))


async def get_account(conn: Conn, tenant_id: str, user_id: str) -> Account | None:
    cur = await conn.execute(
        "SELECT role, building_ids, password_hash, totp_secret_cipher, totp_last_step, disabled"
        " FROM sbp.users WHERE tenant_id = %s AND user_id = %s",
        (tenant_id, user_id),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    role, buildings, password_hash, totp_cipher, last_step, disabled = row
    return Account(
        tenant_id, user_id, role, tuple(buildings), password_hash, totp_cipher, last_step, disabled
    )


async def create_account(
    conn: Conn,
    *,
    tenant_id: str,
    user_id: str,
    role: str,
    building_ids: list[str],
    password_hash: str,
    totp_secret_cipher: bytes | None,
    email_cipher: bytes | None,
    display_name_cipher: bytes | None,
) -> bool:
    """Insert the account; False if the id is taken in this tenant."""
    cur = await conn.execute(
        "INSERT INTO sbp.users (tenant_id, user_id, role, building_ids, password_hash,"
        " totp_secret_cipher, email_cipher, display_name_cipher)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (
            tenant_id,
            user_id,
            role,
            building_ids,
            password_hash,
            totp_secret_cipher,
            email_cipher,
            display_name_cipher,
        ),
    )
    return cur.rowcount == 1


async def claim_totp_step(conn: Conn, tenant_id: str, user_id: str, step: int) -> bool:
    """Record `step` as used; False if it (or a later one) already was. One statement,
    so two logins racing with the same code cannot both succeed."""
    cur = await conn.execute(
        "UPDATE sbp.users SET totp_last_step = %s"
        " WHERE tenant_id = %s AND user_id = %s AND totp_last_step < %s",
        (step, tenant_id, user_id, step),
    )
    return cur.rowcount == 1


async def start_family(
    conn: Conn, tenant_id: str, family_id: str, user_id: str, expires_at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO sbp.refresh_families (tenant_id, family_id, user_id, expires_at)"
        " VALUES (%s, %s, %s, %s)",
        (tenant_id, family_id, user_id, expires_at),
    )


async def insert_refresh(
    conn: Conn,
    *,
    tenant_id: str,
    token_hash: bytes,
    family_id: str,
    user_id: str,
    issued_at: datetime,
    expires_at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO sbp.refresh_tokens"
        " (tenant_id, token_hash, family_id, user_id, issued_at, expires_at)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (tenant_id, token_hash, family_id, user_id, issued_at, expires_at),
    )
    await conn.execute(
        "UPDATE sbp.refresh_families SET expires_at = greatest(expires_at, %s)"
        " WHERE tenant_id = %s AND family_id = %s",
        (expires_at, tenant_id, family_id),
    )


async def lock_refresh(conn: Conn, tenant_id: str, token_hash: bytes) -> RefreshRow | None:
    """The token and its family's state, locked until the transaction ends, so two
    concurrent uses of one token are decided one after the other."""
    cur = await conn.execute(
        "SELECT t.family_id, t.user_id, t.expires_at, t.rotated_at, t.successor_cipher,"
        " f.revoked_at IS NOT NULL"
        " FROM sbp.refresh_tokens t JOIN sbp.refresh_families f"
        " USING (tenant_id, family_id)"
        " WHERE t.tenant_id = %s AND t.token_hash = %s FOR UPDATE OF t, f",
        (tenant_id, token_hash),
    )
    row = await cur.fetchone()
    return None if row is None else RefreshRow(*row)


async def mark_rotated(
    conn: Conn, tenant_id: str, token_hash: bytes, at: datetime, successor_cipher: bytes
) -> None:
    await conn.execute(
        "UPDATE sbp.refresh_tokens SET rotated_at = %s, successor_cipher = %s"
        " WHERE tenant_id = %s AND token_hash = %s",
        (at, successor_cipher, tenant_id, token_hash),
    )


async def revoke_family(conn: Conn, tenant_id: str, family_id: str, reason: str) -> bool:
    """Revoke the family and forget every successor kept for retries; False if it
    was already revoked."""
    cur = await conn.execute(
        "UPDATE sbp.refresh_families SET revoked_at = now(), revoked_reason = %s"
        " WHERE tenant_id = %s AND family_id = %s AND revoked_at IS NULL",
        (reason, tenant_id, family_id),
    )
    await conn.execute(
        "UPDATE sbp.refresh_tokens SET successor_cipher = NULL"
        " WHERE tenant_id = %s AND family_id = %s",
        (tenant_id, family_id),
    )
    return cur.rowcount == 1


async def write_audit(
    conn: Conn,
    tenant_id: str,
    event: str,
    *,
    user_id: str | None = None,
    family_id: str | None = None,
    source: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO sbp.auth_audit (tenant_id, event, user_id, family_id, source, detail)"
        " VALUES (%s, %s, %s, %s, %s, %s::jsonb)",
        (tenant_id, event, user_id, family_id, source, orjson.dumps(detail or {}).decode()),
    )


async def purge_expired(conn: Conn) -> int:
    cur = await conn.execute("SELECT sbp.purge_expired_auth()")
    row = await cur.fetchone()
    return int(row[0]) if row else 0
