-- One login role per service, each granted only the statements its code runs, so a
-- compromised service reaches only its own tables (brief §4). The roles are created
-- by provisioning (sinks/timescale/provision.py): not superusers, no BYPASSRLS,
-- owning nothing. RLS confines every one of them to the tenant it names.

-- The gateway: zone lookups (a fallback to its config copy), login, refresh and
-- logout, the auth audit, and the hourly purge of expired logins.
GRANT USAGE ON SCHEMA sbp TO {{gateway_role}};
GRANT SELECT ON sbp.zones TO {{gateway_role}};
GRANT SELECT ON sbp.users TO {{gateway_role}};
GRANT UPDATE (totp_last_step) ON sbp.users TO {{gateway_role}};
GRANT SELECT, INSERT, UPDATE ON sbp.refresh_families TO {{gateway_role}};
GRANT SELECT, INSERT, UPDATE ON sbp.refresh_tokens TO {{gateway_role}};
GRANT SELECT, INSERT ON sbp.auth_audit TO {{gateway_role}};
GRANT EXECUTE ON FUNCTION sbp.purge_expired_auth() TO {{gateway_role}};

-- The tenant service: the tenancy tables, accounts it creates, its outbox and relay.
GRANT USAGE ON SCHEMA sbp TO {{admin_role}};
GRANT SELECT, INSERT, DELETE ON sbp.tenants, sbp.buildings, sbp.floors, sbp.zones
    TO {{admin_role}};
GRANT SELECT, INSERT, UPDATE ON sbp.tenant_settings TO {{admin_role}};
GRANT SELECT, INSERT ON sbp.users TO {{admin_role}};
GRANT INSERT ON sbp.auth_audit TO {{admin_role}};
GRANT INSERT ON sbp.outbox TO {{admin_role}};
GRANT EXECUTE ON FUNCTION sbp.outbox_take(integer), sbp.outbox_done(bigint[])
    TO {{admin_role}};

-- The registry: its own schema only, as 0002 granted to the application role.
GRANT USAGE ON SCHEMA registry TO {{registry_role}};
GRANT SELECT, INSERT ON registry.schemas TO {{registry_role}};
GRANT SELECT, INSERT, DELETE ON registry.subject_versions TO {{registry_role}};
GRANT UPDATE (deleted, updated_at) ON registry.subject_versions TO {{registry_role}};
GRANT SELECT, INSERT, UPDATE, DELETE ON registry.config TO {{registry_role}};
GRANT USAGE ON ALL SEQUENCES IN SCHEMA registry TO {{registry_role}};

-- The vote sink: inserts votes (never reads, changes or removes one) and creates the
-- monthly partitions ahead.
GRANT USAGE ON SCHEMA sbp TO {{sink_role}};
GRANT INSERT ON sbp.votes TO {{sink_role}};
GRANT EXECUTE ON FUNCTION sbp.ensure_vote_partitions(date, integer) TO {{sink_role}};

-- Only the tenant service may drive the outbox; the tooling role keeps the purge.
REVOKE EXECUTE ON FUNCTION sbp.outbox_take(integer), sbp.outbox_done(bigint[])
    FROM {{app_role}};
