"""Who runs a replay command: an operator, proven by an access token.

The token is verified exactly as the gateway verifies one (`identity.tokens` against
the platform key set in `settings.keys_dir`), then the RBAC SDK decides whether its
role may perform the command's action. Nothing here compares roles.

In dev mode only, `--dev-operator` stands in for a token: it mints a 60-second
operator token from the local key set, as `sbp dev token` does, and that token then
goes through the very same verification. Outside dev mode the flag is refused, so a
production operator always brings a token from the login flow (with its TOTP).
"""

from __future__ import annotations

from datetime import datetime

from identity.dev_cli import mint_dev_token
from identity.principal import Principal, Role
from identity.rbac import Action, Forbidden, authorize
from identity.signing_keys import KeySet
from identity.tokens import TokenError, verify_access_token
from replay.errors import ReplayError
from replay.exit_codes import ExitCode
from sbp.settings import Settings

# Who a dev-mode local credential speaks for, as the operator log records it.
DEV_OPERATOR_TENANT = "platform"
DEV_OPERATOR_USER = "dev-operator"
# Long enough for one command, short enough that a copy of it is soon worthless.
DEV_OPERATOR_TTL_S = 60


def operator_principal(
    settings: Settings,
    action: Action,
    *,
    token: str | None,
    dev_operator: bool,
    now: datetime | None = None,
) -> Principal:
    """The verified caller, allowed to perform `action`; else a ReplayError (exit 3/4)."""
    if dev_operator:
        if token:
            raise ReplayError(
                ExitCode.USAGE,
                "give either a token (--token, SBP_OPERATOR_TOKEN) or --dev-operator",
            )
        token = _dev_operator_token(settings)
    if not token:
        raise ReplayError(
            ExitCode.NOT_AUTHENTICATED,
            "an operator access token is required: --token or SBP_OPERATOR_TOKEN"
            + (" (or --dev-operator in dev mode)" if settings.dev_mode else ""),
        )
    try:
        principal = verify_access_token(
            KeySet.load_or_create(settings.keys_dir),
            token,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            now=now,
        )
    except TokenError as exc:
        raise ReplayError(
            ExitCode.NOT_AUTHENTICATED, f"token refused ({exc.code}): {exc.message}"
        ) from None
    try:
        authorize(principal, action)
    except Forbidden as exc:
        raise ReplayError(ExitCode.FORBIDDEN, f"{exc.code}: {exc.message}") from None
    return principal


def _dev_operator_token(settings: Settings) -> str:
    if not settings.dev_mode:
        raise ReplayError(
            ExitCode.NOT_AUTHENTICATED,
            "--dev-operator works only in dev mode (SBP_DEV_MODE=true); bring a token",
        )
    return mint_dev_token(
        settings,
        DEV_OPERATOR_TENANT,
        DEV_OPERATOR_USER,
        Role.OPERATOR.value,
        [],
        ttl_s=DEV_OPERATOR_TTL_S,
    )
