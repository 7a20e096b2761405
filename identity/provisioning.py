"""Creating accounts: humans with a password (and a TOTP seed for privileged roles),
sensors with a client secret. Used by `sbp users create` and by tests; the tenant
admin API will call the same function.
"""

from __future__ import annotations

from dataclasses import dataclass

from identity import account_store as store
from identity import totp
from identity.keyring import Keyring
from identity.passwords import hash_password_async
from identity.principal import Role, is_valid_id


class ProvisioningError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Provisioned:
    tenant_id: str
    user_id: str
    role: Role
    # Shown once, to be put in an authenticator app; stored only sealed.
    totp_secret: str | None


async def provision_account(
    conn: store.Conn,
    keyring: Keyring,
    *,
    tenant_id: str,
    user_id: str,
    role: Role | str,
    building_ids: list[str],
    password: str,
    email: str | None = None,
    display_name: str | None = None,
) -> Provisioned:
    """Create the account in `conn`'s transaction; raises ProvisioningError."""
    role = Role(role)
    if not is_valid_id(tenant_id) or not is_valid_id(user_id):
        raise ProvisioningError("invalid_id", "ids are 1 to 64 of [A-Za-z0-9_-]")
    bad = [b for b in building_ids if not is_valid_id(b)]
    if bad:
        raise ProvisioningError("invalid_id", f"invalid building ids {bad!r}")
    try:
        password_hash = await hash_password_async(password)
    except ValueError as exc:
        raise ProvisioningError("weak_password", str(exc)) from None
    secret = totp.new_secret() if role.value in totp.REQUIRED_FOR else None

    def seal(field: str, value: str | None) -> bytes | None:
        return None if value is None else keyring.encrypt_field(tenant_id, field, value)

    await store.tenant_scope(conn, tenant_id)
    created = await store.create_account(
        conn,
        tenant_id=tenant_id,
        user_id=user_id,
        role=role.value,
        building_ids=sorted(set(building_ids)),
        password_hash=password_hash,
        totp_secret_cipher=seal("totp_secret", secret),
        email_cipher=seal("email", email),
        display_name_cipher=seal("display_name", display_name),
    )
    if not created:
        raise ProvisioningError("user_exists", f"user {user_id!r} already exists")
    await store.write_audit(conn, tenant_id, "account_created", user_id=user_id)
    return Provisioned(tenant_id, user_id, role, secret)
