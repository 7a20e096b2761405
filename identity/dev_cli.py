"""`sbp dev token`: mint an access token from the local dev key set.

Prints only the token on stdout, so `TOKEN=$(sbp dev token --tenant t1 --user u1
--role fm --buildings b1,b2)` works; errors go to stderr with exit code 2 (a usage
error). The key set is the one in `settings.keys_dir`, created on first use, so the
local gateway verifies these tokens. Never wired into production tooling: real tokens
come from the login flow.
"""

from __future__ import annotations

from typing import NoReturn

import typer

from identity.principal import Role, is_valid_id
from identity.signing_keys import KeySet
from identity.tokens import MAX_LIFETIME_S, mint_access_token
from sbp.settings import Settings, get_settings

_ROLES = ", ".join(r.value for r in Role)


def token(
    tenant: str = typer.Option(..., help="tenant id"),
    user: str = typer.Option(..., help="user id (becomes userId and sub)"),
    role: str = typer.Option(..., help=f"one of: {_ROLES}"),
    buildings: str = typer.Option("", help="comma-separated building ids"),
    ttl: int | None = typer.Option(
        None,
        help="lifetime in seconds (default and maximum: 900)",
        min=1,
        max=MAX_LIFETIME_S,
    ),
) -> None:
    """Mint a dev access token and print it (and nothing else) on stdout."""
    if role not in {r.value for r in Role}:
        _usage_error(f"unknown role {role!r}; expected one of: {_ROLES}")
    building_ids = [b.strip() for b in buildings.split(",") if b.strip()]
    # Validate before touching the key directory, and name the offending option.
    for option, value in [("--tenant", tenant), ("--user", user)] + [
        ("--buildings", b) for b in building_ids
    ]:
        if not is_valid_id(value):
            _usage_error(f"{option}: {value!r} is not an id (1 to 64 of [A-Za-z0-9_-])")
    typer.echo(mint_dev_token(get_settings(), tenant, user, role, building_ids, ttl_s=ttl))


def mint_dev_token(
    settings: Settings,
    tenant_id: str,
    user_id: str,
    role: str,
    building_ids: list[str],
    ttl_s: int | None = None,
) -> str:
    """A token from the local key set in `settings.keys_dir`, which the local gateway trusts."""
    return mint_access_token(
        KeySet.load_or_create(settings.keys_dir),
        tenant_id=tenant_id,
        user_id=user_id,
        role=role,
        building_ids=building_ids,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl_s=ttl_s if ttl_s is not None else settings.access_token_ttl_s,
    )


def _usage_error(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)
