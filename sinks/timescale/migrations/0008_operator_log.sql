-- The operator log (brief §10): who changed a consumer group's offsets, what, and
-- when. `sbp replay offsets reset --execute` writes one row per applied reset, in the
-- same transaction that brackets the change (replay/operator_log.py).
--
-- Its own schema, outside sbp: a reset moves every tenant's records at once, so the
-- log belongs to the platform, not to a tenant, and no tenant RLS applies. The
-- operator's own tenant and user come from the verified token.
--
-- Append-only, twice over: the replay role may only INSERT (no SELECT, UPDATE or
-- DELETE), the tooling role only SELECT, and a trigger refuses UPDATE, DELETE and
-- TRUNCATE to everyone, the owner included, so a row can only go with the table.

CREATE SCHEMA ops;

CREATE TABLE ops.operator_log (
    log_id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT now(),
    -- Who: the access token's tenantId, userId (= sub) and jti.
    tenant_id       text        NOT NULL,
    user_id         text        NOT NULL,
    token_id        text        NOT NULL,
    -- What: the RBAC action, e.g. replay.offsets.reset, and where it acted.
    action          text        NOT NULL,
    consumer_group  text        NOT NULL,
    topic           text        NOT NULL,
    -- The request and the plan applied (partition, current, target, delta), as JSON.
    detail          jsonb       NOT NULL
);
CREATE INDEX operator_log_group_at ON ops.operator_log (consumer_group, at);

CREATE FUNCTION ops.refuse_change() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'ops.operator_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
REVOKE ALL ON FUNCTION ops.refuse_change() FROM PUBLIC;

CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON ops.operator_log
    FOR EACH ROW EXECUTE FUNCTION ops.refuse_change();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON ops.operator_log
    FOR EACH STATEMENT EXECUTE FUNCTION ops.refuse_change();

-- The replay CLI writes; it never reads the log back, so it cannot use it to probe.
GRANT USAGE ON SCHEMA ops TO {{replay_role}};
GRANT INSERT ON ops.operator_log TO {{replay_role}};
-- Tooling and tests read it (who reset what), never write it.
GRANT USAGE ON SCHEMA ops TO {{app_role}};
GRANT SELECT ON ops.operator_log TO {{app_role}};
