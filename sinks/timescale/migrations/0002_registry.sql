-- Storage of the Config/Schema Registry service (registry/): schemas, the versions
-- of each subject, and compatibility levels. Runs as the owner role; the
-- registry connects as the application role, which may add schemas but never
-- change or remove one, so an id, once handed out, means the same schema forever.

CREATE SCHEMA registry;
GRANT USAGE ON SCHEMA registry TO {{app_role}};

-- One row per distinct schema. Identity is the sha-256 of the registry's
-- normalized form (Avro Parsing Canonical Form plus the attributes that form
-- drops but schema resolution reads: defaults, aliases, logical types); the
-- digest, not the text, carries the unique index, because a b-tree entry is
-- limited to about 2.7 kB and real schemas are longer.
CREATE TABLE registry.schemas (
    id              integer     GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    guid            uuid        NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    schema_type     text        NOT NULL DEFAULT 'AVRO' CHECK (schema_type = 'AVRO'),
    fingerprint     bytea       NOT NULL CHECK (octet_length(fingerprint) = 32),
    canonical_form  text        NOT NULL,
    normalized_form text        NOT NULL,
    -- Returned to clients as first registered, documentation and all.
    schema_text     text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (schema_type, fingerprint)
);

-- Version numbers are dense per subject and never reused while the row exists;
-- a soft delete only flags the row, a permanent delete removes it.
CREATE TABLE registry.subject_versions (
    subject    text        NOT NULL CHECK (subject <> '' AND length(subject) <= 255),
    version    integer     NOT NULL CHECK (version > 0),
    schema_id  integer     NOT NULL REFERENCES registry.schemas (id),
    deleted    boolean     NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subject, version)
);

-- A schema is live at most once per subject: re-registering it must return the
-- existing version, and this index makes a racing duplicate fail instead.
CREATE UNIQUE INDEX subject_versions_live_schema
    ON registry.subject_versions (subject, schema_id) WHERE NOT deleted;
CREATE INDEX subject_versions_by_schema ON registry.subject_versions (schema_id);

-- Compatibility levels. The empty subject holds the global level (no URL can
-- name an empty subject, and subject_versions refuses one); no row means the
-- default, BACKWARD.
CREATE TABLE registry.config (
    subject       text        PRIMARY KEY CHECK (length(subject) <= 255),
    compatibility text        NOT NULL CHECK (compatibility IN (
                      'NONE', 'BACKWARD', 'BACKWARD_TRANSITIVE', 'FORWARD',
                      'FORWARD_TRANSITIVE', 'FULL', 'FULL_TRANSITIVE')),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

GRANT SELECT, INSERT ON registry.schemas TO {{app_role}};
GRANT SELECT, INSERT, DELETE ON registry.subject_versions TO {{app_role}};
GRANT UPDATE (deleted, updated_at) ON registry.subject_versions TO {{app_role}};
GRANT SELECT, INSERT, UPDATE, DELETE ON registry.config TO {{app_role}};
GRANT USAGE ON ALL SEQUENCES IN SCHEMA registry TO {{app_role}};
