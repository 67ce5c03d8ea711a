//! `[sources.NAME]`: MLLP and HTTP listeners.

use std::fmt;
use std::time::Duration;

use toml::de::DeTable;

use super::DEFAULT_MAX_CONNECTIONS;
use super::check::Checker;
use super::keys::{Key, any, only};

/// The keys of `[sources.NAME]`, and which kinds take them.
pub(super) const KEYS: &[Key] = &[
    any("kind"),
    any("listen"),
    any("ack"),
    any("route"),
    any("dedup_window_s"),
    only(&["http"], "path"),
    only(&["mllp"], "max_frame_kib"),
    only(&["http"], "max_body_kib"),
    only(&["mllp"], "idle_timeout_s"),
    only(&["mllp"], "frame_timeout_s"),
    only(&["http"], "body_timeout_s"),
    any("max_connections"),
    any("tls"),
];

/// When a source acknowledges a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AckMode {
    /// Once the message is committed to the journal (`on-receipt` is
    /// accepted as another name for it).
    #[default]
    AfterCommit,
    /// Once the route's plugins ran: AA, or AE/AR from their outcome.
    AfterTransform,
    /// Once every output was delivered (or failed for good: AE).
    AfterDelivery,
}

impl fmt::Display for AckMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AckMode::AfterCommit => "after-commit",
            AckMode::AfterTransform => "after-transform",
            AckMode::AfterDelivery => "after-delivery",
        })
    }
}

/// One source (`[sources.NAME]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceConfig {
    /// Its name.
    pub name: String,
    /// The transport and its settings.
    pub kind: SourceKind,
    /// When it acknowledges.
    pub ack: AckMode,
    /// The route every message of this source takes; `None`: chosen by the
    /// routes' `match` rules on MSH-9.
    pub route: Option<String>,
    /// A message with the same MSH-3, MSH-4 and MSH-10 as one received
    /// within this window is a duplicate: not processed again, answered as
    /// the original was. `None`: no duplicate detection.
    pub dedup_window: Option<Duration>,
    /// Connections open at once; more are closed as they come.
    pub max_connections: usize,
}

/// The transports a source can listen on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKind {
    /// HL7 v2 over MLLP.
    Mllp(MllpSourceConfig),
    /// HL7 v2 or JSON over HTTP POST.
    Http(HttpSourceConfig),
}

/// Settings of an HTTP source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSourceConfig {
    /// The address to listen on (port 0 picks a free port).
    pub listen: std::net::SocketAddr,
    /// The path messages are POSTed to.
    pub path: String,
    /// Largest body accepted (413 above).
    pub max_body_bytes: usize,
    /// A request's body must be read whole this long after its headers
    /// (408 otherwise), however slowly it trickles in.
    pub body_timeout: Duration,
    /// HTTPS, with client certificates when it names a CA.
    pub tls: Option<weft_tls::ServerTls>,
}

/// Settings of an MLLP source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MllpSourceConfig {
    /// The address to listen on (port 0 picks a free port).
    pub listen: std::net::SocketAddr,
    /// Largest frame accepted; a larger one gets a NAK and the connection
    /// is closed.
    pub max_frame_bytes: usize,
    /// A connection that sends no frame for this long is closed (bytes
    /// outside frames do not keep it open).
    pub idle_timeout: Duration,
    /// A frame must be complete this long after its start block, however
    /// its bytes trickle in; else the connection is closed.
    pub frame_timeout: Duration,
    /// TLS (MLLP over TLS), with client certificates when it names a CA.
    pub tls: Option<weft_tls::ServerTls>,
}

impl Checker<'_> {
    pub(super) fn source(
        &mut self,
        name: &str,
        at: usize,
        t: &DeTable<'_>,
        key: &str,
        route_refs: &mut Vec<(usize, String, String)>,
    ) -> Option<SourceConfig> {
        let (kind, kind_at) = self.kind(at, t, key, "mllp, http")?;
        if kind != "mllp" && kind != "http" {
            self.error(
                kind_at,
                &format!("{key}.kind"),
                format!("unknown source kind {kind:?} (expected mllp or http)"),
            );
            return None;
        }
        let mut ack = AckMode::default();
        let mut route = None;
        let mut listen = None;
        let mut listen_given = false;
        let mut max_frame_bytes = 4 * 1024 * 1024;
        let mut idle_timeout = Duration::from_secs(60);
        let mut frame_timeout = Duration::from_secs(60);
        let mut server_tls = None;
        let mut path = "/".to_string();
        let mut dedup_window = None;
        let mut max_connections = DEFAULT_MAX_CONNECTIONS;
        for entry in t.iter() {
            let (k, v) = entry;
            let kname = k.get_ref().as_ref();
            let ekey = format!("{key}.{kname}");
            if !self.known(KEYS, &kind, k, &ekey) {
                continue;
            }
            match (kind.as_str(), kname) {
                (_, "kind") => {}
                (_, "ack") => match self.string(entry, &ekey).as_deref() {
                    Some("after-commit" | "on-receipt") => ack = AckMode::AfterCommit,
                    Some("after-transform") => ack = AckMode::AfterTransform,
                    Some("after-delivery") => ack = AckMode::AfterDelivery,
                    Some(_) => self.error(
                        v.span().start,
                        &ekey,
                        "expected after-commit, after-transform or after-delivery",
                    ),
                    None => {}
                },
                (_, "route") => {
                    if let Some(r) = self.string(entry, &ekey) {
                        route_refs.push((v.span().start, ekey.clone(), r.clone()));
                        route = Some(r);
                    }
                }
                (_, "dedup_window_s") => {
                    dedup_window = self
                        .integer(v, &ekey, 1, 30 * 86_400)
                        .map(Duration::from_secs);
                }
                (_, "max_connections") => {
                    if let Some(n) = self.integer(v, &ekey, 1, 100_000) {
                        max_connections = n as usize;
                    }
                }
                (_, "listen") => {
                    listen_given = true;
                    listen = self.socket_addr(entry, &ekey);
                }
                ("mllp", "max_frame_kib") | ("http", "max_body_kib") => {
                    if let Some(n) = self.integer(v, &ekey, 1, 1024 * 1024) {
                        max_frame_bytes = n as usize * 1024;
                    }
                }
                ("mllp", "idle_timeout_s") => {
                    if let Some(n) = self.integer(v, &ekey, 1, 86_400) {
                        idle_timeout = Duration::from_secs(n);
                    }
                }
                ("mllp", "frame_timeout_s") | ("http", "body_timeout_s") => {
                    if let Some(n) = self.integer(v, &ekey, 1, 3600) {
                        frame_timeout = Duration::from_secs(n);
                    }
                }
                (_, "tls") => server_tls = self.server_tls(entry, &ekey),
                ("http", "path") => {
                    if let Some(p) = self.string(entry, &ekey) {
                        if !p.starts_with('/') || p == "/health" {
                            self.error(
                                v.span().start,
                                &ekey,
                                "must start with / and not be /health",
                            );
                        }
                        path = p;
                    }
                }
                _ => {} // not in the key table: reported by `known` above
            }
        }
        let Some(listen) = listen else {
            if !listen_given {
                self.error(at, &format!("{key}.listen"), "required key is missing");
            }
            return None;
        };
        let kind = if kind == "mllp" {
            SourceKind::Mllp(MllpSourceConfig {
                listen,
                max_frame_bytes,
                idle_timeout,
                frame_timeout,
                tls: server_tls,
            })
        } else {
            SourceKind::Http(HttpSourceConfig {
                listen,
                path,
                max_body_bytes: max_frame_bytes,
                body_timeout: frame_timeout,
                tls: server_tls,
            })
        };
        Some(SourceConfig {
            name: name.to_string(),
            kind,
            ack,
            route,
            dedup_window,
            max_connections,
        })
    }
}
