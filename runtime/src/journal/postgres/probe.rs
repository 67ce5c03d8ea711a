//! What `weft check` asks a PostgreSQL journal before any node uses it:
//! can the server be reached and logged into, which schema it holds, and
//! whether this node's name is already running. Nothing is written.

use super::schema::{self, SCHEMA_VERSION};
use super::{SERVER_NOW, Server, conn};
use crate::journal::JournalError;

/// What the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// `server_version`, as the server says it (`17.2 (Debian 17.2-1)`).
    pub server_version: String,
    /// Whether the session went over TLS.
    pub tls: bool,
    /// The schema version the database holds: 0 for an empty one.
    pub schema: i64,
    /// For an empty database: whether this user may create the tables
    /// (`CREATE` on the database's `public` schema).
    pub may_create: bool,
    /// How long ago a running run of the same node name last beat, if one
    /// does (a second machine given the same name, or this node running).
    pub same_name_running_ms: Option<i64>,
}

impl Probe {
    /// What stands in the way of `weft run`, if anything: a schema newer
    /// than this runtime's, or tables it may not create.
    pub fn problem(&self) -> Option<String> {
        if self.schema > SCHEMA_VERSION {
            Some(format!(
                "schema version {} is newer than this runtime's ({SCHEMA_VERSION}); upgrade weft",
                self.schema
            ))
        } else if self.schema == 0 && !self.may_create {
            Some(
                "the database is empty and this user may not create tables in its public \
                 schema: GRANT CREATE ON SCHEMA public, or let the database's owner run weft first"
                    .into(),
            )
        } else {
            None
        }
    }

    /// The schema in a few words.
    pub fn schema_said(&self) -> String {
        match self.schema {
            0 => "empty: the first `weft run` creates the schema".into(),
            v if v == SCHEMA_VERSION => format!("schema version {v}"),
            v if v < SCHEMA_VERSION => format!(
                "schema version {v}: the first `weft run` of this version migrates it to {SCHEMA_VERSION}"
            ),
            v => format!("schema version {v}"),
        }
    }
}

/// Connects to `server` and asks; an unreachable server, a refused login
/// or a missing database is the error, said as the server said it.
pub fn probe(server: &Server, node: &str) -> Result<Probe, JournalError> {
    let location = server.location();
    let fail = |e: postgres::Error| super::open_error(&location, conn::describe(&e));
    let tls = server.uses_tls();
    conn::outside_runtime(|| {
        let mut c = server
            .connect(true)
            .map_err(|e| super::open_error(&location, e))?;
        let server_version: String = c
            .query_one("SHOW server_version", &[])
            .map_err(fail)?
            .get(0);
        let schema = schema::version(&mut c).map_err(fail)?;
        let may_create: bool = c
            .query_one("SELECT has_schema_privilege('public', 'CREATE')", &[])
            .map_err(fail)?
            .get(0);
        let same_name_running_ms = if schema >= 1 {
            c.query_one(
                &format!(
                    "SELECT {SERVER_NOW} - max(heartbeat_at) FROM nodes
                     WHERE name = $1 AND stopped_at IS NULL AND lease_until > {SERVER_NOW}"
                ),
                &[&node],
            )
            .map_err(fail)?
            .get::<_, Option<i64>>(0)
            .map(|ago| ago.max(0))
        } else {
            None
        };
        Ok(Probe {
            server_version,
            tls,
            schema,
            may_create,
            same_name_running_ms,
        })
    })
    .map_err(|e| super::open_error(&location, e))?
}
