//! `[journal]`: which engine holds the journal. SQLite (the default, one
//! node, `data_dir/journal.db`) or PostgreSQL (several nodes sharing one
//! database, each with its own `node` name).

use std::time::Duration;

use toml::de::DeTable;

use super::check::Checker;
use super::keys::{Key, any};

/// The keys of `[journal]`.
pub(super) const KEYS: &[Key] = &[
    any("engine"),
    any("url"),
    any("node"),
    any("lease_s"),
    any("tls"),
];

/// The default `journal.lease_s`.
pub const DEFAULT_LEASE_S: u64 = 15;

/// Where the journal lives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum JournalConfig {
    /// SQLite in `data_dir` (the default).
    #[default]
    Sqlite,
    /// A PostgreSQL database shared by the nodes.
    Postgres(PostgresJournal),
}

/// `[journal] engine = "postgres"`.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresJournal {
    /// `postgres://user:password@host:port/database` (a password here is a
    /// secret: never printed).
    pub url: String,
    /// This node's name, unique among the nodes.
    pub node: String,
    /// How long a node's claims outlive its last heartbeat.
    pub lease: Duration,
    /// `tls = { ca, cert, key, server_name }`: TLS to the server, which
    /// must then offer it, its certificate checked against `ca` (else the
    /// system's CAs) and the host name (or `server_name`); `cert` and
    /// `key` are a client certificate for servers that ask for one. None:
    /// plain TCP (or a Unix socket).
    pub tls: Option<weft_tls::ClientTls>,
}

impl std::fmt::Debug for PostgresJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresJournal")
            .field("url", &"(not shown: it may hold a password)")
            .field("node", &self.node)
            .field("lease", &self.lease)
            .field("tls", &self.tls)
            .finish()
    }
}

impl Checker<'_> {
    pub(super) fn journal(&mut self, at: usize, t: &DeTable<'_>) -> JournalConfig {
        let mut engine = None;
        let mut url = None;
        let mut node = None;
        let mut lease = Duration::from_secs(DEFAULT_LEASE_S);
        let mut tls = None;
        for entry in t.iter() {
            let k = entry.0.get_ref().as_ref();
            let key = format!("journal.{k}");
            if !self.known(KEYS, "", entry.0, &key) {
                continue;
            }
            match k {
                "engine" => match self.string(entry, &key).as_deref() {
                    Some(e @ ("sqlite" | "postgres")) => {
                        engine = Some((e.to_string(), entry.1.span().start));
                    }
                    Some(_) => self.error(
                        entry.1.span().start,
                        &key,
                        "expected \"sqlite\" (one node, in data_dir) or \"postgres\" (nodes sharing a database)",
                    ),
                    None => {}
                },
                "url" => {
                    if let Some(u) = self.string(entry, &key) {
                        if u.starts_with("postgres://") || u.starts_with("postgresql://") {
                            url = Some(u);
                        } else {
                            // Never echo it: it may hold a password.
                            self.error(
                                entry.1.span().start,
                                &key,
                                "expected a postgres://user:password@host:port/database URL",
                            );
                        }
                    }
                }
                "node" => {
                    if let Some(n) = self.string(entry, &key) {
                        let ok = !n.is_empty()
                            && n.len() <= 64
                            && n.chars()
                                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
                        if ok {
                            node = Some(n);
                        } else {
                            self.error(
                                entry.1.span().start,
                                &key,
                                "expected a name of letters, digits, '-', '_' or '.', at most 64",
                            );
                        }
                    }
                }
                "lease_s" => {
                    if let Some(n) = self.integer(entry.1, &key, 3, 3600) {
                        lease = Duration::from_secs(n);
                    }
                }
                "tls" => tls = self.client_tls(entry, &key),
                _ => {} // not in the key table: reported by `known` above
            }
        }
        match engine.as_ref().map(|(e, at)| (e.as_str(), *at)) {
            None | Some(("sqlite", _)) => {
                if url.is_some() || node.is_some() || tls.is_some() {
                    self.error(
                        at,
                        "journal.engine",
                        "url, node and tls are for engine = \"postgres\"; SQLite lives in data_dir",
                    );
                }
                JournalConfig::Sqlite
            }
            Some((_, engine_at)) => {
                let (Some(url), Some(node)) = (url, node) else {
                    self.error(
                        engine_at,
                        "journal.engine",
                        "engine = \"postgres\" needs url and node (this node's name)",
                    );
                    return JournalConfig::Sqlite;
                };
                if tls.is_none() && asks_for_tls(&url) {
                    self.error(
                        engine_at,
                        "journal.url",
                        "the URL's sslmode asks for TLS: set journal.tls (an empty table \
                         trusts the system's CAs) so the server's certificate is checked",
                    );
                }
                JournalConfig::Postgres(PostgresJournal {
                    url,
                    node,
                    lease,
                    tls,
                })
            }
        }
    }
}

/// Whether a URL's `sslmode` asks for TLS (`require`, `verify-ca`,
/// `verify-full`): Weft reaches TLS through `journal.tls`, which checks
/// the server's certificate, never through the URL alone.
fn asks_for_tls(url: &str) -> bool {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(query.as_bytes()).any(|(k, v)| {
        k == "sslmode" && matches!(v.as_ref(), "require" | "verify-ca" | "verify-full")
    })
}
