//! Backup archives: one tar holding a consistent copy of the journal, the
//! site's configuration, its plugins (named by sha256), lookup tables,
//! trust list and admin token hashes, with a manifest of every file's
//! sha256 and size; and their restore, which checks every byte before it
//! writes anything and refuses a damaged archive naming the file.
//!
//! The archive's layout: `manifest.json`, `manifest.sha256` (the sha256 of
//! the manifest), then each file the manifest lists, in its order. Nothing
//! else is accepted on restore: no entry is unpacked by the name the
//! archive gives it; each goes where the caller places its role.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The archive format this runtime writes and reads.
pub const FORMAT: &str = "weft-backup/1";
/// The manifest's name in the archive (its first entry).
pub const MANIFEST: &str = "manifest.json";
/// The manifest's own sha256 (the second entry).
pub const MANIFEST_SUM: &str = "manifest.sha256";
/// The largest manifest read on restore.
const MAX_MANIFEST: u64 = 4 << 20;
/// The most files an archive may list.
const MAX_FILES: usize = 10_000;

/// What a file in the archive is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// The SQLite journal, copied in one read transaction.
    Journal,
    /// The configuration file.
    Config,
    /// A plugin component (by sha256).
    Plugin,
    /// A lookup table.
    Lookup,
    /// A plugin's check sample.
    Sample,
    /// The trust list of plugin signing keys.
    Trust,
    /// The admin API's token file (hashes only; never the local token).
    AdminTokens,
}

/// One file of an archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Its name in the archive.
    pub path: String,
    /// What it is.
    pub role: Role,
    /// Where it was read from (for the operator restoring a site).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The plugins it is the component of.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<String>,
    /// The sha256 of its bytes (hex).
    pub sha256: String,
    /// Its size.
    pub bytes: u64,
}

/// The journal's state when the copy was taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalAtBackup {
    /// Deliveries waiting to be made.
    pub pending: u64,
    /// Deliveries given up on.
    pub dead: u64,
    /// Messages received and not yet run through their route.
    pub unfinished: u64,
}

/// What an archive holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// The version of the weft that wrote it.
    pub weft_version: String,
    /// When (ISO 8601, UTC).
    pub created_at: String,
    /// The configuration file it was taken with.
    pub config: String,
    /// The journal's counts at the copy; `None` when the archive holds no
    /// journal (a PostgreSQL journal is backed up by the server's tools).
    pub journal: Option<JournalAtBackup>,
    /// Every file, in archive order.
    pub files: Vec<FileEntry>,
}

/// A file to put in an archive.
#[derive(Debug, Clone)]
pub struct Item {
    /// What it is.
    pub role: Role,
    /// Where to read it.
    pub source: PathBuf,
    /// The plugins it is the component of (for [`Role::Plugin`]).
    pub plugins: Vec<String>,
}

/// Why a backup or a restore failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The archive is not what its manifest says: nothing was restored.
    #[error("damaged archive: {file}: {reason}; nothing was restored")]
    Damaged {
        /// The file in the archive that is wrong.
        file: String,
        /// How.
        reason: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn damaged(file: &str, reason: impl Into<String>) -> BackupError {
    BackupError::Damaged {
        file: file.to_string(),
        reason: reason.into(),
    }
}

/// The sha256 and size of a file, read in blocks.
fn digest_file(path: &Path) -> Result<(String, u64), BackupError> {
    let mut f = File::open(path).map_err(io(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hex(&hasher.finalize()), total))
}

fn hex(bytes: &[u8]) -> String {
    crate::plugins::engine::hex(bytes)
}

/// The name a file gets in the archive: plugins by sha256 (the same
/// component named twice is stored once), others by role and an index.
fn archive_name(item: &Item, sha256: &str, n: usize) -> String {
    let base = item
        .source
        .file_name()
        .map(|f| {
            f.to_string_lossy()
                .replace(|c: char| !c.is_ascii_graphic() || c == '/', "_")
        })
        .unwrap_or_else(|| "file".into());
    match item.role {
        Role::Journal => "journal.db".into(),
        Role::Config => "config/weft.toml".into(),
        Role::AdminTokens => "admin-tokens.toml".into(),
        Role::Plugin => format!("plugins/{sha256}.wasm"),
        Role::Lookup => format!("lookups/{n}-{base}"),
        Role::Sample => format!("samples/{n}-{base}"),
        Role::Trust => format!("trust/{n}-{base}"),
    }
}

/// Writes the archive `dest` (replacing nothing: it must not exist) from
/// `items`, the manifest first. Written to `dest.partial`, synced, then
/// renamed: an interrupted backup leaves no archive that looks whole.
pub fn write(
    dest: &Path,
    config: &str,
    journal: Option<JournalAtBackup>,
    items: &[Item],
) -> Result<Manifest, BackupError> {
    if dest.exists() {
        return Err(BackupError::Io {
            path: dest.display().to_string(),
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "exists: give a new file name",
            ),
        });
    }
    let mut files: Vec<(FileEntry, &Path)> = Vec::new();
    for (n, item) in items.iter().enumerate() {
        let (sha256, bytes) = digest_file(&item.source)?;
        let path = archive_name(item, &sha256, n);
        if let Some((entry, _)) = files.iter_mut().find(|(e, _)| e.path == path) {
            entry.plugins.extend(item.plugins.iter().cloned());
            continue;
        }
        files.push((
            FileEntry {
                path,
                role: item.role,
                source: Some(item.source.display().to_string()),
                plugins: item.plugins.clone(),
                sha256,
                bytes,
            },
            &item.source,
        ));
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        weft_version: env!("CARGO_PKG_VERSION").into(),
        created_at: crate::journal::time::iso(crate::journal::now_ms()),
        config: config.into(),
        journal,
        files: files.iter().map(|(e, _)| e.clone()).collect(),
    };
    let text = serde_json::to_vec_pretty(&manifest).map_err(|e| BackupError::Io {
        path: MANIFEST.into(),
        source: std::io::Error::other(e),
    })?;
    let sum = format!("{}\n", hex(&Sha256::digest(&text)));

    let mut partial = dest.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let written = (|| -> Result<(), BackupError> {
        let file = crate::private::create_file(&partial).map_err(io(&partial))?;
        let mut tar = tar::Builder::new(BufWriter::new(file));
        tar.mode(tar::HeaderMode::Deterministic);
        let mut append = |name: &str, bytes: u64, reader: &mut dyn Read| {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes);
            header.set_mode(0o600);
            header.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut header, name, reader)
                .map_err(io(&partial))
        };
        append(MANIFEST, text.len() as u64, &mut text.as_slice())?;
        append(MANIFEST_SUM, sum.len() as u64, &mut sum.as_bytes())?;
        for (entry, source) in &files {
            let f = File::open(source).map_err(io(source))?;
            // Exactly the bytes hashed: a file that grew since is cut to
            // them, and one that shrank fails the append.
            append(&entry.path, entry.bytes, &mut f.take(entry.bytes))?;
        }
        let file = tar
            .into_inner()
            .map_err(io(&partial))?
            .into_inner()
            .map_err(|e| BackupError::Io {
                path: partial.display().to_string(),
                source: e.into_error(),
            })?;
        file.sync_all().map_err(io(&partial))?;
        Ok(())
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    // Checked against the manifest as a restore would, before it is
    // called an archive.
    if let Err(e) = restore(&partial, |_| None) {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    std::fs::rename(&partial, dest).map_err(io(dest))?;
    Ok(manifest)
}

/// Reads the archive, checks every file against the manifest, and writes
/// each to where `place` puts its entry (`None`: checked, not written).
/// Every file is written next to its place first (`.restoring`) and moved
/// into place only once the whole archive has checked out: a damaged
/// archive leaves nothing behind.
pub fn restore(
    archive: &Path,
    place: impl Fn(&FileEntry) -> Option<PathBuf>,
) -> Result<Manifest, BackupError> {
    let file = File::open(archive).map_err(io(archive))?;
    let mut tar = tar::Archive::new(std::io::BufReader::new(file));
    let mut entries = tar
        .entries()
        .map_err(|e| damaged(MANIFEST, format!("not a tar archive: {e}")))?;
    let manifest_text = read_small(&mut next_entry(&mut entries, MANIFEST)?, MANIFEST)?;
    let sum_text = read_small(&mut next_entry(&mut entries, MANIFEST_SUM)?, MANIFEST_SUM)?;
    if String::from_utf8_lossy(&sum_text).trim() != hex(&Sha256::digest(&manifest_text)) {
        return Err(damaged(
            MANIFEST,
            "its sha256 is not the one recorded beside it",
        ));
    }
    let manifest: Manifest = serde_json::from_slice(&manifest_text)
        .map_err(|e| damaged(MANIFEST, format!("not a weft backup manifest: {e}")))?;
    if manifest.format != FORMAT {
        return Err(damaged(
            MANIFEST,
            format!("format {:?}; this weft reads {FORMAT}", manifest.format),
        ));
    }
    if manifest.files.len() > MAX_FILES {
        return Err(damaged(MANIFEST, format!("more than {MAX_FILES} files")));
    }
    // Names are placed under a directory on restore: only plain relative
    // names, nothing that climbs out or starts elsewhere.
    for f in &manifest.files {
        let plain = !f.path.is_empty()
            && Path::new(&f.path)
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !plain {
            return Err(damaged(
                MANIFEST,
                format!("lists {:?}, not a plain relative name", f.path),
            ));
        }
    }
    let mut staged: Vec<(PathBuf, PathBuf)> = Vec::new();
    let result = (|| -> Result<(), BackupError> {
        for expected in &manifest.files {
            let mut entry = next_entry(&mut entries, &expected.path)?;
            let name = entry
                .path()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name != expected.path {
                return Err(damaged(
                    &expected.path,
                    format!("expected here, found {name:?}"),
                ));
            }
            if entry.header().entry_type() != tar::EntryType::Regular {
                return Err(damaged(&expected.path, "not a regular file"));
            }
            if entry.size() != expected.bytes {
                return Err(damaged(
                    &expected.path,
                    format!(
                        "{} bytes, the manifest says {}",
                        entry.size(),
                        expected.bytes
                    ),
                ));
            }
            let target = place(expected);
            let mut out = match &target {
                Some(t) => {
                    if let Some(dir) = t.parent() {
                        crate::private::create_dir(dir).map_err(io(dir))?;
                    }
                    let tmp = staging(t);
                    let f = crate::private::create_file(&tmp).map_err(io(&tmp))?;
                    staged.push((tmp, t.clone()));
                    Some(BufWriter::new(f))
                }
                None => None,
            };
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = entry
                    .read(&mut buf)
                    .map_err(|e| damaged(&expected.path, format!("unreadable: {e}")))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                if let (Some(o), Some(t)) = (out.as_mut(), &target) {
                    o.write_all(&buf[..n]).map_err(io(t))?;
                }
            }
            if hex(&hasher.finalize()) != expected.sha256 {
                return Err(damaged(
                    &expected.path,
                    "its sha256 is not the manifest's: the file was changed or damaged",
                ));
            }
            if let (Some(o), Some(t)) = (out, &target) {
                let f = o.into_inner().map_err(|e| BackupError::Io {
                    path: t.display().to_string(),
                    source: e.into_error(),
                })?;
                f.sync_all().map_err(io(t))?;
            }
        }
        if let Some(Ok(extra)) = entries.next() {
            let name = extra
                .path()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            return Err(damaged(&name, "not in the manifest"));
        }
        Ok(())
    })();
    if let Err(e) = result {
        for (tmp, _) in &staged {
            let _ = std::fs::remove_file(tmp);
        }
        return Err(e);
    }
    for (tmp, target) in &staged {
        std::fs::rename(tmp, target).map_err(io(target))?;
    }
    Ok(manifest)
}

/// The archive's next entry, which should be `expect`.
fn next_entry<'a, R: Read>(
    entries: &mut tar::Entries<'a, R>,
    expect: &str,
) -> Result<tar::Entry<'a, R>, BackupError> {
    match entries.next() {
        Some(Ok(e)) => Ok(e),
        Some(Err(e)) => Err(damaged(expect, format!("unreadable: {e}"))),
        None => Err(damaged(expect, "missing: the archive ends before it")),
    }
}

fn staging(target: &Path) -> PathBuf {
    let mut s = target.as_os_str().to_owned();
    s.push(".restoring");
    PathBuf::from(s)
}

fn read_small(entry: &mut impl Read, name: &str) -> Result<Vec<u8>, BackupError> {
    let mut buf = Vec::new();
    entry
        .take(MAX_MANIFEST + 1)
        .read_to_end(&mut buf)
        .map_err(|e| damaged(name, format!("unreadable: {e}")))?;
    if buf.len() as u64 > MAX_MANIFEST {
        return Err(damaged(name, "larger than a manifest can be"));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An archive of two files in `dir`; its path and the files' bytes.
    fn archive(dir: &Path) -> PathBuf {
        let a = dir.join("a.toml");
        let b = dir.join("b.csv");
        std::fs::write(&a, b"[runtime]\n").unwrap();
        std::fs::write(&b, b"code,display\n").unwrap();
        let items = [
            Item {
                role: Role::Config,
                source: a,
                plugins: Vec::new(),
            },
            Item {
                role: Role::Lookup,
                source: b,
                plugins: Vec::new(),
            },
        ];
        let dest = dir.join("x.tar");
        write(&dest, "a.toml", None, &items).unwrap();
        dest
    }

    /// The entries of a tar as (name, bytes), to build altered copies.
    fn entries(path: &Path) -> Vec<(String, Vec<u8>)> {
        let mut t = tar::Archive::new(File::open(path).unwrap());
        t.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let name = e.path().unwrap().to_string_lossy().into_owned();
                let mut bytes = Vec::new();
                e.read_to_end(&mut bytes).unwrap();
                (name, bytes)
            })
            .collect()
    }

    fn rebuild(path: &Path, entries: &[(String, Vec<u8>)]) {
        let mut t = tar::Builder::new(File::create(path).unwrap());
        for (name, bytes) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(bytes.len() as u64);
            h.set_mode(0o600);
            t.append_data(&mut h, name, bytes.as_slice()).unwrap();
        }
        t.finish().unwrap();
    }

    fn refused(path: &Path) -> String {
        let out = tempfile::tempdir().unwrap();
        let err = restore(path, |e| Some(out.path().join(&e.path)))
            .unwrap_err()
            .to_string();
        let left: Vec<_> = walk(out.path());
        assert!(left.is_empty(), "nothing written: {left:?}");
        err
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            if e.path().is_dir() {
                found.extend(walk(&e.path()));
            } else {
                found.push(e.path());
            }
        }
        found
    }

    #[test]
    fn an_archive_restores_whole_and_a_changed_one_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let good = archive(dir.path());
        let out = tempfile::tempdir().unwrap();
        let m = restore(&good, |e| Some(out.path().join(&e.path))).unwrap();
        assert_eq!(m.files.len(), 2);
        assert_eq!(
            std::fs::read(out.path().join("config/weft.toml")).unwrap(),
            b"[runtime]\n"
        );
        let original = entries(&good);
        let altered = dir.path().join("altered.tar");

        // A file's bytes changed, same size.
        let mut e = original.clone();
        e[3].1[0] ^= 1;
        rebuild(&altered, &e);
        let err = refused(&altered);
        assert!(
            err.contains("lookups/1-b.csv") && err.contains("sha256"),
            "{err}"
        );

        // A file missing (the archive cut short).
        rebuild(&altered, &original[..3]);
        let err = refused(&altered);
        assert!(err.contains("lookups/1-b.csv: missing"), "{err}");

        // An entry the manifest does not list.
        let mut e = original.clone();
        e.push(("extra/cron".into(), b"* * * * * root true\n".to_vec()));
        rebuild(&altered, &e);
        let err = refused(&altered);
        assert!(err.contains("not in the manifest"), "{err}");

        // The manifest edited without its sum.
        let mut e = original.clone();
        e[0].1 = String::from_utf8(e[0].1.clone())
            .unwrap()
            .replace("a.toml", "b.toml")
            .into_bytes();
        rebuild(&altered, &e);
        let err = refused(&altered);
        assert!(err.contains("manifest.json: its sha256"), "{err}");

        // A manifest, with its sum, naming a file outside the directory.
        let mut e = original.clone();
        e[0].1 = String::from_utf8(e[0].1.clone())
            .unwrap()
            .replace("\"lookups/1-b.csv\"", "\"../../b.csv\"")
            .into_bytes();
        e[1].1 = format!("{}\n", hex(&Sha256::digest(&e[0].1))).into_bytes();
        e[3].0 = "../../b.csv".into();
        rebuild(&altered, &e[..3]);
        let err = refused(&altered);
        assert!(err.contains("not a plain relative name"), "{err}");

        // A manifest past its cap: refused before it is read whole.
        rebuild(
            &altered,
            &[(MANIFEST.into(), vec![b' '; MAX_MANIFEST as usize + 1])],
        );
        let err = refused(&altered);
        assert!(err.contains("larger than a manifest can be"), "{err}");

        // More files listed than an archive may hold.
        let mut m: Manifest = serde_json::from_slice(&original[0].1).unwrap();
        m.files = vec![m.files[0].clone(); MAX_FILES + 1];
        let text = serde_json::to_vec(&m).unwrap();
        let sum = format!("{}\n", hex(&Sha256::digest(&text))).into_bytes();
        rebuild(
            &altered,
            &[(MANIFEST.into(), text), (MANIFEST_SUM.into(), sum)],
        );
        let err = refused(&altered);
        assert!(err.contains("more than 10000 files"), "{err}");

        // Not an archive at all.
        std::fs::write(&altered, b"hello").unwrap();
        assert!(refused(&altered).contains("damaged archive"));

        // An archive is never written over.
        assert!(write(&good, "a.toml", None, &[]).is_err());
    }
}
