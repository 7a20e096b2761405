"""Replay commands admit an operator token and nothing else, with the exit code a
script can branch on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from identity.dev_cli import mint_dev_token
from identity.rbac import Action
from identity.signing_keys import KeySet
from identity.tokens import mint_access_token
from replay.errors import ReplayError
from replay.exit_codes import ExitCode
from replay.operator_auth import DEV_OPERATOR_TENANT, DEV_OPERATOR_USER, operator_principal
from sbp.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(state_dir=tmp_path)


def refused(settings: Settings, **kwargs: object) -> ReplayError:
    with pytest.raises(ReplayError) as info:
        operator_principal(settings, Action.OFFSETS_RESET, **kwargs)  # type: ignore[arg-type]
    return info.value


def test_an_operator_token_is_admitted_as_its_subject(settings: Settings) -> None:
    token = mint_dev_token(settings, "ops", "alice", "operator", [])
    principal = operator_principal(settings, Action.OFFSETS_RESET, token=token, dev_operator=False)
    assert (principal.tenant_id, principal.user_id) == ("ops", "alice")


@pytest.mark.parametrize("role", ["occupant", "fm", "tenant_admin", "platform_admin", "sensor"])
def test_any_other_role_is_forbidden(settings: Settings, role: str) -> None:
    token = mint_dev_token(settings, "ops", "bob", role, ["b1"])
    error = refused(settings, token=token, dev_operator=False)
    assert error.exit_code is ExitCode.FORBIDDEN
    assert role in error.message


def test_no_token_is_not_authenticated(settings: Settings) -> None:
    error = refused(settings, token=None, dev_operator=False)
    assert error.exit_code is ExitCode.NOT_AUTHENTICATED
    assert "SBP_OPERATOR_TOKEN" in error.message


def test_a_token_signed_by_another_key_is_refused(settings: Settings) -> None:
    forged = mint_access_token(
        KeySet.generate(),
        tenant_id="ops",
        user_id="mallory",
        role="operator",
        building_ids=[],
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl_s=900,
    )
    error = refused(settings, token=forged, dev_operator=False)
    assert error.exit_code is ExitCode.NOT_AUTHENTICATED
    assert "unknown_key" in error.message


def test_a_tampered_token_is_refused(settings: Settings) -> None:
    token = mint_dev_token(settings, "ops", "alice", "operator", [])
    head, payload, signature = token.split(".")
    tampered = f"{head}.{payload}.{signature[:-4]}AAAA"
    error = refused(settings, token=tampered, dev_operator=False)
    assert error.exit_code is ExitCode.NOT_AUTHENTICATED


def test_an_expired_token_is_refused(settings: Settings) -> None:
    token = mint_dev_token(settings, "ops", "alice", "operator", [], ttl_s=60)
    later = datetime.now(UTC) + timedelta(minutes=5)
    error = refused(settings, token=token, dev_operator=False, now=later)
    assert error.exit_code is ExitCode.NOT_AUTHENTICATED
    assert "expired" in error.message


def test_the_dev_operator_credential_speaks_for_the_dev_operator(settings: Settings) -> None:
    principal = operator_principal(settings, Action.REPLAY_READ, token=None, dev_operator=True)
    assert (principal.tenant_id, principal.user_id) == (DEV_OPERATOR_TENANT, DEV_OPERATOR_USER)
    # Short-lived: not a standing credential.
    assert principal.expires_at <= datetime.now(UTC) + timedelta(seconds=61)


def test_the_dev_operator_credential_is_refused_outside_dev_mode(tmp_path: Path) -> None:
    production = Settings.model_validate(
        {
            "state_dir": tmp_path,
            "dev_mode": False,
            **{
                name: f"real-{name}"
                for name in Settings.model_fields
                if name.endswith("_password") and name != "pg_superuser_password"
            },
        }
    )
    error = refused(production, token=None, dev_operator=True)
    assert error.exit_code is ExitCode.NOT_AUTHENTICATED
    assert "dev mode" in error.message
    # Nothing was minted: no key set appeared on disk.
    assert not (tmp_path / "keys").exists()


def test_a_token_and_the_dev_credential_together_are_a_usage_error(settings: Settings) -> None:
    token = mint_dev_token(settings, "ops", "alice", "operator", [])
    assert refused(settings, token=token, dev_operator=True).exit_code is ExitCode.USAGE
