"""An operator at the shell, for the integration tests: `sbp replay` run as a separate
process with an operator token, and the operator log read back."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg

from sbp.settings import REPO_ROOT, Settings
from tests.integration.conftest import Tenant

SBP = str(Path(sys.executable).parent / "sbp")


def replay(
    token: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`sbp replay ...` as an operator runs it, with the token in the environment
    (and `env` added to it)."""
    return subprocess.run(
        [SBP, "replay", *args],
        cwd=REPO_ROOT,
        env={**os.environ, "SBP_OPERATOR_TOKEN": token, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def operator_token(tenant: Tenant) -> tuple[str, str]:
    """A token for an operator of its own (so its log rows are its test's alone)."""
    user = f"op-{uuid.uuid4().hex[:10]}"
    return tenant.token(role="operator", user=user), user


def operator_log(settings: Settings, user_id: str) -> list[tuple[Any, ...]]:
    """(tenant, user, action, group, topic, detail, at) of each row by `user_id`, in order."""
    with psycopg.connect(settings.pg_dsn("app")) as conn:
        return conn.execute(
            "SELECT tenant_id, user_id, action, consumer_group, topic, detail, at"
            " FROM ops.operator_log WHERE user_id = %s ORDER BY log_id",
            (user_id,),
        ).fetchall()
