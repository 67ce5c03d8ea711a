//! `[runtime]`: runtime-wide settings.

use std::path::PathBuf;
use std::time::Duration;

use toml::de::DeTable;

use super::check::Checker;
use super::keys::{Key, any};

/// The keys of `[runtime]`.
pub(super) const KEYS: &[Key] = &[
    any("data_dir"),
    any("cache_dir"),
    any("workers"),
    any("shutdown_grace_s"),
    any("retain_days"),
    any("retain_max_mb"),
    any("audit_retain_days"),
    any("max_inflight_mib"),
    any("journal_sync"),
    any("encryption_key"),
    any("previous_encryption_keys"),
];

/// Runtime-wide settings (`[runtime]`).
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// The key file that seals patient data in the journal (bodies,
    /// outputs, reasons; identifiers hashed); `None`: stored as received.
    pub encryption_key: Option<PathBuf>,
    /// Keys the journal was sealed with before `encryption_key` (a
    /// rotation): values under them are still read, and sealed again with
    /// `encryption_key` in the background.
    pub previous_encryption_keys: Vec<PathBuf>,
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
            encryption_key: None,
            previous_encryption_keys: Vec::new(),
        }
    }
}

impl Checker<'_> {
    pub(super) fn runtime(&mut self, t: &DeTable<'_>) -> RuntimeConfig {
        let mut r = RuntimeConfig {
            data_dir: self.base.join("data"),
            ..RuntimeConfig::default()
        };
        let mut previous_at = None;
        for entry in t.iter() {
            let k = entry.0.get_ref().as_ref();
            let key = format!("runtime.{k}");
            if !self.known(KEYS, "", entry.0, &key) {
                continue;
            }
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
                "encryption_key" => {
                    let p = self.path(entry, &key, false);
                    if let Some(p) = &p {
                        self.key_file(entry.1.span().start, &key, p);
                    }
                    r.encryption_key = p;
                }
                "previous_encryption_keys" => {
                    previous_at = Some(entry.1.span().start);
                    for (at, p) in self.string_list(entry.1, &key) {
                        let path = self.base.join(&p);
                        self.key_file(at, &key, &path);
                        r.previous_encryption_keys.push(path);
                    }
                }
                "shutdown_grace_s" => {
                    if let Some(n) = self.integer(entry.1, &key, 1, 3600) {
                        r.shutdown_grace = Duration::from_secs(n);
                    }
                }
                _ => {} // not in the key table: reported by `known` above
            }
        }
        if let (Some(at), None) = (previous_at, &r.encryption_key) {
            self.error(
                at,
                "runtime.previous_encryption_keys",
                "previous keys only open what they sealed: set encryption_key (the key that seals from now on) too",
            );
        }
        r
    }
}

/// How hard a journal commit holds on to the disk (`runtime.journal_sync` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JournalSync {
    /// Every group commit is fsynced before anything is acknowledged: an
    /// acknowledged message survives a crash of the process and of the
    /// machine (power cut). The default.
    #[default]
    Full,
    /// Commits are written but not fsynced (only checkpoints are): an
    /// acknowledged message survives a crash of the process, but a power
    /// cut may lose the last commits. For hardware with a battery-backed
    /// cache, or for measuring what fsync costs.
    Normal,
}

impl std::fmt::Display for JournalSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            JournalSync::Full => "full",
            JournalSync::Normal => "normal",
        })
    }
}

impl Checker<'_> {
    /// A key file must exist, unless it is a systemd credential, which
    /// exists only in the service's own context (`weft check` beside the
    /// service cannot see it).
    fn key_file(&mut self, at: usize, key: &str, path: &std::path::Path) {
        if !path.is_file() && !systemd_credential(path) {
            self.error(at, key, format!("file {} does not exist", path.display()));
        }
    }
}

/// Whether `path` names a credential systemd hands the service
/// (`LoadCredential=`, `LoadCredentialEncrypted=`, a key sealed with the
/// machine's TPM): a file in `$CREDENTIALS_DIRECTORY` or under
/// `/run/credentials/`. Such a file exists only while the service runs, in
/// a directory only root writes, and its user reads it through an ACL
/// (which shows in the mode's group bits): neither its absence beside the
/// service nor its mode is a fault.
pub fn systemd_credential(path: &std::path::Path) -> bool {
    use std::path::Component;
    if !path.is_absolute() || path.components().any(|c| c == Component::ParentDir) {
        return false;
    }
    let given = std::env::var_os("CREDENTIALS_DIRECTORY").filter(|d| !d.is_empty());
    path.starts_with("/run/credentials/")
        || given.is_some_and(|d| path.starts_with(std::path::Path::new(&d)))
}
