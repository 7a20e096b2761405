-- Tenants, buildings, floors and per-tenant settings (PostgreSQL is the source of
-- truth), and the transactional outbox through which every change reaches the
-- compacted config.* topics (brief §9.6: written once, so the two never diverge).

CREATE TABLE sbp.tenants (
    tenant_id   text        NOT NULL PRIMARY KEY,
    name        text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
SELECT sbp.isolate_by_tenant('tenants');

CREATE TABLE sbp.buildings (
    tenant_id    text NOT NULL,
    building_id  text NOT NULL,
    name         text NOT NULL,
    PRIMARY KEY (tenant_id, building_id)
);
SELECT sbp.isolate_by_tenant('buildings');

CREATE TABLE sbp.floors (
    tenant_id    text NOT NULL,
    building_id  text NOT NULL,
    floor_id     text NOT NULL,
    name         text NOT NULL,
    PRIMARY KEY (tenant_id, building_id, floor_id),
    FOREIGN KEY (tenant_id, building_id) REFERENCES sbp.buildings ON DELETE CASCADE
);
SELECT sbp.isolate_by_tenant('floors');

-- Zones written before this migration have no floor rows; the constraint holds for
-- every zone written from now on (a migration cannot see tenant rows to back-fill
-- them: RLS is forced on the owner too).
ALTER TABLE sbp.zones ADD CONSTRAINT zones_floor_fk
    FOREIGN KEY (tenant_id, building_id, floor_id) REFERENCES sbp.floors
    ON DELETE CASCADE NOT VALID;

-- Versioned per-tenant settings; `settings` is validated by admin/tenant_settings.py.
CREATE TABLE sbp.tenant_settings (
    tenant_id   text        NOT NULL PRIMARY KEY,
    version     integer     NOT NULL CHECK (version >= 1),
    settings    jsonb       NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
SELECT sbp.isolate_by_tenant('tenant_settings');

-- A change's row and its outbox row commit together; the relay publishes outbox rows
-- in id order and deletes them once Kafka has them (at least once: config records are
-- whole states keyed by id, so a repeat is harmless). `payload` NULL is a tombstone.
CREATE TABLE sbp.outbox (
    outbox_id   bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   text        NOT NULL,
    topic       text        NOT NULL,
    record_key  text        NOT NULL,
    payload     jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);
SELECT sbp.isolate_by_tenant('outbox');
-- The services may add outbox rows, never read, change or remove them.
REVOKE SELECT, UPDATE, DELETE, TRUNCATE ON sbp.outbox FROM {{app_role}};

-- The relay reads and removes rows of every tenant through these two functions only.
CREATE POLICY relay_read ON sbp.outbox FOR SELECT TO CURRENT_USER USING (true);
CREATE POLICY relay_lock ON sbp.outbox FOR UPDATE TO CURRENT_USER USING (true);
CREATE POLICY relay_delete ON sbp.outbox FOR DELETE TO CURRENT_USER USING (true);

CREATE FUNCTION sbp.outbox_take(max_rows integer)
RETURNS TABLE (outbox_id bigint, topic text, record_key text, payload jsonb)
LANGUAGE sql
SECURITY DEFINER
SET search_path = sbp, pg_temp
AS $$
    -- Locked until the caller's transaction ends, so a second relay skips them.
    SELECT o.outbox_id, o.topic, o.record_key, o.payload
    FROM sbp.outbox o
    ORDER BY o.outbox_id
    LIMIT least(max_rows, 1000)
    FOR UPDATE SKIP LOCKED;
$$;
REVOKE ALL ON FUNCTION sbp.outbox_take(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sbp.outbox_take(integer) TO {{app_role}};

CREATE FUNCTION sbp.outbox_done(ids bigint[])
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = sbp, pg_temp
AS $$
DECLARE
    n integer;
BEGIN
    DELETE FROM sbp.outbox WHERE outbox_id = ANY(ids);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;
REVOKE ALL ON FUNCTION sbp.outbox_done(bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sbp.outbox_done(bigint[]) TO {{app_role}};
