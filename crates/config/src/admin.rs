//! `[admin]`: the admin HTTP API's listener, tokens and TLS.

use std::path::PathBuf;

use toml::de::DeTable;

use super::check::Checker;
use super::keys::{Key, any};

/// The keys of `[admin]`.
pub(super) const KEYS: &[Key] = &[
    any("listen"),
    any("tokens"),
    any("tls"),
    any("hosts"),
    any("max_connections"),
];

/// The admin HTTP API (`[admin]`): what the journal holds, resend, purge,
/// reload, status; every request needs a bearer token from `tokens`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConfig {
    /// Where it listens; anywhere but loopback needs `tls`.
    pub listen: std::net::SocketAddr,
    /// The token file (default: `data_dir/admin-tokens.toml`).
    pub tokens: PathBuf,
    /// HTTPS: certificate, key, and an optional client CA.
    pub tls: Option<weft_tls::ServerTls>,
    /// Host names the API answers to besides loopback names and the address
    /// a connection came in on (a `Host` header naming anything else is
    /// refused: DNS rebinding).
    pub hosts: Vec<String>,
    /// Connections open at once; more are refused.
    pub max_connections: usize,
}

/// The default cap on a listener's open connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

impl Checker<'_> {
    pub(super) fn admin(&mut self, at: usize, t: &DeTable<'_>) -> Option<AdminConfig> {
        let mut listen = None;
        let mut tokens = PathBuf::new();
        let mut tls = None;
        let mut hosts = Vec::new();
        let mut max_connections = DEFAULT_MAX_CONNECTIONS;
        for entry in t.iter() {
            let k = entry.0.get_ref().as_ref();
            let key = format!("admin.{k}");
            if k == "allow_remote" {
                self.error(
                    entry.0.span().start,
                    &key,
                    "no longer a setting: the admin API needs a token on every request, and a \
                     listen address other than loopback needs admin.tls",
                );
                continue;
            }
            if !self.known(KEYS, "", entry.0, &key) {
                continue;
            }
            match k {
                "listen" => {
                    listen = self
                        .socket_addr(entry, &key)
                        .map(|a| (a, entry.1.span().start))
                }
                "tokens" => tokens = self.path(entry, &key, false).unwrap_or_default(),
                "tls" => tls = self.server_tls(entry, &key),
                "hosts" => {
                    hosts = self
                        .string_list(entry.1, &key)
                        .into_iter()
                        .map(|(_, h)| h)
                        .collect()
                }
                "max_connections" => {
                    if let Some(n) = self.integer(entry.1, &key, 1, 100_000) {
                        max_connections = n as usize;
                    }
                }
                _ => {} // not in the key table: reported by `known` above
            }
        }
        let Some((listen, listen_at)) = listen else {
            self.error(at, "admin.listen", "required key is missing");
            return None;
        };
        if !listen.ip().is_loopback() && tls.is_none() {
            self.error(
                listen_at,
                "admin.listen",
                format!(
                    "{listen} is not a loopback address: tokens would cross the network in \
                     clear; set admin.tls = {{ cert = ..., key = ... }}"
                ),
            );
            return None;
        }
        Some(AdminConfig {
            listen,
            tokens,
            tls,
            hosts,
            max_connections,
        })
    }
}
