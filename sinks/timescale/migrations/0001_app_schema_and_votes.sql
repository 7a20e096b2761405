-- The application schema, the application role's access to it, and the votes table.
-- Runs as the owner role: the owner owns every object, the application role only
-- gets DML through grants and can never alter a table or turn RLS off.

CREATE SCHEMA IF NOT EXISTS sbp;
GRANT USAGE ON SCHEMA sbp TO {{app_role}};
ALTER DEFAULT PRIVILEGES IN SCHEMA sbp
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {{app_role}};
ALTER DEFAULT PRIVILEGES IN SCHEMA sbp
    GRANT USAGE, SELECT ON SEQUENCES TO {{app_role}};

-- One row per accepted vote. The primary key must include the partitioning column;
-- that is safe because a re-emitted vote keeps its client_ts.
CREATE TABLE sbp.votes (
    tenant_id        text        NOT NULL,
    vote_uuid        uuid        NOT NULL,
    building_id      text        NOT NULL,
    zone_id          text        NOT NULL,
    kind             text        NOT NULL CHECK (kind IN ('thermal', 'air', 'noise', 'light')),
    value            smallint    NOT NULL CHECK (value BETWEEN -3 AND 5),
    preference       text        CHECK (preference IN ('warmer', 'no_change', 'cooler')),
    user_ref         text        NOT NULL,
    client_ts        timestamptz NOT NULL,
    received_at      timestamptz NOT NULL,
    late             boolean     NOT NULL,
    device_id        text,
    app_version      text,
    comment_cipher   bytea,
    schema_version   smallint    NOT NULL,
    PRIMARY KEY (tenant_id, vote_uuid, client_ts)
) PARTITION BY RANGE (client_ts);

-- Monthly partitions are created ahead by sbp.ensure_vote_partitions (the sink calls
-- it at start); the default partition keeps a vote from being refused meanwhile.
CREATE TABLE sbp.votes_default PARTITION OF sbp.votes DEFAULT;

-- Row-level security on a table of schema sbp, forced so even the owner obeys it.
-- Partitions get it too: a partition queried by name does not inherit the parent's.
CREATE FUNCTION sbp.isolate_by_tenant(tbl text) RETURNS void
LANGUAGE plpgsql
SET search_path = sbp, pg_temp
AS $$
BEGIN
    EXECUTE format('ALTER TABLE sbp.%I ENABLE ROW LEVEL SECURITY', tbl);
    EXECUTE format('ALTER TABLE sbp.%I FORCE ROW LEVEL SECURITY', tbl);
    EXECUTE format(
        'CREATE POLICY tenant_isolation ON sbp.%I '
        'USING (tenant_id = current_setting(''app.tenant_id'', true)) '
        'WITH CHECK (tenant_id = current_setting(''app.tenant_id'', true))', tbl);
END;
$$;
REVOKE ALL ON FUNCTION sbp.isolate_by_tenant(text) FROM PUBLIC;

CREATE FUNCTION sbp.ensure_vote_partitions(first_month date, months integer)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = sbp, pg_temp
AS $$
DECLARE
    created integer := 0;
    m date;
    part text;
BEGIN
    FOR i IN 0 .. months - 1 LOOP
        m := (date_trunc('month', first_month) + make_interval(months => i))::date;
        part := format('votes_%s', to_char(m, 'YYYYMM'));
        IF to_regclass('sbp.' || part) IS NULL THEN
            -- Partitions are made months ahead of the clock, so the default partition
            -- should hold nothing for this month; if it does, the attach fails loudly
            -- rather than this function moving rows it cannot see under RLS.
            EXECUTE format('CREATE TABLE sbp.%I (LIKE sbp.votes INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
            EXECUTE format('ALTER TABLE sbp.votes ATTACH PARTITION sbp.%I FOR VALUES FROM (%L) TO (%L)',
                part, m, (m + interval '1 month')::date);
            PERFORM sbp.isolate_by_tenant(part);
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END;
$$;
REVOKE ALL ON FUNCTION sbp.ensure_vote_partitions(date, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sbp.ensure_vote_partitions(date, integer) TO {{app_role}};

CREATE INDEX votes_zone_time ON sbp.votes (tenant_id, building_id, zone_id, client_ts);

-- Defense in depth: every query sees only the tenant its transaction set.
SELECT sbp.isolate_by_tenant('votes');
SELECT sbp.isolate_by_tenant('votes_default');
