-- The zone registry the gateway checks votes against (tenant > building > floor > zone).
-- Seeded by `sbp dev seed`; the identity service will own it later.
CREATE TABLE sbp.zones (
    tenant_id    text NOT NULL,
    building_id  text NOT NULL,
    floor_id     text NOT NULL,
    zone_id      text NOT NULL,
    name         text NOT NULL,
    PRIMARY KEY (tenant_id, building_id, zone_id)
);
SELECT sbp.isolate_by_tenant('zones');
