-- The re-drive ledger: which dead letters `sbp replay dlq reprocess --execute` has
-- re-driven, so a second reprocess re-drives none of them again (replay/redrive_ledger.py).
--
-- A row is a run of one votes.dlq partition: every letter from first_offset to
-- last_offset (inclusive) was re-driven, and its delivery confirmed, by the reprocess
-- whose operator-log row carries the same redrive_id in its detail (an offset of the
-- range that holds no letter is claimed harmlessly). Runs, not one row per letter: a
-- reprocess of a whole partition is one row however many letters it held.
-- Written in the transaction of that operator-log row, so the two never disagree.
--
-- Append-only like the operator log: the replay role may read it (it must, to skip
-- what is done) and add to it, never change or remove a row.

CREATE TABLE ops.dlq_redrive (
    redrive_id    uuid        NOT NULL,
    at            timestamptz NOT NULL DEFAULT now(),
    dlq_topic     text        NOT NULL,
    dlq_partition integer     NOT NULL CHECK (dlq_partition >= 0),
    first_offset  bigint      NOT NULL CHECK (first_offset >= 0),
    last_offset   bigint      NOT NULL CHECK (last_offset >= first_offset),
    PRIMARY KEY (dlq_topic, dlq_partition, first_offset)
);

-- Its own function: 0008's names the operator log in its message.
CREATE FUNCTION ops.refuse_ledger_change() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'ops.dlq_redrive is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
REVOKE ALL ON FUNCTION ops.refuse_ledger_change() FROM PUBLIC;

CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON ops.dlq_redrive
    FOR EACH ROW EXECUTE FUNCTION ops.refuse_ledger_change();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON ops.dlq_redrive
    FOR EACH STATEMENT EXECUTE FUNCTION ops.refuse_ledger_change();

GRANT SELECT, INSERT ON ops.dlq_redrive TO {{replay_role}};
GRANT SELECT ON ops.dlq_redrive TO {{app_role}};
