"""`sbp users revoke-sessions` and `sbp users audit` (runbooks/token-theft.md) on the
running stack: every login of the user ends, other users' logins do not, and the
audit shows who revoked what."""

from __future__ import annotations

import json
import subprocess

import httpx

from sbp.settings import REPO_ROOT
from tests.integration.accounts import PASSWORD, create_account
from tests.integration.conftest import Tenant


def sbp(*args: str) -> str:
    result = subprocess.run(
        [str(REPO_ROOT / ".venv" / "bin" / "sbp"), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def login(tenant: Tenant, user: str) -> dict[str, str]:
    body = {"tenantId": tenant.tenant_id, "userId": user, "password": PASSWORD}
    response = httpx.post(f"{tenant.gateway}/api/v1/auth/login", json=body, timeout=10)
    assert response.status_code == 200, response.text
    tokens: dict[str, str] = response.json()
    return tokens


def refresh(tenant: Tenant, token: str) -> httpx.Response:
    return httpx.post(
        f"{tenant.gateway}/api/v1/auth/refresh", json={"refreshToken": token}, timeout=10
    )


def test_revoking_a_users_sessions_ends_every_login_of_theirs_only(tenant: Tenant) -> None:
    for user in ("victim", "bystander"):
        create_account(tenant.settings, tenant.tenant_id, user, "occupant", [tenant.building_id])
    phone, laptop = login(tenant, "victim"), login(tenant, "victim")
    other = login(tenant, "bystander")

    out = sbp(
        "users",
        "revoke-sessions",
        "--tenant",
        tenant.tenant_id,
        "--user",
        "victim",
        "--reason",
        "token_theft",
    )
    assert "2 login(s) revoked" in out

    for tokens in (phone, laptop):
        refused = refresh(tenant, tokens["refreshToken"])
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "refresh_revoked"
    assert refresh(tenant, other["refreshToken"]).status_code == 200

    audit = json.loads(
        sbp("users", "audit", "--tenant", tenant.tenant_id, "--event", "sessions_revoked", "--json")
    )["events"]
    assert len(audit) == 1
    [row] = audit
    assert row["user_id"] == "victim" and row["source"].startswith("cli:")
    assert row["detail"]["reason"] == "token_theft"
    assert len(row["detail"]["families"]) == 2
