-- One PostgreSQL schema per tenant (brief §4): a tenant's data tables live in its own
-- schema, created with the tenant, and every tenant migration
-- (sinks/timescale/tenant_migrations/) is applied to every tenant schema. `tenant_id`
-- and FORCEd RLS stay on each table as defense in depth.
--
-- The bookkeeping lives in `public`, like schema_migrations: only the owner may use
-- that schema, so no service role can read the list of tenants or rewrite a migration
-- body that the provisioning function executes as the owner.

-- Tenant migrations as the runner last read them from their files, role names
-- already substituted; `{{schema}}`, `{{schema_name}}` and `{{tenant}}` are left for
-- sbp.provision_tenant_schema, which fills them per tenant.
CREATE TABLE public.tenant_migrations (
    version   integer PRIMARY KEY,
    name      text    NOT NULL,
    checksum  text    NOT NULL,
    body      text    NOT NULL
);

CREATE TABLE public.tenant_schemas (
    tenant_id    text        PRIMARY KEY,
    schema_name  text        NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE public.tenant_schema_versions (
    schema_name  text        NOT NULL REFERENCES public.tenant_schemas (schema_name),
    version      integer     NOT NULL REFERENCES public.tenant_migrations (version),
    applied_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schema_name, version)
);

-- The provisioning function and the runner (both the owner) must see every tenant;
-- RLS is forced on the owner too, so it gets a read policy of its own, as the outbox
-- relay has. No other role gains anything from it.
CREATE POLICY provisioning_read ON sbp.tenants FOR SELECT TO CURRENT_USER USING (true);

-- A tenant's schema name. Tenant ids are 1-64 characters of [A-Za-z0-9_-] and a
-- PostgreSQL name holds 63 bytes, so ids of up to 61 characters map to `t_<id>`
-- (quoted: case and hyphens are kept) and longer ones to `h_<first 44>_<16 hex of
-- md5>`; the two prefixes cannot collide, and UNIQUE above refuses the rest.
CREATE FUNCTION sbp.tenant_schema_name(tenant text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT
AS $$
    SELECT CASE WHEN octet_length(tenant) <= 61 THEN 't_' || tenant
                ELSE 'h_' || left(tenant, 44) || '_' || left(md5(tenant), 16) END
$$;

-- RLS on a table of any schema (sbp.isolate_by_tenant is fixed to schema sbp).
CREATE FUNCTION sbp.isolate_table(schema_name text, tbl text) RETURNS void
LANGUAGE plpgsql
SET search_path = sbp, pg_temp
AS $$
BEGIN
    EXECUTE format('ALTER TABLE %I.%I ENABLE ROW LEVEL SECURITY', schema_name, tbl);
    EXECUTE format('ALTER TABLE %I.%I FORCE ROW LEVEL SECURITY', schema_name, tbl);
    EXECUTE format(
        'CREATE POLICY tenant_isolation ON %I.%I '
        'USING (tenant_id = current_setting(''app.tenant_id'', true)) '
        'WITH CHECK (tenant_id = current_setting(''app.tenant_id'', true))', schema_name, tbl);
END;
$$;
REVOKE ALL ON FUNCTION sbp.isolate_table(text, text) FROM PUBLIC;

-- The schema of a tenant whose schema exists, else NULL (the sink dead-letters votes
-- of a tenant that has none rather than stopping on a missing table).
CREATE FUNCTION sbp.tenant_schema(tenant text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = sbp, pg_temp
AS $$
    SELECT s.schema_name FROM public.tenant_schemas s WHERE s.tenant_id = tenant
$$;
REVOKE ALL ON FUNCTION sbp.tenant_schema(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sbp.tenant_schema(text) TO {{app_role}}, {{sink_role}};

-- Monthly partitions of a tenant's votes, created ahead. At most 24 months a call, so
-- a caller cannot make the database create tables without bound.
CREATE FUNCTION sbp.ensure_tenant_vote_partitions(tenant text, first_month date, months integer)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = sbp, pg_temp
AS $$
DECLARE
    s text;
    created integer := 0;
    m date;
    part text;
BEGIN
    IF months IS NULL OR months < 1 OR months > 24 THEN
        RAISE EXCEPTION 'months must be between 1 and 24, not %', months
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT ts.schema_name INTO s FROM public.tenant_schemas ts WHERE ts.tenant_id = tenant;
    IF s IS NULL THEN
        RAISE EXCEPTION 'tenant % has no schema', tenant USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Two sinks (during a rebalance) must not both create the same month.
    PERFORM pg_advisory_xact_lock(hashtext('vote-partitions:' || s));
    FOR i IN 0 .. months - 1 LOOP
        m := (date_trunc('month', first_month) + make_interval(months => i))::date;
        part := format('votes_%s', to_char(m, 'YYYYMM'));
        IF to_regclass(format('%I.%I', s, part)) IS NULL THEN
            -- Made ahead of the clock, so the default partition holds nothing for the
            -- month; if it does, the attach fails loudly instead of hiding rows.
            EXECUTE format('CREATE TABLE %I.%I (LIKE %I.votes INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                s, part, s);
            EXECUTE format('ALTER TABLE %I.votes ATTACH PARTITION %I.%I FOR VALUES FROM (%L) TO (%L)',
                s, s, part, m, (m + interval '1 month')::date);
            PERFORM sbp.isolate_table(s, part);
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END;
$$;
REVOKE ALL ON FUNCTION sbp.ensure_tenant_vote_partitions(text, date, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sbp.ensure_tenant_vote_partitions(text, date, integer)
    TO {{sink_role}};

-- Create a tenant's schema if it is missing and apply the tenant migrations it lacks,
-- in version order; returns how many were applied. The tenant service calls it in the
-- transaction that creates the tenant, the migration runner for every tenant after a
-- release adds a tenant migration. Runs as the owner, so the owner owns every object.
CREATE FUNCTION sbp.provision_tenant_schema(tenant text) RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = sbp, pg_temp
AS $$
DECLARE
    s text;
    m record;
    applied integer := 0;
BEGIN
    IF tenant IS NULL OR tenant !~ '^[A-Za-z0-9_-]{1,64}$' THEN
        RAISE EXCEPTION 'invalid tenant id' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM sbp.tenants t WHERE t.tenant_id = tenant) THEN
        RAISE EXCEPTION 'unknown tenant %', tenant USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('tenant-schema:' || tenant));
    s := sbp.tenant_schema_name(tenant);
    INSERT INTO public.tenant_schemas (tenant_id, schema_name) VALUES (tenant, s)
        ON CONFLICT (tenant_id) DO NOTHING;
    EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', s);
    FOR m IN
        SELECT tm.version, tm.body FROM public.tenant_migrations tm
        WHERE NOT EXISTS (SELECT 1 FROM public.tenant_schema_versions v
                          WHERE v.schema_name = s AND v.version = tm.version)
        ORDER BY tm.version
    LOOP
        EXECUTE replace(replace(replace(m.body,
            '{{schema}}', quote_ident(s)),
            '{{schema_name}}', quote_literal(s)),
            '{{tenant}}', quote_literal(tenant));
        INSERT INTO public.tenant_schema_versions (schema_name, version) VALUES (s, m.version);
        applied := applied + 1;
    END LOOP;
    RETURN applied;
END;
$$;
REVOKE ALL ON FUNCTION sbp.provision_tenant_schema(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sbp.provision_tenant_schema(text) TO {{admin_role}};

-- sbp.votes no longer takes votes: each tenant's go to its own schema, and tenant
-- migration 0001 moves a tenant's earlier rows there.
REVOKE INSERT ON sbp.votes FROM {{sink_role}};
REVOKE EXECUTE ON FUNCTION sbp.ensure_vote_partitions(date, integer)
    FROM {{sink_role}}, {{app_role}};
