"""`sbp dev token`: prints only a verifiable token; bad input exits 2 with a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from identity import dev_cli
from identity.principal import Role
from identity.signing_keys import KeySet
from identity.tokens import verify_access_token
from sbp.settings import Settings

app = typer.Typer()
app.command()(dev_cli.token)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    settings = Settings(state_dir=tmp_path)
    monkeypatch.setattr(dev_cli, "get_settings", lambda: settings)
    return settings


def test_prints_only_a_valid_token(settings: Settings) -> None:
    args = ["--tenant", "acme", "--user", "alice", "--role", "fm", "--buildings", "b1, b2"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    token = result.stdout.strip()
    assert result.stdout == token + "\n"
    principal = verify_access_token(
        KeySet.load_or_create(settings.keys_dir),
        token,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )
    assert (principal.tenant_id, principal.user_id) == ("acme", "alice")
    assert principal.role is Role.FM
    assert principal.building_ids == frozenset({"b1", "b2"})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tenant", "acme", "--user", "alice", "--role", "boss"], "unknown role"),
        (["--tenant", "a b", "--user", "alice", "--role", "fm"], "--tenant"),
        (["--tenant", "acme", "--user", "al/ice", "--role", "fm"], "--user"),
        (["--tenant", "acme", "--user", "a", "--role", "fm", "--buildings", "b1,b 2"], "b 2"),
    ],
)
def test_bad_input_exits_2(settings: Settings, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert message in result.stderr
    assert not settings.keys_dir.exists()
