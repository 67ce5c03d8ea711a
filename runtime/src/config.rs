//! The `weft.toml` model. Every error names the file, the line and the key,
//! and a file is checked whole: all its errors are reported at once.
//!
//! ```toml
//! [runtime]
//! cache_dir = ".weft/cache"        # compiled plugins, reused across restarts
//! workers = 2                      # plugin worker threads (default: one per CPU)
//! shutdown_grace_s = 30            # time to finish work in flight at shutdown
//!
//! [plugins.site-normalize]
//! path = "plugins/site_normalize.wasm"
//! deadline_ms = 100                # wall clock per message
//! memory_mib = 64                  # linear memory cap
//! fuel = 50000000                  # optional instruction budget
//! max_output_mib = 16              # total size of one message's outputs
//! max_outputs = 1000               # outputs per message
//! max_headers = 1000               # headers on all outputs of a message
//! [plugins.site-normalize.config]  # what `config("key")` returns
//! mrn_prefix = "NORTH-"
//! [plugins.site-normalize.lookups] # what `lookup("table", key)` reads
//! sex = "lookups/sex.csv"
//!
//! [routes.adt]
//! plugins = ["site-normalize", "adt-to-fhir"]
//! ```
//!
//! Relative paths are relative to the directory of the config file.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

pub use crate::journal::JournalSync;
use crate::plugins::samples::{Expect, Sample};
use crate::plugins::{Limits, PluginSpec};

/// The default configuration, compiled into the binary: the repository's
/// `weft.toml`.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../weft.toml");

/// A loaded, checked configuration.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Where it was read from (for messages).
    pub source: String,
    /// Runtime-wide settings.
    pub runtime: RuntimeConfig,
    /// Plugins by name; each spec's `path` is resolved.
    pub plugins: BTreeMap<String, PluginSpec>,
    /// Routes by name.
    pub routes: BTreeMap<String, RouteConfig>,
    /// Route names in the order the file lists them: the order `match`
    /// rules are tried in.
    pub route_order: Vec<String>,
    /// Sources by name.
    pub sources: BTreeMap<String, SourceConfig>,
    /// Destinations by name.
    pub destinations: BTreeMap<String, DestinationConfig>,
    /// Where in the file each plugin's `path` key is, to report load errors.
    pub plugin_locations: HashMap<String, Location>,
    /// The admin HTTP API (`[admin]`); `None`: not served.
    pub admin: Option<AdminConfig>,
}

impl Config {
    /// What is allowed but unwise, for `weft check` and the start of `weft
    /// run`: a secret header sent in clear to another host.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (name, d) in &self.destinations {
            let DestinationKind::Http(h) = &d.kind else {
                continue;
            };
            let loopback = h
                .url
                .host()
                .map(|host| host.trim_start_matches('[').trim_end_matches(']'))
                .is_some_and(|host| {
                    host == "localhost"
                        || host
                            .parse::<std::net::IpAddr>()
                            .is_ok_and(|ip| ip.is_loopback())
                });
            let secret = h.headers.iter().any(|(k, _)| {
                k.eq_ignore_ascii_case("authorization")
                    || k.eq_ignore_ascii_case("proxy-authorization")
            });
            if h.url.scheme_str() == Some("http") && secret && !loopback {
                out.push(format!(
                    "destinations.{name}: its Authorization header crosses the network in clear \
                     (http:// to another host): use https://"
                ));
            }
        }
        out
    }

    /// Every certificate, key and CA file the admin API, the sources and
    /// the destinations name.
    pub fn tls_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = self
            .admin
            .iter()
            .flat_map(|a| a.tls.iter())
            .flat_map(|t| t.files())
            .map(Path::to_path_buf)
            .collect();
        for s in self.sources.values() {
            let tls = match &s.kind {
                SourceKind::Mllp(m) => m.tls.as_ref(),
                SourceKind::Http(h) => h.tls.as_ref(),
            };
            files.extend(tls.iter().flat_map(|t| t.files()).map(Path::to_path_buf));
        }
        for d in self.destinations.values() {
            let tls = match &d.kind {
                DestinationKind::Mllp(m) => m.tls.as_ref(),
                DestinationKind::Http(h) => h.tls.as_ref(),
                DestinationKind::File(_) => None,
            };
            files.extend(tls.iter().flat_map(|t| t.files()).map(Path::to_path_buf));
        }
        files
    }
}

/// The admin HTTP API (`[admin]`): what the journal holds, resend, purge,
/// reload, status; every request needs a bearer token from `tokens`.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// Where it listens; anywhere but loopback needs `tls`.
    pub listen: std::net::SocketAddr,
    /// The token file (default: `data_dir/admin-tokens.toml`).
    pub tokens: PathBuf,
    /// HTTPS: certificate, key, and an optional client CA.
    pub tls: Option<crate::tls::ServerTls>,
    /// Host names the API answers to besides loopback names and the address
    /// a connection came in on (a `Host` header naming anything else is
    /// refused: DNS rebinding).
    pub hosts: Vec<String>,
    /// Connections open at once; more are refused.
    pub max_connections: usize,
}

/// The default cap on a listener's open connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

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
#[derive(Debug, Clone)]
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
#[derive(Debug, Clone)]
pub enum SourceKind {
    /// HL7 v2 over MLLP.
    Mllp(MllpSourceConfig),
    /// HL7 v2 or JSON over HTTP POST.
    Http(HttpSourceConfig),
}

/// Settings of an HTTP source.
#[derive(Debug, Clone)]
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
    pub tls: Option<crate::tls::ServerTls>,
}

/// Settings of an MLLP source.
#[derive(Debug, Clone)]
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
    pub tls: Option<crate::tls::ServerTls>,
}

/// One destination (`[destinations.NAME]`).
#[derive(Debug, Clone)]
pub struct DestinationConfig {
    /// Its name.
    pub name: String,
    /// The transport and its settings.
    pub kind: DestinationKind,
    /// How many deliveries may be under way at once.
    pub concurrency: usize,
    /// Most attempts before a delivery is given up (dead letter); `None`:
    /// no limit.
    pub max_attempts: Option<u32>,
    /// Most time since the message arrived before a delivery is given up.
    pub max_age: Duration,
    /// Deliveries whose messages share this key (an HL7 path read from the
    /// received message) go out one at a time, in arrival order; a stuck
    /// one holds back only its own key. `None`: no ordering.
    pub ordering_key: Option<weft_hl7::Path>,
}

/// The transports a destination can deliver over.
#[derive(Debug, Clone)]
pub enum DestinationKind {
    /// Files in a directory.
    File(FileDestinationConfig),
    /// HTTP requests, e.g. to a FHIR server.
    Http(HttpDestinationConfig),
    /// HL7 v2 over MLLP, waiting for each ACK.
    Mllp(MllpDestinationConfig),
}

/// The HTTP method of an HTTP destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMethod {
    /// POST (a FHIR transaction Bundle goes to the base URL by POST).
    Post,
    /// PUT.
    Put,
}

/// Settings of an HTTP destination.
#[derive(Debug, Clone)]
pub struct HttpDestinationConfig {
    /// Where to send: an http:// or https:// URL.
    pub url: http::Uri,
    /// POST or PUT.
    pub method: HttpMethod,
    /// How long one request may take.
    pub timeout: Duration,
    /// Extra headers, e.g. `Authorization`.
    pub headers: Vec<(String, String)>,
    /// For https:// URLs: a CA to trust instead of the system's, a client
    /// certificate, a server name.
    pub tls: Option<crate::tls::ClientTls>,
}

/// What an MLLP destination does with an AE or AR answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckPolicy {
    /// Send again later, with backoff.
    Retry,
    /// Give up: the delivery failed for good.
    Fail,
}

/// Settings of an MLLP destination.
#[derive(Debug, Clone)]
pub struct MllpDestinationConfig {
    /// HOST:PORT of the receiver.
    pub address: String,
    /// How long to wait for an ACK (then reconnect and retry).
    pub timeout: Duration,
    /// What to do with AE/CE.
    pub on_error: AckPolicy,
    /// What to do with AR/CR.
    pub on_reject: AckPolicy,
    /// MLLP over TLS, when set.
    pub tls: Option<crate::tls::ClientTls>,
}

/// Settings of a file destination.
#[derive(Debug, Clone)]
pub struct FileDestinationConfig {
    /// The directory files are written under.
    pub dir: PathBuf,
    /// The file name template: `{date}`, `{message_id}`, `{control_id}`,
    /// `{type}`, `{n}` (the output's number in its message), `{ext}`.
    pub filename: String,
    /// The mode of each file written (default 0600: Weft's user only).
    pub file_mode: u32,
    /// The mode of each directory made (default 0700).
    pub dir_mode: u32,
}

/// The placeholders a file name template may use.
pub const FILENAME_PLACEHOLDERS: &[&str] =
    &["date", "message_id", "control_id", "type", "n", "ext"];

/// Runtime-wide settings (`[runtime]`).
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where the journal lives (`journal.db`).
    pub data_dir: PathBuf,
    /// Where compiled plugins are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Plugin worker threads; `None`: one per CPU.
    pub workers: Option<usize>,
    /// At shutdown, how long messages in flight and queued outputs may take.
    pub shutdown_grace: Duration,
    /// Settled messages older than this are purged from the journal (hourly);
    /// `None` keeps everything.
    pub retain: Option<Duration>,
    /// When the journal grows past this many bytes, its oldest settled
    /// messages are purged (checked every 10 s); `None`: no cap.
    pub retain_max_bytes: Option<u64>,
    /// Audit entries older than this are removed (hourly); younger ones
    /// never are. Default 2,190 days (6 years, HIPAA's retention).
    pub audit_retain: Duration,
    /// The bytes of messages the sources hold between arrival and answer,
    /// all together (parsed form counted).
    pub max_inflight_bytes: usize,
    /// Whether a commit waits for the disk.
    pub journal_sync: JournalSync,
}

/// The default `runtime.audit_retain_days`.
pub const DEFAULT_AUDIT_RETAIN_DAYS: u64 = 2190;

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            data_dir: PathBuf::from("data"),
            cache_dir: None,
            workers: None,
            shutdown_grace: Duration::from_secs(30),
            retain: None,
            retain_max_bytes: None,
            audit_retain: Duration::from_secs(DEFAULT_AUDIT_RETAIN_DAYS * 86_400),
            max_inflight_bytes: 256 * 1024 * 1024,
            journal_sync: JournalSync::Full,
        }
    }
}

/// One route (`[routes.NAME]`): the plugins a message runs through, in
/// order, and where their outputs go.
#[derive(Debug, Clone, Default)]
pub struct RouteConfig {
    /// The route's name.
    pub name: String,
    /// Plugin names, in order; none passes messages through unchanged.
    pub plugins: Vec<String>,
    /// Destination names; an output that names none goes to all of them.
    pub destinations: Vec<String>,
    /// MSH-9 patterns (`ADT^A0*`, `ORU^R01`; `*` and `?` wildcards) that send
    /// a message here when its source names no route.
    pub matches: Vec<String>,
}

impl RouteConfig {
    /// True when one of the route's patterns matches a message type such as
    /// `ADT^A01`.
    pub fn matches(&self, message_type: &str) -> bool {
        self.matches.iter().any(|p| glob(p, message_type))
    }
}

/// Matches `text` against a pattern with `*` (any run) and `?` (one char).
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// A place in a config file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    /// The file (or `<embedded weft.toml>`).
    pub file: String,
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where.
    pub location: Location,
    /// The dotted key, e.g. `plugins.adt-to-fhir.path`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.location, self.message)
        } else {
            write!(f, "{}: {}: {}", self.location, self.key, self.message)
        }
    }
}

/// Every problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Reads and checks a config file.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            location: Location {
                file: name.clone(),
                line: 0,
                column: 0,
            },
            key: String::new(),
            message: format!("cannot read: {e}"),
        }])
    })?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    parse(&text, &name, base)
}

/// Checks config text; `name` is used in errors and relative paths are
/// resolved against `base_dir`.
pub fn parse(text: &str, name: &str, base_dir: &Path) -> Result<Config, ConfigErrors> {
    let mut c = Checker {
        text,
        file: name,
        base: base_dir,
        errors: Vec::new(),
    };
    let config = c.check();
    if c.errors.is_empty() {
        Ok(config)
    } else {
        c.errors
            .sort_by_key(|e| (e.location.line, e.location.column));
        Err(ConfigErrors(c.errors))
    }
}

struct Checker<'a> {
    text: &'a str,
    file: &'a str,
    base: &'a Path,
    errors: Vec<ConfigError>,
}

type Entry<'i> = (
    &'i Spanned<toml::de::DeString<'i>>,
    &'i Spanned<DeValue<'i>>,
);

impl<'a> Checker<'a> {
    fn location(&self, offset: usize) -> Location {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Location {
            file: self.file.to_string(),
            line,
            column,
        }
    }

    fn error(&mut self, offset: usize, key: &str, message: impl Into<String>) {
        let location = self.location(offset);
        self.errors.push(ConfigError {
            location,
            key: key.to_string(),
            message: message.into(),
        });
    }

    fn check(&mut self) -> Config {
        let mut config = Config {
            source: self.file.to_string(),
            ..Config::default()
        };
        config.runtime.data_dir = self.base.join("data");
        let doc = match DeTable::parse(self.text) {
            Ok(doc) => doc,
            Err(e) => {
                let offset = e.span().map_or(0, |s| s.start);
                self.error(offset, "", e.message().trim().to_string());
                return config;
            }
        };
        let doc = doc.get_ref();
        let mut route_refs = Vec::new();
        let mut destination_refs = Vec::new();
        let mut source_route_refs = Vec::new();
        for (key, value) in doc.iter() {
            let k = key.get_ref().as_ref();
            match k {
                "runtime" => {
                    if let Some(t) = self.table(value, "runtime") {
                        config.runtime = self.runtime(t);
                    }
                }
                "admin" => {
                    if let Some(t) = self.table(value, "admin") {
                        config.admin = self.admin(key.span().start, t);
                    }
                }
                "plugins" => {
                    if let Some(t) = self.table(value, "plugins") {
                        for (name, v) in t.iter() {
                            let n = name.get_ref().as_ref().to_string();
                            let key = format!("plugins.{n}");
                            self.check_name(name.span().start, &key, &n);
                            if let Some(t) = self.table(v, &key) {
                                let spec = self.plugin(&n, t, &key, &mut config);
                                config.plugins.insert(n, spec);
                            }
                        }
                    }
                }
                "routes" => {
                    if let Some(t) = self.table(value, "routes") {
                        for (name, v) in t.iter() {
                            let n = name.get_ref().as_ref().to_string();
                            let key = format!("routes.{n}");
                            self.check_name(name.span().start, &key, &n);
                            if let Some(t) = self.table(v, &key) {
                                let route =
                                    self.route(&n, t, &key, &mut route_refs, &mut destination_refs);
                                config.route_order.push(n.clone());
                                config.routes.insert(n, route);
                            }
                        }
                    }
                }
                "sources" => {
                    if let Some(t) = self.table(value, "sources") {
                        for (name, v) in t.iter() {
                            let n = name.get_ref().as_ref().to_string();
                            let key = format!("sources.{n}");
                            self.check_name(name.span().start, &key, &n);
                            if let Some(t) = self.table(v, &key)
                                && let Some(source) =
                                    self.source(&n, v.span().start, t, &key, &mut source_route_refs)
                            {
                                config.sources.insert(n, source);
                            }
                        }
                    }
                }
                "destinations" => {
                    if let Some(t) = self.table(value, "destinations") {
                        for (name, v) in t.iter() {
                            let n = name.get_ref().as_ref().to_string();
                            let key = format!("destinations.{n}");
                            self.check_name(name.span().start, &key, &n);
                            if let Some(t) = self.table(v, &key)
                                && let Some(d) = self.destination(&n, v.span().start, t, &key)
                            {
                                config.destinations.insert(n, d);
                            }
                        }
                    }
                }
                other => self.error(
                    key.span().start,
                    other,
                    "unknown section (expected runtime, admin, sources, plugins, routes or destinations)",
                ),
            }
        }
        if let Some(admin) = &mut config.admin
            && admin.tokens.as_os_str().is_empty()
        {
            admin.tokens = config.runtime.data_dir.join("admin-tokens.toml");
        }
        for (offset, key, plugin) in route_refs {
            if !config.plugins.contains_key(&plugin) {
                self.error(
                    offset,
                    &key,
                    format!("no plugin named {plugin:?} is defined"),
                );
            }
        }
        for (offset, key, dest) in destination_refs {
            if !config.destinations.contains_key(&dest) {
                self.error(
                    offset,
                    &key,
                    format!("no destination named {dest:?} is defined"),
                );
            }
        }
        for (offset, key, route) in source_route_refs {
            if !config.routes.contains_key(&route) {
                self.error(offset, &key, format!("no route named {route:?} is defined"));
            }
        }
        config
    }

    fn check_name(&mut self, offset: usize, key: &str, name: &str) {
        let ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !ok {
            self.error(
                offset,
                key,
                "names may only hold lower-case letters, digits, '-' and '_'",
            );
        }
    }

    fn table<'i>(&mut self, value: &'i Spanned<DeValue<'i>>, key: &str) -> Option<&'i DeTable<'i>> {
        match value.get_ref() {
            DeValue::Table(t) => Some(t),
            other => {
                self.error(
                    value.span().start,
                    key,
                    format!("expected a table, found {}", other.type_str()),
                );
                None
            }
        }
    }

    fn string(&mut self, (key, value): Entry<'_>, path: &str) -> Option<String> {
        let _ = key;
        match value.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            other => {
                self.error(
                    value.span().start,
                    path,
                    format!("expected a string, found {}", other.type_str()),
                );
                None
            }
        }
    }

    fn integer(
        &mut self,
        value: &Spanned<DeValue<'_>>,
        path: &str,
        min: u64,
        max: u64,
    ) -> Option<u64> {
        let parsed = match value.get_ref() {
            DeValue::Integer(i) => {
                u64::from_str_radix(&i.as_str().replace('_', ""), i.radix()).ok()
            }
            _ => None,
        };
        match parsed {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.error(
                    value.span().start,
                    path,
                    format!("expected a whole number from {min} to {max}"),
                );
                None
            }
        }
    }

    fn path(&mut self, entry: Entry<'_>, key: &str, must_exist: bool) -> Option<PathBuf> {
        let s = self.string(entry, key)?;
        let p = self.base.join(&s);
        if must_exist && !p.is_file() {
            self.error(
                entry.1.span().start,
                key,
                format!("file {} does not exist", p.display()),
            );
        }
        Some(p)
    }

    fn runtime(&mut self, t: &DeTable<'_>) -> RuntimeConfig {
        let mut r = RuntimeConfig {
            data_dir: self.base.join("data"),
            ..RuntimeConfig::default()
        };
        for entry in t.iter() {
            let k = entry.0.get_ref().as_ref();
            let key = format!("runtime.{k}");
            match k {
                "cache_dir" => r.cache_dir = self.path(entry, &key, false),
                "data_dir" => {
                    if let Some(p) = self.path(entry, &key, false) {
                        r.data_dir = p;
                    }
                }
                "workers" => {
                    r.workers = self.integer(entry.1, &key, 1, 1024).map(|n| n as usize);
                }
                "retain_days" => {
                    r.retain = self
                        .integer(entry.1, &key, 1, 36_500)
                        .map(|d| Duration::from_secs(d * 86_400));
                }
                "max_inflight_mib" => {
                    if let Some(n) = self.integer(entry.1, &key, 1, 1024 * 1024) {
                        r.max_inflight_bytes = n as usize * 1024 * 1024;
                    }
                }
                "audit_retain_days" => {
                    if let Some(d) = self.integer(entry.1, &key, 1, 36_500) {
                        r.audit_retain = Duration::from_secs(d * 86_400);
                    }
                }
                "retain_max_mb" => {
                    r.retain_max_bytes = self
                        .integer(entry.1, &key, 1, 16 * 1024 * 1024)
                        .map(|mb| mb * 1024 * 1024);
                }
                "journal_sync" => match self.string(entry, &key).as_deref() {
                    Some("full") => r.journal_sync = JournalSync::Full,
                    Some("normal") => r.journal_sync = JournalSync::Normal,
                    Some(_) => self.error(
                        entry.1.span().start,
                        &key,
                        "expected \"full\" (fsync every commit) or \"normal\" (no fsync on commit)",
                    ),
                    None => {}
                },
                "shutdown_grace_s" => {
                    if let Some(n) = self.integer(entry.1, &key, 1, 3600) {
                        r.shutdown_grace = Duration::from_secs(n);
                    }
                }
                _ => self.error(
                    entry.0.span().start,
                    &key,
                    "unknown key (expected data_dir, cache_dir, workers, shutdown_grace_s, retain_days, retain_max_mb, audit_retain_days, max_inflight_mib, journal_sync)",
                ),
            }
        }
        r
    }

    fn plugin(
        &mut self,
        name: &str,
        t: &DeTable<'_>,
        key: &str,
        config: &mut Config,
    ) -> PluginSpec {
        let mut spec = PluginSpec {
            name: name.to_string(),
            limits: Limits::default(),
            ..PluginSpec::default()
        };
        let mut has_path = false;
        for entry in t.iter() {
            let (k, v) = entry;
            let kname = k.get_ref().as_ref();
            let key = format!("{key}.{kname}");
            const MIB: u64 = 1024 * 1024;
            match kname {
                "path" => {
                    has_path = true;
                    config
                        .plugin_locations
                        .insert(name.to_string(), self.location(v.span().start));
                    if let Some(p) = self.path(entry, &key, true) {
                        spec.path = p;
                    }
                }
                "deadline_ms" => {
                    if let Some(ms) = self.integer(v, &key, 1, 600_000) {
                        spec.limits.deadline = Duration::from_millis(ms);
                    }
                }
                "memory_mib" => {
                    if let Some(m) = self.integer(v, &key, 1, 4096) {
                        spec.limits.memory_bytes = (m * MIB) as usize;
                    }
                }
                "fuel" => spec.limits.fuel = self.integer(v, &key, 1, u64::MAX),
                "max_output_mib" => {
                    if let Some(m) = self.integer(v, &key, 1, 1024) {
                        spec.limits.max_output_bytes = (m * MIB) as usize;
                    }
                }
                "max_outputs" => {
                    if let Some(n) = self.integer(v, &key, 1, 1_000_000) {
                        spec.limits.max_outputs = n as usize;
                    }
                }
                "max_headers" => {
                    if let Some(n) = self.integer(v, &key, 0, 1_000_000) {
                        spec.limits.max_headers = n as usize;
                    }
                }
                "config" => {
                    if let Some(t) = self.table(v, &key) {
                        for (ck, cv) in t.iter() {
                            let ckey = format!("{key}.{}", ck.get_ref().as_ref());
                            let value = match cv.get_ref() {
                                DeValue::String(s) => Some(s.to_string()),
                                DeValue::Integer(i) => Some(i.as_str().to_string()),
                                DeValue::Float(f) => Some(f.as_str().to_string()),
                                DeValue::Boolean(b) => Some(b.to_string()),
                                other => {
                                    self.error(
                                        cv.span().start,
                                        &ckey,
                                        format!("expected a string, number or boolean, found {}", other.type_str()),
                                    );
                                    None
                                }
                            };
                            if let Some(value) = value {
                                spec.config.insert(ck.get_ref().as_ref().to_string(), value);
                            }
                        }
                    }
                }
                "lookups" => {
                    if let Some(t) = self.table(v, &key) {
                        for le in t.iter() {
                            let table = le.0.get_ref().as_ref().to_string();
                            let lkey = format!("{key}.{table}");
                            if let Some(p) = self.path(le, &lkey, true) {
                                spec.lookups.insert(table, p);
                            }
                        }
                    }
                }
                "samples" => spec.samples = self.samples(v, &key),
                _ => self.error(
                    k.span().start,
                    &key,
                    "unknown key (expected path, deadline_ms, memory_mib, fuel, max_output_mib, max_outputs, max_headers, config, lookups, samples)",
                ),
            }
        }
        if !has_path {
            let offset = t.iter().next().map_or(0, |(k, _)| k.span().start);
            self.error(offset, &format!("{key}.path"), "required key is missing");
        }
        spec
    }

    fn route(
        &mut self,
        name: &str,
        t: &DeTable<'_>,
        key: &str,
        refs: &mut Vec<(usize, String, String)>,
        destination_refs: &mut Vec<(usize, String, String)>,
    ) -> RouteConfig {
        let mut route = RouteConfig {
            name: name.to_string(),
            ..RouteConfig::default()
        };
        for (k, v) in t.iter() {
            let kname = k.get_ref().as_ref();
            let key = format!("{key}.{kname}");
            match kname {
                "destinations" => {
                    for (offset, d) in self.string_list(v, &key) {
                        destination_refs.push((offset, key.clone(), d.clone()));
                        route.destinations.push(d);
                    }
                }
                "match" => {
                    for (offset, pattern) in self.string_list(v, &key) {
                        if pattern.is_empty() || pattern.contains(char::is_whitespace) {
                            self.error(offset, &key, "a pattern is an MSH-9 value such as ADT^A0*");
                        }
                        route.matches.push(pattern);
                    }
                }
                "plugins" => match v.get_ref() {
                    DeValue::Array(items) => {
                        for item in items.iter() {
                            match item.get_ref() {
                                DeValue::String(s) => {
                                    refs.push((item.span().start, key.clone(), s.to_string()));
                                    route.plugins.push(s.to_string());
                                }
                                _ => self.error(item.span().start, &key, "expected a plugin name"),
                            }
                        }
                    }
                    _ => self.error(v.span().start, &key, "expected a list of plugin names"),
                },
                _ => self.error(
                    k.span().start,
                    &key,
                    "unknown key (expected plugins, destinations, match)",
                ),
            }
        }
        route
    }

    /// A plugin's check samples: `[[plugins.NAME.samples]]` tables (or an
    /// inline list of them) with `input`, `expect` and `contains`.
    fn samples(&mut self, v: &Spanned<DeValue<'_>>, key: &str) -> Vec<Sample> {
        let DeValue::Array(items) = v.get_ref() else {
            self.error(
                v.span().start,
                key,
                "expected a list of samples ([[...samples]] tables with input, expect, contains)",
            );
            return Vec::new();
        };
        let mut samples = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let skey = format!("{key}[{i}]");
            let Some(t) = self.table(item, &skey) else {
                continue;
            };
            let mut sample = Sample::default();
            let mut has_input = false;
            for entry in t.iter() {
                let k = entry.0.get_ref().as_ref();
                let ekey = format!("{skey}.{k}");
                match k {
                    "input" => {
                        has_input = true;
                        if let Some(p) = self.path(entry, &ekey, true) {
                            sample.input = p;
                        }
                    }
                    "expect" => match self.string(entry, &ekey).as_deref().map(Expect::parse) {
                        Some(Some(e)) => sample.expect = e,
                        Some(None) => self.error(
                            entry.1.span().start,
                            &ekey,
                            "expected \"transformed\", \"filtered\" or \"rejected\"",
                        ),
                        None => {}
                    },
                    "contains" => {
                        sample.contains = self
                            .string_list(entry.1, &ekey)
                            .into_iter()
                            .map(|(_, s)| s)
                            .collect();
                    }
                    _ => self.error(
                        entry.0.span().start,
                        &ekey,
                        "unknown key (expected input, expect, contains)",
                    ),
                }
            }
            if !has_input {
                self.error(
                    item.span().start,
                    &format!("{skey}.input"),
                    "required key is missing",
                );
            }
            samples.push(sample);
        }
        samples
    }

    fn string_list(&mut self, v: &Spanned<DeValue<'_>>, key: &str) -> Vec<(usize, String)> {
        match v.get_ref() {
            DeValue::Array(items) => items
                .iter()
                .filter_map(|item| match item.get_ref() {
                    DeValue::String(s) => Some((item.span().start, s.to_string())),
                    _ => {
                        self.error(item.span().start, key, "expected a string");
                        None
                    }
                })
                .collect(),
            _ => {
                self.error(v.span().start, key, "expected a list of strings");
                Vec::new()
            }
        }
    }

    /// The `kind` key of a source or destination table, and where its
    /// value is.
    fn kind(
        &mut self,
        at: usize,
        t: &DeTable<'_>,
        key: &str,
        kinds: &str,
    ) -> Option<(String, usize)> {
        match t.iter().find(|(k, _)| k.get_ref().as_ref() == "kind") {
            Some(entry) => self
                .string(entry, &format!("{key}.kind"))
                .map(|k| (k, entry.1.span().start)),
            None => {
                self.error(
                    at,
                    &format!("{key}.kind"),
                    format!("required key is missing (one of: {kinds})"),
                );
                None
            }
        }
    }

    fn source(
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
                    dedup_window = self.integer(v, &ekey, 1, 30 * 86_400).map(Duration::from_secs);
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
                            self.error(v.span().start, &ekey, "must start with / and not be /health");
                        }
                        path = p;
                    }
                }
                ("mllp", _) => self.error(
                    k.span().start,
                    &ekey,
                    "unknown key (expected kind, listen, ack, route, dedup_window_s, max_frame_kib, idle_timeout_s, frame_timeout_s, max_connections, tls)",
                ),
                _ => self.error(
                    k.span().start,
                    &ekey,
                    "unknown key (expected kind, listen, ack, route, dedup_window_s, path, max_body_kib, body_timeout_s, max_connections, tls)",
                ),
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

    /// A listener's `tls = { cert, key, client_ca }`, each file checked: it
    /// exists, holds PEM, is valid now, and the key is the certificate's.
    fn server_tls(&mut self, entry: Entry<'_>, key: &str) -> Option<crate::tls::ServerTls> {
        let t = self.table(entry.1, key)?;
        let (mut cert, mut pkey, mut client_ca) = (None, None, None);
        for e in t.iter() {
            let k = e.0.get_ref().as_ref();
            let ekey = format!("{key}.{k}");
            match k {
                "cert" => cert = self.path(e, &ekey, true),
                "key" => pkey = self.path(e, &ekey, true),
                "client_ca" => client_ca = self.path(e, &ekey, true),
                _ => self.error(
                    e.0.span().start,
                    &ekey,
                    "unknown key (expected cert, key, client_ca)",
                ),
            }
        }
        let at = entry.1.span().start;
        let (Some(cert), Some(pkey)) = (cert, pkey) else {
            self.error(at, key, "needs cert and key");
            return None;
        };
        let mut tls = crate::tls::ServerTls {
            cert,
            key: pkey,
            client_ca,
            fingerprint: String::new(),
        };
        tls.fingerprint = crate::tls::fingerprint(&tls.files());
        if [&tls.cert, &tls.key]
            .into_iter()
            .chain(&tls.client_ca)
            .all(|p| p.is_file())
            && let Err(e) = crate::tls::server_config(&tls)
        {
            self.error(at, key, e.to_string());
        }
        Some(tls)
    }

    /// A connection's `tls = { ca, cert, key, server_name }` (an empty
    /// table: the system's CAs), checked like [`Self::server_tls`].
    fn client_tls(&mut self, entry: Entry<'_>, key: &str) -> Option<crate::tls::ClientTls> {
        let t = self.table(entry.1, key)?;
        let mut tls = crate::tls::ClientTls::default();
        for e in t.iter() {
            let k = e.0.get_ref().as_ref();
            let ekey = format!("{key}.{k}");
            match k {
                "ca" => tls.ca = self.path(e, &ekey, true),
                "cert" => tls.cert = self.path(e, &ekey, true),
                "key" => tls.key = self.path(e, &ekey, true),
                "server_name" => tls.server_name = self.string(e, &ekey),
                _ => self.error(
                    e.0.span().start,
                    &ekey,
                    "unknown key (expected ca, cert, key, server_name)",
                ),
            }
        }
        let at = entry.1.span().start;
        if [&tls.ca, &tls.cert, &tls.key]
            .into_iter()
            .flatten()
            .all(|p| p.is_file())
            && let Err(e) = crate::tls::client_config(&tls)
        {
            self.error(at, key, e.to_string());
        }
        Some(tls)
    }

    fn admin(&mut self, at: usize, t: &DeTable<'_>) -> Option<AdminConfig> {
        let mut listen = None;
        let mut tokens = PathBuf::new();
        let mut tls = None;
        let mut hosts = Vec::new();
        let mut max_connections = DEFAULT_MAX_CONNECTIONS;
        for entry in t.iter() {
            let k = entry.0.get_ref().as_ref();
            let key = format!("admin.{k}");
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
                "allow_remote" => self.error(
                    entry.0.span().start,
                    &key,
                    "no longer a setting: the admin API needs a token on every request, and a \
                     listen address other than loopback needs admin.tls",
                ),
                _ => self.error(
                    entry.0.span().start,
                    &key,
                    "unknown key (expected listen, tokens, tls, hosts, max_connections)",
                ),
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

    fn socket_addr(&mut self, entry: Entry<'_>, key: &str) -> Option<std::net::SocketAddr> {
        let text = self.string(entry, key)?;
        match text.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                self.error(
                    entry.1.span().start,
                    key,
                    format!("{text:?} is not an address such as 127.0.0.1:2575"),
                );
                None
            }
        }
    }

    fn destination(
        &mut self,
        name: &str,
        at: usize,
        t: &DeTable<'_>,
        key: &str,
    ) -> Option<DestinationConfig> {
        let (kind, kind_at) = self.kind(at, t, key, "file, http, mllp")?;
        if !matches!(kind.as_str(), "file" | "http" | "mllp") {
            self.error(
                kind_at,
                &format!("{key}.kind"),
                format!("unknown destination kind {kind:?} (expected file, http or mllp)"),
            );
            return None;
        }
        // Files: many fsyncs in flight share the filesystem's journal commits.
        let mut concurrency = match kind.as_str() {
            "mllp" => 1,
            "file" => 32,
            _ => 4,
        };
        let mut max_attempts = None;
        let mut max_age = Duration::from_secs(72 * 3600);
        let mut ordering = "per-key".to_string();
        let mut ordering_at = at;
        let mut key_path = weft_hl7::Path::parse("PID-3.1").ok();
        let mut dir = None;
        let mut filename = "{date}/{message_id}-{n}.{ext}".to_string();
        let (mut file_mode, mut dir_mode) = (0o600, 0o700);
        let mut url: Option<http::Uri> = None;
        let mut address: Option<String> = None;
        let mut method = HttpMethod::Post;
        let mut timeout = Duration::from_secs(30);
        let mut headers = Vec::new();
        let mut on_error = AckPolicy::Retry;
        let mut on_reject = AckPolicy::Fail;
        let mut client_tls = None;
        let mut tls_at = at;
        let mut required: Vec<(&str, bool)> = match kind.as_str() {
            "file" => vec![("dir", false)],
            "http" => vec![("url", false)],
            _ => vec![("address", false)],
        };
        for entry in t.iter() {
            let (k, v) = entry;
            let kname = k.get_ref().as_ref();
            let ekey = format!("{key}.{kname}");
            if let Some(r) = required.iter_mut().find(|(n, _)| *n == kname) {
                r.1 = true;
            }
            match (kind.as_str(), kname) {
                (_, "kind") => {}
                (_, "concurrency") => {
                    if let Some(n) = self.integer(v, &ekey, 1, 1024) {
                        concurrency = n as usize;
                    }
                }
                (_, "max_attempts") => {
                    max_attempts = self.integer(v, &ekey, 1, 1_000_000).map(|n| n as u32);
                }
                (_, "ordering") => {
                    if let Some(o) = self.string(entry, &ekey) {
                        ordering = o;
                        ordering_at = v.span().start;
                    }
                }
                (_, "key") => {
                    if let Some(k) = self.string(entry, &ekey) {
                        match weft_hl7::Path::parse(&k) {
                            Ok(p) => key_path = Some(p),
                            Err(e) => self.error(v.span().start, &ekey, e.to_string()),
                        }
                    }
                }
                (_, "max_age_h") => {
                    if let Some(n) = self.integer(v, &ekey, 1, 24 * 365) {
                        max_age = Duration::from_secs(n * 3600);
                    }
                }
                ("http" | "mllp", "timeout_s") => {
                    if let Some(n) = self.integer(v, &ekey, 1, 3600) {
                        timeout = Duration::from_secs(n);
                    }
                }
                ("file", "dir") => dir = self.path(entry, &ekey, false),
                ("file", "file_mode" | "dir_mode") => {
                    if let Some(m) = self.string(entry, &ekey) {
                        match u32::from_str_radix(m.trim_start_matches("0o"), 8) {
                            Ok(mode) if mode <= 0o777 && mode & 0o600 == 0o600 => {
                                if kname == "file_mode" {
                                    file_mode = mode;
                                } else {
                                    dir_mode = mode | 0o100;
                                }
                            }
                            _ => self.error(
                                v.span().start,
                                &ekey,
                                format!("{m:?}: expected an octal mode such as \"0640\" that lets Weft's user read and write"),
                            ),
                        }
                    }
                }
                ("file", "filename") => {
                    if let Some(f) = self.string(entry, &ekey) {
                        if let Some(bad) = unknown_placeholder(&f) {
                            self.error(
                                v.span().start,
                                &ekey,
                                format!(
                                    "unknown placeholder {{{bad}}} (known: {})",
                                    FILENAME_PLACEHOLDERS.join(", ")
                                ),
                            );
                        } else if f.starts_with('/') || f.split('/').any(|p| p == "..") {
                            self.error(v.span().start, &ekey, "must stay inside dir (no leading / or ..)");
                        }
                        filename = f;
                    }
                }
                ("http", "url") => {
                    if let Some(text) = self.string(entry, &ekey) {
                        match text.parse::<http::Uri>() {
                            Ok(u) if matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some() => {
                                url = Some(u)
                            }
                            _ => self.error(
                                v.span().start,
                                &ekey,
                                format!("{text:?} is not an http:// or https:// URL"),
                            ),
                        }
                    }
                }
                ("http", "method") => match self.string(entry, &ekey).as_deref() {
                    Some("POST") => method = HttpMethod::Post,
                    Some("PUT") => method = HttpMethod::Put,
                    Some(_) => self.error(v.span().start, &ekey, "expected POST or PUT"),
                    None => {}
                },
                ("http", "headers") => {
                    if let Some(t) = self.table(v, &ekey) {
                        for h in t.iter() {
                            let hname = h.0.get_ref().as_ref().to_string();
                            let hkey = format!("{ekey}.{hname}");
                            if let Some(value) = self.string(h, &hkey) {
                                if http::HeaderName::from_bytes(hname.as_bytes()).is_err()
                                    || http::HeaderValue::from_str(&value).is_err()
                                {
                                    self.error(h.1.span().start, &hkey, "not a valid HTTP header");
                                } else {
                                    headers.push((hname, value));
                                }
                            }
                        }
                    }
                }
                ("mllp", "address") => {
                    if let Some(a) = self.string(entry, &ekey) {
                        match a.rsplit_once(':').map(|(h, p)| (h, p.parse::<u16>())) {
                            Some((h, Ok(_))) if !h.is_empty() => address = Some(a),
                            _ => self.error(v.span().start, &ekey, format!("{a:?} is not HOST:PORT")),
                        }
                    }
                }
                ("mllp" | "http", "tls") => {
                    tls_at = v.span().start;
                    client_tls = self.client_tls(entry, &ekey);
                }
                ("mllp", "on_error" | "on_reject") => {
                    let policy = match self.string(entry, &ekey).as_deref() {
                        Some("retry") => Some(AckPolicy::Retry),
                        Some("fail") => Some(AckPolicy::Fail),
                        Some(_) => {
                            self.error(v.span().start, &ekey, "expected retry or fail");
                            None
                        }
                        None => None,
                    };
                    if let Some(p) = policy {
                        if kname == "on_error" {
                            on_error = p;
                        } else {
                            on_reject = p;
                        }
                    }
                }
                ("file", _) => self.error(
                    k.span().start,
                    &ekey,
                    "unknown key (expected kind, dir, filename, file_mode, dir_mode, concurrency, max_attempts, max_age_h, ordering, key)",
                ),
                ("http", _) => self.error(
                    k.span().start,
                    &ekey,
                    "unknown key (expected kind, url, method, headers, tls, timeout_s, concurrency, max_attempts, max_age_h, ordering, key)",
                ),
                _ => self.error(
                    k.span().start,
                    &ekey,
                    "unknown key (expected kind, address, timeout_s, on_error, on_reject, tls, concurrency, max_attempts, max_age_h, ordering, key)",
                ),
            }
        }
        let ordering_key = match ordering.as_str() {
            "per-key" => key_path,
            "none" => None,
            other => {
                self.error(
                    ordering_at,
                    &format!("{key}.ordering"),
                    format!("{other:?}: expected per-key or none"),
                );
                None
            }
        };
        for (k, given) in required {
            if !given {
                self.error(at, &format!("{key}.{k}"), "required key is missing");
            }
        }
        let kind = match kind.as_str() {
            "file" => DestinationKind::File(FileDestinationConfig {
                dir: dir?,
                filename,
                file_mode,
                dir_mode,
            }),
            "http" => {
                let url = url?;
                if client_tls.is_some() && url.scheme_str() != Some("https") {
                    self.error(
                        tls_at,
                        &format!("{key}.tls"),
                        "applies to https:// URLs only",
                    );
                }
                DestinationKind::Http(HttpDestinationConfig {
                    url,
                    method,
                    timeout,
                    headers,
                    tls: client_tls,
                })
            }
            _ => DestinationKind::Mllp(MllpDestinationConfig {
                address: address?,
                timeout,
                on_error,
                on_reject,
                tls: client_tls,
            }),
        };
        Some(DestinationConfig {
            name: name.to_string(),
            kind,
            concurrency,
            max_attempts,
            max_age,
            ordering_key,
        })
    }
}

/// The first `{name}` in a template that is not a known placeholder.
fn unknown_placeholder(template: &str) -> Option<String> {
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let end = after.find('}')?;
        let name = &after[..end];
        if !FILENAME_PLACEHOLDERS.contains(&name) {
            return Some(name.to_string());
        }
        rest = &after[end + 1..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_patterns() {
        assert!(glob("ADT^A0*", "ADT^A01"));
        assert!(glob("ADT^*", "ADT^A40"));
        assert!(glob("*", "ORU^R01"));
        assert!(glob("OR?^R01", "ORU^R01"));
        assert!(!glob("ADT^A0*", "ADT^A11"));
        assert!(!glob("ORU^R01", "ORU^R011"));
    }

    #[test]
    fn sources_destinations_and_rules() {
        let text = r#"
[sources.in]
kind = "mllp"
listen = "127.0.0.1:0"
ack = "after-transform"

[sources.bad]
kind = "mllp"
listen = "localhost"
ack = "sometimes"
route = "nope"

[sources.odd]
kind = "carrier-pigeon"

[destinations.files]
kind = "file"
dir = "out"
filename = "{date}/{message_id}.{colour}"

[routes.r]
plugins = []
destinations = ["files", "ghost"]
match = ["ADT^A0*"]
"#;
        let errs = parse(text, "w.toml", Path::new("/tmp")).unwrap_err().0;
        let lines: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        let want = [
            "w.toml:9:10: sources.bad.listen: \"localhost\" is not an address",
            "w.toml:10:7: sources.bad.ack: expected after-commit",
            "w.toml:11:9: sources.bad.route: no route named \"nope\"",
            "w.toml:14:8: sources.odd.kind: unknown source kind \"carrier-pigeon\" (expected mllp or http)",
            "w.toml:19:12: destinations.files.filename: unknown placeholder {colour}",
            "w.toml:23:26: routes.r.destinations: no destination named \"ghost\"",
        ];
        assert_eq!(lines.len(), want.len(), "{lines:#?}");
        for (line, want) in lines.iter().zip(want) {
            assert!(line.starts_with(want), "{line} does not start with {want}");
        }
    }

    #[test]
    fn reports_every_error_with_line_and_key() {
        let text = r#"
[runtime]
cache_dri = "x"
journal_sync = "sometimes"
retain_max_mb = 0
[plugins.a]
path = "does-not-exist.wasm"
deadline_ms = 0
memory_mib = "lots"

[plugins.b]
deadline_ms = 10

[routes.r]
plugins = ["a", "missing"]

[sinks]
"#;
        let errs = parse(text, "weft.toml", Path::new("/nonexistent"))
            .unwrap_err()
            .0;
        let lines: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        let want = [
            "weft.toml:3:1: runtime.cache_dri: unknown key",
            "weft.toml:4:16: runtime.journal_sync: expected \"full\" (fsync every commit) or \"normal\"",
            "weft.toml:5:17: runtime.retain_max_mb: expected a whole number from 1 to",
            "weft.toml:7:8: plugins.a.path: file /nonexistent/does-not-exist.wasm does not exist",
            "weft.toml:8:15: plugins.a.deadline_ms: expected a whole number from 1 to 600000",
            "weft.toml:9:14: plugins.a.memory_mib: expected a whole number",
            "weft.toml:12:1: plugins.b.path: required key is missing",
            "weft.toml:15:17: routes.r.plugins: no plugin named \"missing\" is defined",
            "weft.toml:17:2: sinks: unknown section",
        ];
        assert_eq!(lines.len(), want.len(), "{lines:#?}");
        for (line, want) in lines.iter().zip(want) {
            assert!(line.starts_with(want), "{line} does not start with {want}");
        }
    }

    #[test]
    fn plugin_samples_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("p.wasm"), b"").unwrap();
        std::fs::write(dir.path().join("a01.hl7"), b"MSH|").unwrap();
        let text = r#"
[plugins.p]
path = "p.wasm"
[[plugins.p.samples]]
input = "a01.hl7"
contains = ["Patient"]
[[plugins.p.samples]]
input = "a01.hl7"
expect = "rejected"
"#;
        let c = parse(text, "weft.toml", dir.path()).unwrap();
        let samples = &c.plugins["p"].samples;
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].expect, Expect::Transformed);
        assert_eq!(samples[0].contains, vec!["Patient".to_string()]);
        assert_eq!(samples[0].input, dir.path().join("a01.hl7"));
        assert_eq!(samples[1].expect, Expect::Rejected);

        let bad = r#"
[plugins.p]
path = "p.wasm"
samples = [{ input = "gone.hl7", expect = "maybe", colour = 1 }, { expect = "filtered" }]
"#;
        let errs: Vec<String> = parse(bad, "weft.toml", dir.path())
            .unwrap_err()
            .0
            .iter()
            .map(|e| e.to_string())
            .collect();
        let want = [
            "weft.toml:4:22: plugins.p.samples[0].input: file ",
            "weft.toml:4:43: plugins.p.samples[0].expect: expected \"transformed\"",
            "weft.toml:4:52: plugins.p.samples[0].colour: unknown key",
            "weft.toml:4:66: plugins.p.samples[1].input: required key is missing",
        ];
        assert_eq!(errs.len(), want.len(), "{errs:#?}");
        for (line, want) in errs.iter().zip(want) {
            assert!(line.starts_with(want), "{line} does not start with {want}");
        }
    }

    #[test]
    fn a_token_sent_in_clear_to_another_host_is_warned_about() {
        let text = |url: &str| {
            format!(
                "[destinations.d]\nkind = \"http\"\nurl = \"{url}\"\n[destinations.d.headers]\nAuthorization = \"Bearer x\"\n"
            )
        };
        let warned = |url: &str| {
            parse(&text(url), "weft.toml", Path::new("."))
                .unwrap()
                .warnings()
        };
        assert_eq!(warned("http://fhir.example.org/fhir").len(), 1);
        assert!(warned("https://fhir.example.org/fhir").is_empty());
        assert!(warned("http://127.0.0.1:8090/fhir").is_empty());
        assert!(warned("http://localhost:8090/fhir").is_empty());
    }

    #[test]
    fn syntax_error_has_a_line() {
        let errs = parse("[plugins\n", "w.toml", Path::new(".")).unwrap_err().0;
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].location.line, 1);
    }

    #[test]
    fn embedded_default_parses() {
        // Plugin files may not be built yet; only syntax and keys matter here.
        let errs = match parse(EMBEDDED_DEFAULT, "weft.toml", Path::new("..")) {
            Ok(_) => Vec::new(),
            Err(e) => e.0,
        };
        for e in &errs {
            assert!(e.message.contains("does not exist"), "{e}");
        }
    }
}
