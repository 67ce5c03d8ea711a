//! `weft backup` and `weft restore`: a consistent archive of the journal and
//! the site's files while `weft run` serves, and a data directory rebuilt
//! from one (see `weft::backup` for the archive).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use weft::backup::{self, FileEntry, Item, JournalAtBackup, Role};
use weft::journal::audit::{Record, Verdict};
use weft::journal::{Attach, Use};

/// Arguments of `weft backup`.
#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// The archive to write (a new file; a tar). A missing directory is
    /// made (0700).
    dest: PathBuf,
    #[command(flatten)]
    config: super::ConfigArg,
}

/// Arguments of `weft restore`.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The archive `weft backup` wrote.
    archive: PathBuf,
    /// The data directory to rebuild (runtime.data_dir of the config that
    /// will run on it): it must not hold a journal.
    #[arg(long, value_name = "DATA_DIR")]
    to: PathBuf,
    /// Also write the site's files (config, plugins, lookup tables,
    /// samples, trust list) under this directory, to reinstall or compare.
    #[arg(long, value_name = "DIR")]
    site_files: Option<PathBuf>,
}

/// Takes the backup.
pub fn backup(args: BackupArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let config = args.config.load()?;
    let dest = std::path::absolute(&args.dest).unwrap_or(args.dest.clone());
    if let Some(parent) = dest.parent() {
        weft::private::create_dir(parent).with_context(|| parent.display().to_string())?;
    }
    let work = dest.with_extension("snapshot.d");
    if work.exists() {
        bail!(
            "{} exists: a backup to {} is under way or was cut off (remove it if not)",
            work.display(),
            dest.display()
        );
    }
    let mut items = Vec::new();
    let mut journal_state = None;
    let sqlite = matches!(config.journal, weft::config::JournalConfig::Sqlite);
    if sqlite {
        let journal = weft::journal::for_config(&config, Use::Attach(Attach::Existing))?;
        // On the record, and in the copy: the copy's trail ends with it.
        journal.audit_append(&Record::cli(
            "backup",
            Vec::new(),
            format!("to {}", dest.display()),
        ))?;
        let health = journal.health()?;
        weft::private::create_dir(&work).with_context(|| work.display().to_string())?;
        let copy = work.join("journal.db");
        let snapshot = journal.snapshot_to(&copy);
        journal.close();
        if let Err(e) = snapshot {
            let _ = std::fs::remove_dir_all(&work);
            return Err(e.into());
        }
        journal_state = Some(JournalAtBackup {
            pending: health.pending,
            dead: health.dead,
            unfinished: health.unfinished,
        });
        items.push(Item {
            role: Role::Journal,
            source: copy,
            plugins: Vec::new(),
        });
    } else {
        eprintln!(
            "note: the journal is a PostgreSQL database: this archive holds the site's files only; \
             back the database up with the server's tools (pg_dump -Fc, or pg_basebackup with WAL archiving)"
        );
    }
    items.extend(site_items(&config, args.config.file().as_deref()));
    let written = backup::write(&dest, &config.source, journal_state, &items);
    let _ = std::fs::remove_dir_all(&work);
    let manifest = written?;
    let size = std::fs::metadata(&dest).map(|m| m.len()).unwrap_or(0);
    println!(
        "{}: {} files, {:.1} MiB, in {:.1} s",
        dest.display(),
        manifest.files.len(),
        size as f64 / f64::from(1 << 20),
        started.elapsed().as_secs_f64()
    );
    if let Some(j) = &manifest.journal {
        println!(
            "journal as of {}: {} deliveries pending, {} dead, {} messages not yet run",
            manifest.created_at, j.pending, j.dead, j.unfinished
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The site's files a config names: itself, plugins, lookup tables,
/// samples, the trust list, the admin token hashes.
fn site_items(config: &weft::config::Config, file: Option<&Path>) -> Vec<Item> {
    let item = |role, source: &Path, plugins: Vec<String>| Item {
        role,
        source: source.to_path_buf(),
        plugins,
    };
    let mut items = Vec::new();
    if let Some(f) = file {
        let f = std::path::absolute(f).unwrap_or_else(|_| f.to_path_buf());
        items.push(item(Role::Config, &f, Vec::new()));
    }
    for (name, spec) in &config.plugins {
        items.push(item(Role::Plugin, &spec.path, vec![name.clone()]));
        let mut lookups: Vec<&PathBuf> = spec.lookups.values().collect();
        lookups.sort();
        for l in lookups {
            if !items
                .iter()
                .any(|i| i.role == Role::Lookup && &i.source == l)
            {
                items.push(item(Role::Lookup, l, Vec::new()));
            }
        }
        for s in &spec.samples {
            if !items
                .iter()
                .any(|i| i.role == Role::Sample && i.source == s.input)
            {
                items.push(item(Role::Sample, &s.input, Vec::new()));
            }
        }
    }
    if let Some(keys) = &config.trust.keys {
        items.push(item(Role::Trust, keys, Vec::new()));
    }
    if let Some(admin) = &config.admin
        && admin.tokens.is_file()
    {
        items.push(item(Role::AdminTokens, &admin.tokens, Vec::new()));
    }
    items
}

/// Checks the archive whole, then rebuilds the data directory.
pub fn restore(args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let to = std::path::absolute(&args.to).unwrap_or(args.to.clone());
    if to.join("journal.db").exists() {
        bail!(
            "{} already holds a journal: restore into a new or empty data directory \
             (move the old one aside first; nothing was changed)",
            to.display()
        );
    }
    if let Some(parent) = to.parent() {
        weft::journal::refuse_root_in_a_users_dir(parent)?;
    }
    let site = args.site_files.clone();
    let place = |e: &FileEntry| -> Option<PathBuf> {
        match e.role {
            Role::Journal => Some(to.join("journal.db")),
            Role::AdminTokens => Some(to.join("admin-tokens.toml")),
            _ => site.as_ref().map(|s| s.join(&e.path)),
        }
    };
    let manifest = backup::restore(&args.archive, place)
        .with_context(|| format!("restoring {}", args.archive.display()))?;
    println!(
        "{}: taken {} by weft {} from {}; {} files checked",
        args.archive.display(),
        manifest.created_at,
        manifest.weft_version,
        manifest.config,
        manifest.files.len()
    );
    if let Some(site) = &args.site_files {
        println!(
            "site files under {} (sources in the manifest):",
            site.display()
        );
        for f in manifest.files.iter().filter(|f| f.role != Role::Journal) {
            println!(
                "  {}  <-  {}{}",
                f.path,
                f.source.as_deref().unwrap_or("?"),
                if f.plugins.is_empty() {
                    String::new()
                } else {
                    format!(" (plugin {})", f.plugins.join(", "))
                }
            );
        }
    }
    let Some(at_backup) = &manifest.journal else {
        println!(
            "no journal in this archive (a PostgreSQL journal is restored with the server's tools)"
        );
        return Ok(ExitCode::SUCCESS);
    };
    // The restored journal, opened as `weft run` would find it: checked,
    // its audit trail verified, the restore itself put on the record.
    let journal = match weft::journal::attach(&to, Attach::Existing) {
        Ok(j) => j,
        Err(e) => {
            // A journal this weft cannot open (a newer schema: an archive
            // of a newer weft) is not left behind as if restored.
            for written in ["journal.db", "admin-tokens.toml"] {
                let _ = std::fs::remove_file(to.join(written));
            }
            bail!(
                "{e}: the archive was taken by weft {}; nothing was restored into {}",
                manifest.weft_version,
                to.display()
            );
        }
    };
    let health = journal.health()?;
    if let Some(problems) = &health.integrity
        && !problems.is_empty()
    {
        bail!(
            "the restored journal fails its integrity check: {}",
            problems.join("; ")
        );
    }
    match journal.audit_verify()? {
        Verdict::Intact { entries, .. } => println!("audit trail: {entries} entries, intact"),
        Verdict::Broken { seq, reason, .. } => {
            bail!("the restored journal's audit trail is broken at entry {seq}: {reason}")
        }
    }
    journal.audit_append(&Record::cli(
        "restore",
        Vec::new(),
        format!(
            "from {} taken {}",
            args.archive.display(),
            manifest.created_at
        ),
    ))?;
    journal.close();
    println!(
        "{}: journal restored in {:.1} s: {} deliveries pending, {} dead, {} messages not yet run \
         (at the backup: {}, {}, {}); `weft run` with runtime.data_dir = {} delivers what is pending",
        to.display(),
        started.elapsed().as_secs_f64(),
        health.pending,
        health.dead,
        health.unfinished,
        at_backup.pending,
        at_backup.dead,
        at_backup.unfinished,
        to.display()
    );
    Ok(ExitCode::SUCCESS)
}
