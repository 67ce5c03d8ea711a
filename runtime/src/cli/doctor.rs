//! `weft doctor`: the one command an operator runs when something looks
//! wrong: a checklist of what Weft depends on, a verdict each, and an exit
//! code scripts can act on (0 healthy, 1 warnings, 2 broken).

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;
use weft::journal::audit::Record;
use weft::journal::query::Filter;
use weft::journal::time::iso;
use weft::journal::{Attach, Journal, Use};

/// Arguments of `weft doctor`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: super::ConfigArg,
    #[command(flatten)]
    api: super::api::ApiArgs,
    /// One JSON object (every check with its verdict) instead of text.
    #[arg(long)]
    json: bool,
    /// Do not load the plugins and run their samples (the slow part: each
    /// plugin is compiled).
    #[arg(long)]
    no_plugins: bool,
}

/// A certificate closer than this to its end is a warning.
const CERT_WARN_DAYS: i64 = 30;
/// Less free space than this beside the journal is broken: a commit may
/// fail at any moment.
const DISK_FAIL_BYTES: u64 = 256 << 20;
/// A pending delivery older than this means a destination is stuck.
const OLDEST_PENDING_WARN_S: i64 = 3600;
/// How many recent messages the clock check reads MSH-7 of.
const CLOCK_SAMPLE: usize = 50;
/// A sender's MSH-7 this far after the moment its message arrived: one of
/// the two clocks is wrong.
const CLOCK_AHEAD_WARN_S: i64 = 300;
/// Messages arriving this long after their MSH-7, as the median: a clock
/// behind, or a sender's queue backing up.
const CLOCK_LAG_WARN_S: i64 = 3600;
/// How long a port may take to answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// One line of the checklist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
enum Verdict {
    /// As it should be.
    Ok,
    /// Not checked here (why is in the detail).
    Skip,
    /// Works, but needs a look.
    Warn,
    /// Broken: messages are or will be affected.
    Fail,
}

impl Verdict {
    fn label(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Skip => "skip",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
        }
    }
}

#[derive(Debug, Serialize)]
struct Check {
    check: String,
    verdict: Verdict,
    detail: String,
}

#[derive(Default)]
struct Checklist(Vec<Check>);

impl Checklist {
    fn add(&mut self, check: impl Into<String>, verdict: Verdict, detail: impl Into<String>) {
        self.0.push(Check {
            check: check.into(),
            verdict,
            detail: detail.into(),
        });
    }

    fn worst(&self) -> Verdict {
        self.0
            .iter()
            .map(|c| c.verdict)
            .filter(|v| *v != Verdict::Skip)
            .max()
            .unwrap_or(Verdict::Ok)
    }
}

/// Runs every check and prints the checklist.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut list = Checklist::default();
    let source = args
        .config
        .file()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "<embedded weft.toml>".into());
    match args.config.load() {
        Ok(config) => {
            list.add(
                "config",
                Verdict::Ok,
                format!(
                    "{}: {} sources, {} routes, {} destinations, {} plugins",
                    config.source,
                    config.sources.len(),
                    config.routes.len(),
                    config.destinations.len(),
                    config.plugins.len()
                ),
            );
            for w in config.warnings() {
                list.add("config", Verdict::Warn, w);
            }
            checks(&args, &config, &mut list);
        }
        Err(e) => list.add("config", Verdict::Fail, e.to_string()),
    }
    Ok(report(&source, &list, args.json))
}

fn checks(args: &Args, config: &weft::config::Config, list: &mut Checklist) {
    if args.no_plugins {
        list.add("plugins", Verdict::Skip, "--no-plugins");
    } else {
        plugins(config, list);
    }
    let journal = match weft::journal::for_config(config, Use::Attach(Attach::Existing)) {
        Ok(j) => Some(j),
        Err(e) => {
            list.add("journal", Verdict::Fail, e.to_string());
            None
        }
    };
    if let Some(j) = &journal {
        journal_health(&**j, config, list);
    }
    disk(config, journal.as_deref(), list);
    encryption(config, journal.as_deref(), list);
    certificates(config, list);
    permissions(config, list);
    if let Some(j) = &journal {
        clock(&**j, list);
        j.close();
    }
    let admin_listening = ports(config, list);
    destinations(config, list);
    last_reload(args, config, admin_listening, list);
}

fn plugins(config: &weft::config::Config, list: &mut Checklist) {
    match super::check::plugin_verdicts(config) {
        Ok(verdicts) => {
            for v in verdicts {
                let name = format!("plugin {}", v.name);
                match v.result {
                    Ok(summary) => list.add(&name, Verdict::Ok, summary),
                    Err(problem) => list.add(&name, Verdict::Fail, problem),
                }
                for w in v.warnings {
                    list.add(&name, Verdict::Warn, w);
                }
            }
        }
        Err(e) => list.add("plugins", Verdict::Fail, format!("{e:#}")),
    }
}

/// The store's own integrity check, and the work it holds.
fn journal_health(journal: &dyn Journal, config: &weft::config::Config, list: &mut Checklist) {
    let health = match journal.health() {
        Ok(h) => h,
        Err(e) => {
            list.add("journal", Verdict::Fail, e.to_string());
            return;
        }
    };
    match &health.integrity {
        Some(problems) if problems.is_empty() => list.add(
            "journal integrity",
            Verdict::Ok,
            format!("{}: quick_check found nothing wrong", journal.location()),
        ),
        Some(problems) => list.add(
            "journal integrity",
            Verdict::Fail,
            format!(
                "{}: quick_check: {} (restore the last backup: see the README)",
                journal.location(),
                problems
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ),
        None => list.add(
            "journal integrity",
            Verdict::Skip,
            format!(
                "{}: PostgreSQL's storage is checked by the server's own tools (amcheck, pg_checksums)",
                journal.location()
            ),
        ),
    }
    let now = weft::journal::now_ms();
    let oldest_s = health.oldest_pending.map(|t| (now - t) / 1000);
    let mut detail = format!("{} deliveries pending", health.pending);
    if let (Some(s), Some(t)) = (oldest_s, health.oldest_pending) {
        detail.push_str(&format!(
            ", the oldest for a message received {} ({} ago)",
            iso(t),
            age(s)
        ));
    }
    if health.unfinished > 0 {
        detail.push_str(&format!(
            "; {} messages not yet run through their route",
            health.unfinished
        ));
    }
    let stuck = oldest_s.is_some_and(|s| s > OLDEST_PENDING_WARN_S);
    list.add(
        "backlog",
        if stuck { Verdict::Warn } else { Verdict::Ok },
        if stuck {
            format!(
                "{detail}: a destination is not taking them (weft messages list --status pending)"
            )
        } else {
            detail
        },
    );
    if health.dead > 0 {
        list.add(
            "dead letters",
            Verdict::Warn,
            format!(
                "{} deliveries given up on: `weft messages list --status dead`, then `weft messages resend --dead` once the destination is fixed",
                health.dead
            ),
        );
    } else {
        list.add("dead letters", Verdict::Ok, "none");
    }
    if config.runtime.retain.is_none() && config.runtime.retain_max_bytes.is_none() {
        list.add(
            "retention",
            Verdict::Warn,
            "neither runtime.retain_days nor runtime.retain_max_mb is set: the journal grows until the disk is full",
        );
    }
}

/// Free space where the journal lives, against its size and what
/// retention lets it grow to.
fn disk(config: &weft::config::Config, journal: Option<&dyn Journal>, list: &mut Checklist) {
    if !matches!(config.journal, weft::config::JournalConfig::Sqlite) {
        list.add(
            "disk",
            Verdict::Skip,
            "the journal is on the PostgreSQL server: its disk is the DBA's to watch",
        );
        return;
    }
    let dir = &config.runtime.data_dir;
    let Some((free, total)) = free_space(dir) else {
        list.add(
            "disk",
            Verdict::Fail,
            format!(
                "{}: cannot read the file system's free space",
                dir.display()
            ),
        );
        return;
    };
    let size = journal
        .and_then(|j| j.disk_bytes().ok())
        .unwrap_or_else(|| {
            // Not opened (damaged, refused): the files' sizes.
            ["journal.db", "journal.db-wal", "journal.db-shm"]
                .iter()
                .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
                .map(|m| m.len())
                .sum()
        });
    let mut detail = format!(
        "{} free of {} on {}; the journal takes {}",
        mib(free),
        mib(total),
        dir.display(),
        mib(size)
    );
    let verdict = if free < DISK_FAIL_BYTES || free < total / 50 {
        detail.push_str(": almost full, commits will fail (senders get AE, nothing is lost)");
        Verdict::Fail
    } else if let Some(max) = config.runtime.retain_max_bytes
        && max.saturating_sub(size) > free
    {
        detail.push_str(&format!(
            ": runtime.retain_max_mb lets it grow by {} more than there is room for",
            mib(max.saturating_sub(size) - free)
        ));
        Verdict::Warn
    } else if free < size {
        detail.push_str(": less free than the journal's size (a backup or a VACUUM needs as much)");
        Verdict::Warn
    } else {
        match config.runtime.retain_max_bytes {
            Some(max) => detail.push_str(&format!(", at most {} by retain_max_mb", mib(max))),
            None => detail.push_str(", no size cap (retain_max_mb)"),
        }
        Verdict::Ok
    };
    list.add("disk", verdict, detail);
}

/// Certificates of every TLS setting: days left.
fn certificates(config: &weft::config::Config, list: &mut Checklist) {
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for (name, s) in &config.sources {
        let tls = match &s.kind {
            weft::config::SourceKind::Mllp(m) => m.tls.as_ref(),
            weft::config::SourceKind::Http(h) => h.tls.as_ref(),
        };
        if let Some(t) = tls {
            files.push((format!("sources.{name}.tls.cert"), t.cert.clone()));
            if let Some(ca) = &t.client_ca {
                files.push((format!("sources.{name}.tls.client_ca"), ca.clone()));
            }
        }
    }
    for (name, d) in &config.destinations {
        let tls = match &d.kind {
            weft::config::DestinationKind::Http(h) => h.tls.as_ref(),
            weft::config::DestinationKind::Mllp(m) => m.tls.as_ref(),
            weft::config::DestinationKind::File(_) => None,
        };
        if let Some(t) = tls {
            files.extend(
                t.ca.clone()
                    .map(|p| (format!("destinations.{name}.tls.ca"), p)),
            );
            files.extend(
                t.cert
                    .clone()
                    .map(|p| (format!("destinations.{name}.tls.cert"), p)),
            );
        }
    }
    if let Some(t) = config.admin.as_ref().and_then(|a| a.tls.as_ref()) {
        files.push(("admin.tls.cert".into(), t.cert.clone()));
    }
    if let weft::config::JournalConfig::Postgres(pg) = &config.journal
        && let Some(t) = &pg.tls
    {
        files.extend(t.ca.clone().map(|p| ("journal.tls.ca".to_string(), p)));
        files.extend(t.cert.clone().map(|p| ("journal.tls.cert".to_string(), p)));
    }
    if files.is_empty() {
        list.add("certificates", Verdict::Ok, "no TLS configured");
        return;
    }
    let now_s = weft::journal::now_ms() / 1000;
    for (key, path) in files {
        let check = format!("certificate {key}");
        match weft::tls::earliest_expiry(&path) {
            Ok(at) => {
                let days = (at - now_s).div_euclid(86_400);
                let when = iso(at.saturating_mul(1000));
                let (verdict, detail) = if at <= now_s {
                    (
                        Verdict::Fail,
                        format!("{}: expired on {when}", path.display()),
                    )
                } else if days < CERT_WARN_DAYS {
                    (
                        Verdict::Warn,
                        format!(
                            "{}: expires on {when}, in {days} days: renew it (a reload picks up the new file)",
                            path.display()
                        ),
                    )
                } else {
                    (
                        Verdict::Ok,
                        format!("{}: expires on {when}, in {days} days", path.display()),
                    )
                };
                list.add(check, verdict, detail);
            }
            Err(e) => list.add(check, Verdict::Fail, e.to_string()),
        }
    }
}

/// Who may read the secrets and the journal, and who may change what runs.
/// Patient data at rest: the key, and whether the journal is sealed with
/// it (a rotation or a first key still being applied is a warning).
fn encryption(config: &weft::config::Config, journal: Option<&dyn Journal>, list: &mut Checklist) {
    use weft::journal::sealed::{KEY_ID, SEALED_ALL};
    let setting = |key: &str| journal.and_then(|j| j.setting(key).ok().flatten());
    let stored = setting(KEY_ID);
    let Some(path) = &config.runtime.encryption_key else {
        match stored {
            Some(id) => list.add(
                "encryption",
                Verdict::Fail,
                format!("the journal is encrypted with key {id}, and no encryption_key is set: weft run refuses it"),
            ),
            None => list.add(
                "encryption",
                Verdict::Ok,
                "the journal is not encrypted (no encryption_key): patient data at rest is as safe as the disk",
            ),
        }
        return;
    };
    match std::fs::File::open(path) {
        Err(e) if weft::config::systemd_credential(path) => {
            return list.add(
                "encryption",
                Verdict::Skip,
                format!(
                    "{}: a systemd credential, there only for the service ({e}); its start checks it",
                    path.display()
                ),
            );
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return list.add(
                "encryption",
                Verdict::Skip,
                format!(
                    "{}: not readable by this user (run as the service's user)",
                    path.display()
                ),
            );
        }
        _ => {}
    }
    let key = match weft::journal::seal::JournalKey::load(path) {
        Ok(k) => k,
        Err(e) => return list.add("encryption", Verdict::Fail, e.to_string()),
    };
    let id = key.id();
    let previous: Vec<String> = config
        .runtime
        .previous_encryption_keys
        .iter()
        .filter_map(|p| {
            weft::journal::seal::JournalKey::load(p)
                .ok()
                .map(|k| k.id())
        })
        .collect();
    match stored {
        None => list.add(
            "encryption",
            Verdict::Warn,
            format!("key {id} is set, and the journal is not sealed yet: the next weft run seals it"),
        ),
        Some(s) if s == id && setting(SEALED_ALL).as_deref() == Some(id.as_str()) => {
            if previous.is_empty() {
                list.add("encryption", Verdict::Ok, format!("every value sealed with key {id}"));
            } else {
                list.add(
                    "encryption",
                    Verdict::Warn,
                    format!(
                        "every value is sealed with key {id}: previous_encryption_keys can be removed and those keys destroyed"
                    ),
                );
            }
        }
        Some(s) if s == id => list.add(
            "encryption",
            Verdict::Warn,
            format!("key {id}: values sealed with an earlier key (or none) remain; weft run seals them again in the background"),
        ),
        Some(s) if previous.contains(&s) => list.add(
            "encryption",
            Verdict::Warn,
            format!("the journal is sealed with key {s}: the next weft run rotates it to key {id}"),
        ),
        Some(s) => list.add(
            "encryption",
            Verdict::Fail,
            format!("{} is key {id}, and the journal is sealed with key {s}: the wrong key", path.display()),
        ),
    }
}

fn permissions(config: &weft::config::Config, list: &mut Checklist) {
    let data_dir = &config.runtime.data_dir;
    let mut secret: Vec<PathBuf> = Vec::new();
    if matches!(config.journal, weft::config::JournalConfig::Sqlite) {
        secret.push(data_dir.clone());
        secret.push(data_dir.join("journal.db"));
    }
    if let Some(admin) = &config.admin {
        secret.push(admin.tokens.clone());
    }
    secret.push(weft::admin::tokens::local_token_path(data_dir));
    // Not systemd's credentials: systemd gives the service access by an
    // ACL, which shows in the group bits.
    let keys = config.runtime.encryption_key.iter();
    secret.extend(
        keys.chain(&config.runtime.previous_encryption_keys)
            .filter(|p| !weft::config::systemd_credential(p))
            .cloned(),
    );
    let mut problems = Vec::new();
    let mut looked = 0;
    for path in &secret {
        if let Some(mode) = mode_of(path) {
            looked += 1;
            if mode & 0o077 != 0 {
                problems.push(format!(
                    "{} is {:o}: group or others can read it (chmod go-rwx)",
                    path.display(),
                    mode & 0o777
                ));
            }
        }
    }
    // What decides the code that runs: writable by others, it is theirs.
    let mut code: Vec<PathBuf> = config.plugins.values().map(|p| p.path.clone()).collect();
    code.extend(config.trust.keys.clone());
    for path in &code {
        if let Some(mode) = mode_of(path) {
            looked += 1;
            if mode & 0o022 != 0 {
                problems.push(format!(
                    "{} is {:o}: group or others can change it, and with it what runs (chmod go-w)",
                    path.display(),
                    mode & 0o777
                ));
            }
        }
    }
    if problems.is_empty() {
        list.add(
            "permissions",
            Verdict::Ok,
            format!(
                "{looked} files: the journal and admin tokens readable by their owner only; plugins and the trust list writable by their owner only"
            ),
        );
    } else {
        for p in problems {
            list.add("permissions", Verdict::Warn, p);
        }
    }
}

/// Senders' clocks (MSH-7) against the moment their messages arrived.
fn clock(journal: &dyn Journal, list: &mut Checklist) {
    let recent = match journal.list(&Filter {
        limit: CLOCK_SAMPLE,
        ..Filter::default()
    }) {
        Ok(r) => r,
        Err(e) => {
            list.add(
                "clock",
                Verdict::Skip,
                format!("recent messages not read: {e}"),
            );
            return;
        }
    };
    let mut skews = Vec::new();
    let mut without_offset = 0;
    let mut invalid = 0;
    let mut read = Vec::new();
    for m in &recent {
        let Ok(Some(detail)) = journal.show(&m.id) else {
            continue;
        };
        if detail.content_type != "application/hl7-v2" {
            continue;
        }
        read.push(m.id.clone());
        let Ok(msg) = weft_hl7::Message::parse(&detail.body) else {
            continue;
        };
        let Ok(Some(msh7)) = msg.get("MSH-7") else {
            continue;
        };
        match weft_hl7::datetime::DateTime::parse(&msh7).map(|t| t.unix_seconds()) {
            Ok(Some(sent)) => skews.push(m.received_at / 1000 - sent),
            Ok(None) => without_offset += 1,
            Err(_) => invalid += 1,
        }
    }
    if !read.is_empty() {
        // The bodies were opened (for MSH-7 alone): on the record.
        let n = read.len();
        if let Err(e) = journal.audit_append(&Record::cli(
            "doctor.clock",
            read,
            format!("read MSH-7 of {n} messages"),
        )) {
            list.add(
                "clock",
                Verdict::Warn,
                format!("the audit trail refused the entry for reading MSH-7: {e}"),
            );
        }
    }
    let mut uncompared = Vec::new();
    if without_offset > 0 {
        uncompared.push(format!("{without_offset} without a UTC offset in MSH-7"));
    }
    if invalid > 0 {
        uncompared.push(format!("{invalid} whose MSH-7 is not a valid time"));
    }
    let unzoned = if uncompared.is_empty() {
        String::new()
    } else {
        format!(" ({}: not compared)", uncompared.join(", "))
    };
    if skews.is_empty() {
        list.add(
            "clock",
            Verdict::Skip,
            format!("no recent HL7 v2 message with a full MSH-7 time{unzoned}"),
        );
        return;
    }
    skews.sort_unstable();
    let median = skews[skews.len() / 2];
    let ahead = skews.iter().filter(|s| **s < -CLOCK_AHEAD_WARN_S).count();
    let n = skews.len();
    let (verdict, detail) = if ahead > 0 {
        (
            Verdict::Warn,
            format!(
                "{ahead} of {n} recent messages were sent (MSH-7) more than {} min after they arrived here: this machine's clock or the sender's is wrong (timedatectl){unzoned}",
                CLOCK_AHEAD_WARN_S / 60
            ),
        )
    } else if median > CLOCK_LAG_WARN_S {
        (
            Verdict::Warn,
            format!(
                "recent messages arrive {} after their MSH-7 (median of {n}): a sender's clock is behind, its queue is backing up, or old messages were sent again{unzoned}",
                age(median)
            ),
        )
    } else {
        (
            Verdict::Ok,
            format!(
                "recent messages arrive {} s after their MSH-7 (median of {n}){unzoned}",
                median
            ),
        )
    };
    list.add("clock", verdict, detail);
}

/// Each listener answers a connection. True when the admin API's does.
fn ports(config: &weft::config::Config, list: &mut Checklist) -> bool {
    let mut listeners: Vec<(String, SocketAddr)> = config
        .sources
        .iter()
        .map(|(name, s)| {
            let addr = match &s.kind {
                weft::config::SourceKind::Mllp(m) => m.listen,
                weft::config::SourceKind::Http(h) => h.listen,
            };
            (format!("source {name}"), addr)
        })
        .collect();
    if let Some(a) = &config.admin {
        listeners.push(("admin API".into(), a.listen));
    }
    let mut admin_listening = false;
    for (what, addr) in listeners {
        if addr.port() == 0 {
            list.add(
                format!("port {addr}"),
                Verdict::Skip,
                format!("{what}: port 0, chosen by the system at each start"),
            );
            continue;
        }
        let reach = super::api::reachable(addr);
        let up = TcpStream::connect_timeout(&reach, CONNECT_TIMEOUT).is_ok();
        if what == "admin API" {
            admin_listening = up;
        }
        if up {
            list.add(
                format!("port {addr}"),
                Verdict::Ok,
                format!("{what} listening"),
            );
        } else {
            list.add(
                format!("port {addr}"),
                Verdict::Fail,
                format!("{what}: nothing listens: is `weft run` running? (systemctl status weft; journalctl -u weft)"),
            );
        }
    }
    admin_listening
}

/// Each network destination accepts a connection (nothing is sent).
fn destinations(config: &weft::config::Config, list: &mut Checklist) {
    use std::net::ToSocketAddrs;
    for (name, d) in &config.destinations {
        let target = match &d.kind {
            weft::config::DestinationKind::Mllp(m) => m.address.clone(),
            weft::config::DestinationKind::Http(h) => {
                let host = h.url.host().unwrap_or_default();
                let https = h.url.scheme_str() == Some("https");
                let port = h.url.port_u16().unwrap_or(if https { 443 } else { 80 });
                format!(
                    "{}:{port}",
                    host.trim_start_matches('[').trim_end_matches(']')
                )
            }
            weft::config::DestinationKind::File(_) => continue,
        };
        let check = format!("destination {name}");
        let addrs: Vec<SocketAddr> = match target.to_socket_addrs() {
            Ok(a) => a.collect(),
            Err(e) => {
                list.add(
                    check,
                    Verdict::Warn,
                    format!("{target}: cannot resolve: {e}; deliveries wait and are retried"),
                );
                continue;
            }
        };
        if addrs
            .iter()
            .any(|a| TcpStream::connect_timeout(a, CONNECT_TIMEOUT).is_ok())
        {
            list.add(check, Verdict::Ok, format!("{target} accepts connections"));
        } else {
            list.add(
                check,
                Verdict::Warn,
                format!("{target}: nothing accepts a connection; deliveries wait and are retried"),
            );
        }
    }
}

/// The running weft's last reload and what came of it.
fn last_reload(
    args: &Args,
    config: &weft::config::Config,
    admin_listening: bool,
    list: &mut Checklist,
) {
    if config.admin.is_none() {
        list.add("last reload", Verdict::Skip, "no [admin] section to ask");
        return;
    }
    if !admin_listening {
        list.add(
            "last reload",
            Verdict::Skip,
            "the admin API does not answer",
        );
        return;
    }
    let asked = (|| -> anyhow::Result<weft::admin::json::PluginsStatus> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let api = rt.block_on(async { super::api::Api::new(&args.api, config) })?;
        let value = rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(5), api.request("GET", "/plugins", None))
                .await
                .map_err(|_| anyhow::anyhow!("the admin API took more than 5 s"))?
        })?;
        Ok(serde_json::from_value(value)?)
    })();
    let status = match asked {
        Ok(s) => s,
        Err(e) => {
            list.add(
                "last reload",
                Verdict::Warn,
                format!("cannot ask the running weft: {e:#}"),
            );
            return;
        }
    };
    let Some(r) = status.last_reload else {
        list.add(
            "last reload",
            Verdict::Ok,
            "none since the start (systemctl reload weft, or a changed file, reloads)",
        );
        return;
    };
    let at = r.at.clone().unwrap_or_default();
    let mut refused: Vec<String> = r
        .refused
        .iter()
        .map(|p| format!("plugin {} refused: {}", p.plugin, p.reason))
        .collect();
    if let Some(why) = &r.config_refused {
        refused.push(format!("config refused: {why}"));
    }
    if refused.is_empty() {
        list.add(
            "last reload",
            Verdict::Ok,
            format!(
                "{at}: {} plugin versions swapped in{}",
                r.swapped.len(),
                if r.config_applied {
                    ", config applied"
                } else {
                    ""
                }
            ),
        );
    } else {
        list.add(
            "last reload",
            Verdict::Warn,
            format!(
                "{at}: {} (the versions before it still serve)",
                refused.join("; ")
            ),
        );
    }
    if !r.needs_restart.is_empty() {
        list.add(
            "last reload",
            Verdict::Warn,
            format!(
                "changed, applied only at the next start: {}",
                r.needs_restart.join(", ")
            ),
        );
    }
}

fn report(source: &str, list: &Checklist, json: bool) -> ExitCode {
    let worst = list.worst();
    let code: u8 = match worst {
        Verdict::Ok | Verdict::Skip => 0,
        Verdict::Warn => 1,
        Verdict::Fail => 2,
    };
    let word = match worst {
        Verdict::Ok | Verdict::Skip => "healthy",
        Verdict::Warn => "warnings",
        Verdict::Fail => "broken",
    };
    if json {
        let body = serde_json::json!({
            "config": source,
            "verdict": word,
            "exit_code": code,
            "checks": list.0,
        });
        println!("{body}");
    } else {
        println!("weft doctor: {source}");
        let width = list.0.iter().map(|c| c.check.len()).max().unwrap_or(0);
        for c in &list.0 {
            println!(
                "  {:<4}  {:<width$}  {}",
                c.verdict.label(),
                c.check,
                c.detail
            );
        }
        let count = |v| list.0.iter().filter(|c| c.verdict == v).count();
        println!(
            "{word}: {} ok, {} warnings, {} failures, {} skipped (exit {code})",
            count(Verdict::Ok),
            count(Verdict::Warn),
            count(Verdict::Fail),
            count(Verdict::Skip)
        );
    }
    ExitCode::from(code)
}

/// Free and total bytes of the file system holding `dir` (or its nearest
/// existing parent).
fn free_space(dir: &Path) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let abs = std::path::absolute(dir).ok()?;
        let existing = abs.ancestors().find(|d| d.exists())?;
        let c = std::ffi::CString::new(existing.as_os_str().as_bytes()).ok()?;
        // SAFETY: `c` is a valid NUL-terminated path; statvfs writes only
        // into the struct given.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
            return None;
        }
        let block = st.f_frsize as u64;
        Some((st.f_bavail as u64 * block, st.f_blocks as u64 * block))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

/// A file's permission bits, when it exists.
fn mode_of(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).ok().map(|m| m.permissions().mode())
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

fn mib(bytes: u64) -> String {
    if bytes >= 10 << 30 {
        format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
    } else {
        format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
    }
}

fn age(seconds: i64) -> String {
    match seconds {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}
