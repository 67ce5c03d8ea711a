//! The PostgreSQL journal's schema, checked and migrated in place: the
//! SQLite journal's tables (`../sqlite/schema.rs`, version 7) as one
//! first version, and what several nodes share beside them: the nodes
//! themselves, and each message's and delivery's claim (the node run that
//! holds it). Migrations run in one transaction under an advisory lock, so
//! nodes starting together migrate once.

use postgres::Client;

use crate::journal::JournalError;

/// The schema version this runtime writes.
pub const SCHEMA_VERSION: i64 = 4;

/// The advisory lock every migration holds (any constant; "weft" in hex).
const MIGRATION_LOCK: i64 = 0x7765_6674;

pub(super) fn open_error(location: &str, reason: impl std::fmt::Display) -> JournalError {
    JournalError::Open {
        path: location.to_string(),
        reason: reason.to_string(),
    }
}

/// The version the database holds: 0 for a new one.
pub(super) fn version(client: &mut Client) -> Result<i64, postgres::Error> {
    let has_meta: bool = client
        .query_one("SELECT to_regclass('weft_meta') IS NOT NULL", &[])?
        .get(0);
    if !has_meta {
        return Ok(0);
    }
    Ok(client
        .query_opt(
            "SELECT value FROM weft_meta WHERE key = 'schema_version'",
            &[],
        )?
        .and_then(|r| r.get::<_, String>(0).parse().ok())
        .unwrap_or(0))
}

/// Brings the schema to [`SCHEMA_VERSION`]; a newer one is an error.
pub(super) fn migrate(client: &mut Client, location: &str) -> Result<(), JournalError> {
    let err = |e: postgres::Error| open_error(location, e);
    let mut tx = client.transaction().map_err(err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(err)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS weft_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
    )
    .map_err(err)?;
    let version: i64 = tx
        .query_opt(
            "SELECT value FROM weft_meta WHERE key = 'schema_version'",
            &[],
        )
        .map_err(err)?
        .and_then(|r| r.get::<_, String>(0).parse().ok())
        .unwrap_or(0);
    if version > SCHEMA_VERSION {
        return Err(open_error(
            location,
            format!(
                "schema version {version} is newer than this runtime's ({SCHEMA_VERSION}); upgrade weft"
            ),
        ));
    }
    if version < 1 {
        tx.batch_execute(V1).map_err(err)?;
    }
    if version < 2 {
        tx.batch_execute(V2).map_err(err)?;
    }
    // Version 3: no table changes. Values may be sealed and identifiers
    // hashed (`journal::sealed`): a node of version 2 would hand
    // ciphertext on, so it must refuse this database.
    if version < 4 {
        tx.batch_execute(V4).map_err(err)?;
    }
    tx.execute(
        "INSERT INTO weft_meta (key, value) VALUES ('schema_version', $1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&SCHEMA_VERSION.to_string()],
    )
    .map_err(err)?;
    tx.commit().map_err(err)
}

/// Version 1. Times are ms since the epoch (`BIGINT`), as in SQLite.
/// `claimed_by` names a node run (`nodes.run`): a claim holds until that
/// run's `lease_until`, which each heartbeat moves on, or until it stops.
pub(super) const V1: &str = "
CREATE SEQUENCE message_seq;
CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    source TEXT NOT NULL,
    remote TEXT,
    peer_subject TEXT,
    received_at BIGINT NOT NULL,
    content_type TEXT NOT NULL,
    body BYTEA NOT NULL,
    message_type TEXT NOT NULL,
    control_id TEXT NOT NULL,
    sending_application TEXT NOT NULL,
    sending_facility TEXT NOT NULL,
    route TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    plugin_versions TEXT,
    run INTEGER NOT NULL DEFAULT 1,
    claimed_by TEXT
);
CREATE INDEX messages_received ON messages (received_at);
CREATE INDEX messages_status ON messages (status, received_at);
CREATE INDEX messages_control ON messages (sending_application, sending_facility, control_id, received_at);
CREATE INDEX messages_seq ON messages (seq);
CREATE TABLE deliveries (
    id BIGSERIAL PRIMARY KEY,
    message_id TEXT NOT NULL REFERENCES messages (id),
    destination TEXT NOT NULL,
    n INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    body BYTEA NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    delivered_at BIGINT,
    ordering_key TEXT,
    message_seq BIGINT NOT NULL,
    run INTEGER NOT NULL DEFAULT 1,
    claimed_by TEXT
);
CREATE INDEX deliveries_due ON deliveries (destination, state, next_attempt_at);
CREATE INDEX deliveries_message ON deliveries (message_id);
CREATE INDEX deliveries_key_seq ON deliveries (destination, ordering_key, state, message_seq);
CREATE TABLE order_holds (
    message_id TEXT NOT NULL,
    message_seq BIGINT NOT NULL,
    destination TEXT NOT NULL,
    ordering_key TEXT NOT NULL
);
CREATE INDEX order_holds_key ON order_holds (destination, ordering_key, message_seq);
CREATE INDEX order_holds_message ON order_holds (message_id);
CREATE TABLE patient_ids (message_id TEXT NOT NULL, id TEXT NOT NULL);
CREATE INDEX patient_ids_id ON patient_ids (id, message_id);
CREATE INDEX patient_ids_message ON patient_ids (message_id);
CREATE TABLE outcomes (
    message_id TEXT NOT NULL,
    run INTEGER NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    plugin_versions TEXT,
    replaced_at BIGINT NOT NULL,
    PRIMARY KEY (message_id, run)
);
CREATE TABLE reprocess (
    message_id TEXT PRIMARY KEY,
    requested_at BIGINT NOT NULL
);
CREATE TABLE audit (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    who TEXT NOT NULL,
    via TEXT NOT NULL,
    action TEXT NOT NULL,
    messages TEXT NOT NULL,
    remote TEXT NOT NULL,
    result TEXT NOT NULL,
    prev TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_at ON audit (at);
CREATE INDEX audit_who ON audit (who, seq);
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'audit entries are append-only'; END $$;
CREATE TRIGGER audit_append_only BEFORE UPDATE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TABLE nodes (
    run TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    lease_until BIGINT NOT NULL,
    version TEXT NOT NULL,
    plugins TEXT NOT NULL DEFAULT '[]',
    stopped_at BIGINT
);
CREATE INDEX nodes_name ON nodes (name, heartbeat_at);
";

/// Version 2: the claims each node run holds, found without reading every
/// message (`weft nodes`). Partial: a claim is cleared as its work is done.
pub(super) const V2: &str = "
CREATE INDEX messages_claimed ON messages (claimed_by) WHERE claimed_by IS NOT NULL;
CREATE INDEX deliveries_claimed ON deliveries (claimed_by) WHERE claimed_by IS NOT NULL;
";

/// Version 4: an integer key on each table whose values a key rotation
/// seals again and that had none (`sealing.rs` walks every sealed column
/// in key order, a step at a time, and replaces a value only if it is
/// still the one it read). Rows already there are numbered as the column
/// is added.
const V4: &str = "
ALTER TABLE patient_ids ADD COLUMN rid BIGINT GENERATED ALWAYS AS IDENTITY;
CREATE UNIQUE INDEX patient_ids_rid ON patient_ids (rid);
ALTER TABLE order_holds ADD COLUMN rid BIGINT GENERATED ALWAYS AS IDENTITY;
CREATE UNIQUE INDEX order_holds_rid ON order_holds (rid);
ALTER TABLE outcomes ADD COLUMN rid BIGINT GENERATED ALWAYS AS IDENTITY;
CREATE UNIQUE INDEX outcomes_rid ON outcomes (rid);
";
