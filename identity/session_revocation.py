"""Operators end a user's logins and read the auth audit (runbooks/token-theft.md).

Run by `sbp users revoke-sessions` and `sbp users audit` as the tooling role
(`sbp_app`: no superuser, no BYPASSRLS), inside one tenant's RLS scope. Revoking a
family is what refresh-token reuse does (identity/auth_service.py): the next
refresh of any token of that login is refused (`refresh_revoked`). Access tokens
already issued are self-contained JWTs and stay valid until they expire (15 min).
Every revocation is written to the append-only auth audit, even one that found
no open login, so the audit shows the operator acted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import psycopg

REVOKED_EVENT = "sessions_revoked"


@dataclass(frozen=True)
class AuditRow:
    at: datetime
    event: str
    user_id: str | None
    family_id: str | None
    source: str | None
    detail: dict[str, Any]


def _scope(conn: psycopg.Connection[Any], tenant_id: str) -> None:
    conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_id,))


def revoke_user_sessions(
    dsn: str, tenant_id: str, user_id: str, reason: str, actor: str
) -> list[str]:
    """Revoke every open login (refresh family) of the user; returns their ids."""
    with psycopg.connect(dsn) as conn, conn.transaction():
        _scope(conn, tenant_id)
        rows = conn.execute(
            "UPDATE sbp.refresh_families SET revoked_at = now(), revoked_reason = %s"
            " WHERE tenant_id = %s AND user_id = %s AND revoked_at IS NULL"
            " RETURNING family_id",
            (reason, tenant_id, user_id),
        ).fetchall()
        families = sorted(r[0] for r in rows)
        conn.execute(
            "INSERT INTO sbp.auth_audit (tenant_id, event, user_id, source, detail)"
            " VALUES (%s, %s, %s, %s, %s::jsonb)",
            (
                tenant_id,
                REVOKED_EVENT,
                user_id,
                actor,
                orjson.dumps({"reason": reason, "families": families}).decode(),
            ),
        )
    return families


def read_audit(
    dsn: str, tenant_id: str, since: datetime, event: str | None = None
) -> list[AuditRow]:
    """The tenant's auth audit since `since`, oldest first, optionally one event only."""
    with psycopg.connect(dsn) as conn, conn.transaction():
        _scope(conn, tenant_id)
        rows = conn.execute(
            "SELECT at, event, user_id, family_id, source, detail FROM sbp.auth_audit"
            " WHERE tenant_id = %s AND at >= %s AND (%s::text IS NULL OR event = %s)"
            " ORDER BY audit_id",
            (tenant_id, since, event, event),
        ).fetchall()
    return [AuditRow(*row) for row in rows]
