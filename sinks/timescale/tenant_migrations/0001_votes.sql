-- A tenant's votes: one row per accepted vote, in the tenant's own schema.
-- Applied per tenant by sbp.provision_tenant_schema (migration 0007), as the owner:
-- `{{schema}}` is the schema (an identifier), `{{schema_name}}` the same as a string,
-- `{{tenant}}` the tenant id as a string.

GRANT USAGE ON SCHEMA {{schema}} TO {{app_role}}, {{sink_role}};

-- The primary key must include the partitioning column; that is safe because a
-- re-emitted vote keeps its client_ts. The CHECK and the RLS policy both confine the
-- table to its tenant, should a row ever be routed to the wrong schema.
CREATE TABLE {{schema}}.votes (
    tenant_id        text        NOT NULL CHECK (tenant_id = {{tenant}}),
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

-- Keeps a vote from being refused while its month has no partition yet; the sink
-- creates months ahead, so this stays empty for current months.
CREATE TABLE {{schema}}.votes_default PARTITION OF {{schema}}.votes DEFAULT;
CREATE INDEX votes_zone_time ON {{schema}}.votes (building_id, zone_id, client_ts);

SELECT sbp.isolate_table({{schema_name}}, 'votes');
SELECT sbp.isolate_table({{schema_name}}, 'votes_default');

-- The sink inserts (never reads, changes or removes); the tooling role does all DML.
GRANT INSERT ON {{schema}}.votes TO {{sink_role}};
GRANT SELECT, INSERT, UPDATE, DELETE ON {{schema}}.votes TO {{app_role}};

-- Last month to two months ahead; the sink keeps creating months ahead as it writes.
SELECT sbp.ensure_tenant_vote_partitions(
    {{tenant}}, (date_trunc('month', now()) - interval '1 month')::date, 4);

-- Votes the tenant had in the shared table before per-tenant schemas move here (RLS is
-- forced on the owner too, hence the setting; it is local to this transaction).
SELECT set_config('app.tenant_id', {{tenant}}, true);
WITH moved AS (
    DELETE FROM sbp.votes WHERE tenant_id = {{tenant}}
    RETURNING tenant_id, vote_uuid, building_id, zone_id, kind, value, preference, user_ref,
              client_ts, received_at, late, device_id, app_version, comment_cipher,
              schema_version
)
INSERT INTO {{schema}}.votes
SELECT * FROM moved
ON CONFLICT DO NOTHING;
