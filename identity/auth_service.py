"""Login, refresh, logout and sensor client credentials (brief §4).

This module decides; `account_store` speaks SQL, `passwords` and `totp` check secrets,
`tokens` signs. Every failure is an `AuthError` whose status and code the gateway
returns as they are. Answers never tell an unknown account from a wrong password.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from identity import account_store as store
from identity import totp
from identity.keyring import DecryptionError, Keyring
from identity.passwords import verify_password_async
from identity.principal import Role, is_valid_id
from identity.refresh_tokens import (
    LIFETIME,
    REFUSALS,
    Outcome,
    ParsedRefresh,
    RefreshTokenError,
    StoredRefresh,
    decide,
    new_refresh_token,
    parse_refresh_token,
    token_hash,
)
from identity.signing_keys import KeySet
from identity.tokens import mint_access_token


class AuthError(Exception):
    def __init__(
        self, status: int, code: str, message: str, *, retry_after_s: int | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after_s = retry_after_s


_BAD_CREDENTIALS = AuthError(401, "invalid_credentials", "unknown account or wrong secret")


@dataclass(frozen=True)
class Issued:
    access_token: str
    expires_in: int
    refresh_token: str | None = None
    refresh_expires_in: int | None = None

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {
            "accessToken": self.access_token,
            "tokenType": "Bearer",
            "expiresIn": self.expires_in,
        }
        if self.refresh_token is not None:
            body["refreshToken"] = self.refresh_token
            body["refreshExpiresIn"] = self.refresh_expires_in
        return body


class Throttle(Protocol):
    """Failed-login limits per account and per source (the gateway keeps them in Redis)."""

    async def blocked_for(self, tenant_id: str, user_id: str, source: str) -> int: ...

    async def failed(self, tenant_id: str, user_id: str, source: str) -> None: ...

    async def succeeded(self, tenant_id: str, user_id: str) -> None: ...


class Database(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[store.Conn]: ...


@dataclass(frozen=True)
class TokenSettings:
    issuer: str
    audience: str
    access_ttl_s: int


class AuthService:
    def __init__(
        self,
        db: Database,
        keyset: KeySet,
        keyring: Keyring,
        throttle: Throttle,
        tokens: TokenSettings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._db = db
        self._keyset = keyset
        self._keyring = keyring
        self._throttle = throttle
        self._tokens = tokens
        self._now = clock

    # --- login ------------------------------------------------------------------------

    async def login(
        self, tenant_id: str, user_id: str, password: str, code: str | None, source: str
    ) -> Issued:
        if not is_valid_id(tenant_id) or not is_valid_id(user_id):
            raise _BAD_CREDENTIALS
        account = await self._checked_secret(tenant_id, user_id, password, source)
        if account.role == Role.SENSOR:
            # A sensor is a service identity: client credentials, never a session.
            raise _BAD_CREDENTIALS
        if account.role in totp.REQUIRED_FOR:
            await self._check_totp(account, code, source)
        await self._throttle.succeeded(tenant_id, user_id)
        now = self._now()
        family_id = str(uuid.uuid4())
        refresh = new_refresh_token(tenant_id)
        async with self._tenant(tenant_id) as conn:
            await store.start_family(conn, tenant_id, family_id, user_id, now + LIFETIME)
            await self._store_refresh(conn, account, family_id, refresh, now)
            await store.write_audit(
                conn, tenant_id, "login", user_id=user_id, family_id=family_id, source=source
            )
        return self._issue(account, family_id, refresh)

    async def client_token(
        self, tenant_id: str, client_id: str, secret: str, source: str
    ) -> Issued:
        """An access token for a sensor (OAuth client credentials): no refresh token."""
        if not is_valid_id(tenant_id) or not is_valid_id(client_id):
            raise _BAD_CREDENTIALS
        account = await self._checked_secret(tenant_id, client_id, secret, source)
        if account.role != Role.SENSOR:
            raise _BAD_CREDENTIALS
        await self._throttle.succeeded(tenant_id, client_id)
        return self._issue(account, str(uuid.uuid4()), None)

    async def _checked_secret(
        self, tenant_id: str, user_id: str, secret: str, source: str
    ) -> store.Account:
        wait_s = await self._throttle.blocked_for(tenant_id, user_id, source)
        if wait_s > 0:
            raise AuthError(
                429,
                "too_many_attempts",
                "too many failed logins; retry later",
                retry_after_s=wait_s,
            )
        async with self._tenant(tenant_id) as conn:
            account = await store.get_account(conn, tenant_id, user_id)
        stored_hash = account.password_hash if account is not None else None
        ok = await verify_password_async(stored_hash, secret)
        if account is None or not ok or account.disabled:
            await self._throttle.failed(tenant_id, user_id, source)
            if account is not None:
                async with self._tenant(tenant_id) as conn:
                    await store.write_audit(
                        conn, tenant_id, "login_failed", user_id=user_id, source=source
                    )
            raise _BAD_CREDENTIALS
        return account

    async def _check_totp(self, account: store.Account, code: str | None, source: str) -> None:
        tenant_id, user_id = account.tenant_id, account.user_id
        if account.totp_secret_cipher is None:
            raise AuthError(401, "totp_not_enrolled", "this role needs a TOTP second factor")
        if not code:
            raise AuthError(401, "totp_required", "this role needs a TOTP code")
        secret = self._keyring.decrypt_field(tenant_id, "totp_secret", account.totp_secret_cipher)
        step = totp.matching_step(secret, code, self._now(), account.totp_last_step)
        claimed = False
        if step is not None:
            async with self._tenant(tenant_id) as conn:
                claimed = await store.claim_totp_step(conn, tenant_id, user_id, step)
        if not claimed:
            await self._throttle.failed(tenant_id, user_id, source)
            async with self._tenant(tenant_id) as conn:
                await store.write_audit(
                    conn, tenant_id, "totp_failed", user_id=user_id, source=source
                )
            raise AuthError(401, "invalid_totp", "the TOTP code is wrong, expired or used")

    # --- refresh and logout -----------------------------------------------------------

    async def refresh(self, presented: object, source: str) -> Issued:
        parsed = _parse(presented)
        tenant_id, now = parsed.tenant_id, self._now()
        refusal: AuthError | None = None
        issued: Issued | None = None
        async with self._tenant(tenant_id) as conn:
            row = await store.lock_refresh(conn, tenant_id, parsed.token_hash)
            if row is None:
                raise _refusal(RefreshTokenError("invalid_refresh_token", "unknown refresh token"))
            outcome = decide(
                StoredRefresh(
                    row.expires_at,
                    row.rotated_at,
                    row.successor_cipher is not None,
                    row.family_revoked,
                ),
                now,
            )
            account = await store.get_account(conn, tenant_id, row.user_id)
            if outcome is Outcome.REUSE:
                await store.revoke_family(conn, tenant_id, row.family_id, "refresh_reuse")
                await store.write_audit(
                    conn,
                    tenant_id,
                    "refresh_reuse",
                    user_id=row.user_id,
                    family_id=row.family_id,
                    source=source,
                )
                refusal = _refusal(REFUSALS[outcome])
            elif outcome in REFUSALS:
                refusal = _refusal(REFUSALS[outcome])
            elif account is None or account.disabled:
                await store.revoke_family(conn, tenant_id, row.family_id, "account_disabled")
                refusal = AuthError(401, "account_disabled", "the account no longer exists")
            elif outcome is Outcome.SAME_SUCCESSOR:
                assert row.successor_cipher is not None
                successor = self._open_successor(tenant_id, row.successor_cipher)
                issued = self._issue(account, row.family_id, successor)
            else:
                successor = new_refresh_token(tenant_id)
                await self._store_refresh(conn, account, row.family_id, successor, now)
                await store.mark_rotated(
                    conn,
                    tenant_id,
                    parsed.token_hash,
                    now,
                    self._keyring.encrypt_field(tenant_id, "refresh_successor", successor),
                )
                issued = self._issue(account, row.family_id, successor)
        # Raised after the transaction committed: a detected reuse must stay revoked.
        if refusal is not None:
            raise refusal
        assert issued is not None
        return issued

    async def logout(self, presented: object, source: str) -> None:
        """End the login the refresh token belongs to. Idempotent."""
        parsed = _parse(presented)
        tenant_id = parsed.tenant_id
        async with self._tenant(tenant_id) as conn:
            row = await store.lock_refresh(conn, tenant_id, parsed.token_hash)
            if row is not None and await store.revoke_family(
                conn, tenant_id, row.family_id, "logout"
            ):
                await store.write_audit(
                    conn,
                    tenant_id,
                    "logout",
                    user_id=row.user_id,
                    family_id=row.family_id,
                    source=source,
                )

    # --- helpers ----------------------------------------------------------------------

    def _tenant(self, tenant_id: str) -> AbstractAsyncContextManager[store.Conn]:
        return _scoped(self._db, tenant_id)

    async def _store_refresh(
        self, conn: store.Conn, account: store.Account, family_id: str, token: str, now: datetime
    ) -> None:
        await store.insert_refresh(
            conn,
            tenant_id=account.tenant_id,
            token_hash=token_hash(token),
            family_id=family_id,
            user_id=account.user_id,
            issued_at=now,
            expires_at=now + LIFETIME,
        )

    def _open_successor(self, tenant_id: str, cipher: bytes) -> str:
        try:
            return self._keyring.decrypt_field(tenant_id, "refresh_successor", cipher)
        except DecryptionError:
            raise AuthError(401, "invalid_refresh_token", "unknown refresh token") from None

    def _issue(self, account: store.Account, family_id: str, refresh: str | None) -> Issued:
        ttl = self._tokens.access_ttl_s
        access = mint_access_token(
            self._keyset,
            tenant_id=account.tenant_id,
            user_id=account.user_id,
            role=account.role,
            building_ids=account.building_ids,
            issuer=self._tokens.issuer,
            audience=self._tokens.audience,
            ttl_s=ttl,
            now=self._now(),
            session_id=family_id,
        )
        if refresh is None:
            return Issued(access, ttl)
        return Issued(access, ttl, refresh, int(LIFETIME.total_seconds()))


def _parse(presented: object) -> ParsedRefresh:
    try:
        return parse_refresh_token(presented)
    except RefreshTokenError as exc:
        raise _refusal(exc) from None


def _refusal(exc: RefreshTokenError) -> AuthError:
    return AuthError(401, exc.code, exc.message)


@asynccontextmanager
async def _scoped(db: Database, tenant_id: str) -> AsyncIterator[store.Conn]:
    async with db.transaction() as conn:
        await store.tenant_scope(conn, tenant_id)
        yield conn
