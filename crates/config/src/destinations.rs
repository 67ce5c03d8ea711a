//! `[destinations.NAME]`: file, HTTP and MLLP destinations.

use std::path::PathBuf;
use std::time::Duration;

use toml::de::DeTable;

use super::check::Checker;
use super::keys::{Key, any, only};

/// The keys of `[destinations.NAME]`, and which kinds take them.
pub(super) const KEYS: &[Key] = &[
    any("kind"),
    only(&["file"], "dir"),
    only(&["file"], "filename"),
    only(&["file"], "file_mode"),
    only(&["file"], "dir_mode"),
    only(&["file"], "batch"),
    only(&["http"], "url"),
    only(&["http"], "method"),
    only(&["http"], "headers"),
    only(&["mllp"], "address"),
    only(&["http", "mllp"], "timeout_s"),
    only(&["mllp"], "on_error"),
    only(&["mllp"], "on_reject"),
    only(&["http", "mllp"], "tls"),
    any("concurrency"),
    any("max_attempts"),
    any("max_age_h"),
    any("ordering"),
    any("key"),
];

/// One destination (`[destinations.NAME]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationConfig {
    /// Its name.
    pub name: String,
    /// The transport and its settings.
    pub kind: DestinationKind,
    /// How many deliveries may be under way at once (for a file
    /// destination, how many batches).
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
#[derive(Debug, Clone, PartialEq, Eq)]
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
#[derive(Debug, Clone, PartialEq, Eq)]
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
    pub tls: Option<weft_tls::ClientTls>,
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
#[derive(Debug, Clone, PartialEq, Eq)]
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
    pub tls: Option<weft_tls::ClientTls>,
}

/// Settings of a file destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDestinationConfig {
    /// The directory files are written under.
    pub dir: PathBuf,
    /// The file name template: `{date}` (the message's arrival, UTC),
    /// `{hour}` (its hour, `00`–`23`), `{bucket}` (the delivery's number
    /// in the journal divided by 1,000, six digits at least: a directory
    /// per thousand outputs, in order), `{message_id}`, `{control_id}`,
    /// `{type}`, `{n}` (the output's number in its message), `{ext}`.
    pub filename: String,
    /// The mode of each file written (default 0600: Weft's user only).
    pub file_mode: u32,
    /// The mode of each directory made (default 0700).
    pub dir_mode: u32,
    /// Most outputs written and made durable together (default 64; 1:
    /// each alone).
    pub batch: usize,
}

/// The placeholders a file name template may use.
pub const FILENAME_PLACEHOLDERS: &[&str] = &[
    "date",
    "hour",
    "bucket",
    "message_id",
    "control_id",
    "type",
    "n",
    "ext",
];

/// The file name template when none is set: a directory per day, and in
/// it one per thousand outputs, so no directory holds more than a
/// thousand files whatever the rate.
pub const DEFAULT_FILENAME: &str = "{date}/{bucket}/{message_id}-{n}.{ext}";

/// The file destination's batch when none is set.
pub const DEFAULT_FILE_BATCH: usize = 64;

impl Checker<'_> {
    pub(super) fn destination(
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
        // Files: each write under way is a batch, made durable with one
        // sync of the filesystem; a few in flight overlap one batch's
        // sync with the next one's writes.
        let mut concurrency = match kind.as_str() {
            "mllp" => 1,
            _ => 4,
        };
        let mut batch = DEFAULT_FILE_BATCH;
        let mut max_attempts = None;
        let mut max_age = Duration::from_secs(72 * 3600);
        let mut ordering = "per-key".to_string();
        let mut ordering_at = at;
        let mut key_path = weft_hl7::Path::parse("PID-3.1").ok();
        let mut dir = None;
        let mut filename = DEFAULT_FILENAME.to_string();
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
            if !self.known(KEYS, &kind, k, &ekey) {
                continue;
            }
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
                ("file", "batch") => {
                    if let Some(n) = self.integer(v, &ekey, 1, 1024) {
                        batch = n as usize;
                    }
                }
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
                            self.error(
                                v.span().start,
                                &ekey,
                                "must stay inside dir (no leading / or ..)",
                            );
                        }
                        filename = f;
                    }
                }
                ("http", "url") => {
                    if let Some(text) = self.string(entry, &ekey) {
                        match text.parse::<http::Uri>() {
                            Ok(u)
                                if matches!(u.scheme_str(), Some("http" | "https"))
                                    && u.host().is_some() =>
                            {
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
                            _ => {
                                self.error(v.span().start, &ekey, format!("{a:?} is not HOST:PORT"))
                            }
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
                _ => {} // not in the key table: reported by `known` above
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
                batch,
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
