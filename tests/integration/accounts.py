"""Accounts for the integration tests, created the way `sbp users create` does."""

from __future__ import annotations

import asyncio

import psycopg

from identity.keyring import LocalKeyring
from identity.provisioning import Provisioned, provision_account
from sbp.settings import Settings

PASSWORD = "correct horse battery staple"


def create_account(
    settings: Settings,
    tenant_id: str,
    user_id: str,
    role: str,
    buildings: list[str],
    password: str = PASSWORD,
) -> Provisioned:
    async def create() -> Provisioned:
        conn = await psycopg.AsyncConnection.connect(settings.pg_dsn("admin"))
        async with conn, conn.transaction():
            return await provision_account(
                conn,
                LocalKeyring.load_or_create(settings.keys_dir),
                tenant_id=tenant_id,
                user_id=user_id,
                role=role,
                building_ids=buildings,
                password=password,
            )

    return asyncio.run(create())
