-- Identity (brief §4): accounts, refresh-token families and the auth audit.
-- Every table carries tenant_id under FORCEd RLS like the rest of schema sbp.

CREATE TABLE sbp.users (
    tenant_id           text        NOT NULL,
    user_id             text        NOT NULL,
    role                text        NOT NULL CHECK (role IN
                            ('occupant', 'fm', 'tenant_admin', 'platform_admin', 'sensor', 'operator')),
    building_ids        text[]      NOT NULL DEFAULT '{}',
    -- argon2id PHC string; for a sensor, its client secret's hash.
    password_hash       text        NOT NULL,
    -- The TOTP seed, sealed by the keyring (never stored in clear), and the last
    -- 30-second step a code was accepted for: a code is single-use because a login
    -- must present a later step than this one.
    totp_secret_cipher  bytea,
    totp_last_step      bigint      NOT NULL DEFAULT 0,
    -- Personal fields, sealed by the keyring.
    email_cipher        bytea,
    display_name_cipher bytea,
    disabled            boolean     NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id)
);
SELECT sbp.isolate_by_tenant('users');

-- One family per login; every refresh token of a login belongs to it, and so does
-- each access token (its `sid`). Revoking the family ends the login.
CREATE TABLE sbp.refresh_families (
    tenant_id       text        NOT NULL,
    family_id       text        NOT NULL,
    user_id         text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- Moved forward at each rotation; the purge drops the family after it.
    expires_at      timestamptz NOT NULL,
    revoked_at      timestamptz,
    revoked_reason  text,
    PRIMARY KEY (tenant_id, family_id)
);
SELECT sbp.isolate_by_tenant('refresh_families');

CREATE TABLE sbp.refresh_tokens (
    tenant_id        text        NOT NULL,
    -- SHA-256 of the token: a database read never yields a usable token.
    token_hash       bytea       NOT NULL,
    family_id        text        NOT NULL,
    user_id          text        NOT NULL,
    issued_at        timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    rotated_at       timestamptz,
    -- The successor, sealed by the keyring, so a retry within the grace gets the
    -- same one back; cleared once the grace is over.
    successor_cipher bytea,
    PRIMARY KEY (tenant_id, token_hash),
    FOREIGN KEY (tenant_id, family_id) REFERENCES sbp.refresh_families (tenant_id, family_id)
        ON DELETE CASCADE
);
SELECT sbp.isolate_by_tenant('refresh_tokens');
CREATE INDEX refresh_tokens_family ON sbp.refresh_tokens (tenant_id, family_id);

-- Append-only: the services may add rows and read them, never change or remove one.
CREATE TABLE sbp.auth_audit (
    tenant_id  text        NOT NULL,
    audit_id   bigint      GENERATED ALWAYS AS IDENTITY,
    at         timestamptz NOT NULL DEFAULT now(),
    event      text        NOT NULL,
    user_id    text,
    family_id  text,
    source     text,
    detail     jsonb       NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant_id, audit_id)
);
SELECT sbp.isolate_by_tenant('auth_audit');
REVOKE UPDATE, DELETE, TRUNCATE ON sbp.auth_audit FROM {{app_role}};

-- Expired rows of every tenant are removed by the owner through purge_expired_auth
-- only: these policies let the owner see and delete rows that have expired, and
-- nothing else, while the tenant policy still confines every other statement. (A
-- DELETE with a WHERE clause must pass a SELECT policy as well as a DELETE one.)
CREATE POLICY purge_read ON sbp.refresh_families FOR SELECT TO CURRENT_USER
    USING (expires_at < now() OR revoked_at < now() - interval '1 day');
CREATE POLICY purge_expired ON sbp.refresh_families FOR DELETE TO CURRENT_USER
    USING (expires_at < now() OR revoked_at < now() - interval '1 day');
CREATE POLICY purge_read ON sbp.auth_audit FOR SELECT TO CURRENT_USER
    USING (at < now() - interval '400 days');
CREATE POLICY purge_expired ON sbp.auth_audit FOR DELETE TO CURRENT_USER
    USING (at < now() - interval '400 days');
CREATE POLICY purge_read ON sbp.refresh_tokens FOR SELECT TO CURRENT_USER
    USING (expires_at < now());
CREATE POLICY purge_expired ON sbp.refresh_tokens FOR DELETE TO CURRENT_USER
    USING (expires_at < now());

CREATE FUNCTION sbp.purge_expired_auth() RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = sbp, pg_temp
AS $$
DECLARE
    removed integer := 0;
    n integer;
BEGIN
    DELETE FROM sbp.refresh_tokens WHERE expires_at < now();
    GET DIAGNOSTICS n = ROW_COUNT;
    removed := removed + n;
    DELETE FROM sbp.refresh_families
        WHERE expires_at < now() OR revoked_at < now() - interval '1 day';
    GET DIAGNOSTICS n = ROW_COUNT;
    removed := removed + n;
    DELETE FROM sbp.auth_audit WHERE at < now() - interval '400 days';
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN removed + n;
END;
$$;
REVOKE ALL ON FUNCTION sbp.purge_expired_auth() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sbp.purge_expired_auth() TO {{app_role}};
