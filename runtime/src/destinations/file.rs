//! The file destination: each output becomes a file, written atomically
//! (temporary name, made durable, rename, fsync of the directory, shared
//! by the writes in flight: `dir_sync`), 0600 in 0700 directories unless
//! `file_mode`/`dir_mode` say otherwise. A batch of outputs is written
//! together: every temporary file first, then one `syncfs` for them all
//! (Linux; elsewhere an fsync each), the renames, and one directory fsync
//! per directory. Each value in a file name is made safe and kept short,
//! so no sender's control id can make a name the file system refuses.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::dir_sync::DirSyncs;
use super::{BoxFuture, Delivery, DeliveryError, Destination};
use crate::config::FileDestinationConfig;
use crate::private::parent;

/// Writes outputs under a directory, named by a template.
#[derive(Debug, Clone)]
pub struct FileDestination {
    config: FileDestinationConfig,
    syncs: Arc<DirSyncs>,
}

impl FileDestination {
    /// A destination for these settings.
    pub fn new(config: FileDestinationConfig) -> FileDestination {
        FileDestination {
            config,
            syncs: Arc::new(DirSyncs::new()),
        }
    }

    /// The path a delivery is written to.
    pub fn path_for(&self, d: &Delivery) -> PathBuf {
        self.config.dir.join(render(&self.config.filename, d))
    }
}

impl Destination for FileDestination {
    fn deliver<'a>(&'a self, d: &'a Delivery) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let mut results = self.deliver_batch(std::slice::from_ref(d)).await;
            results.pop().unwrap_or_else(|| {
                Err(DeliveryError::Transient("the writer gave no result".into()))
            })
        })
    }

    fn max_batch(&self) -> usize {
        self.config.batch
    }

    fn deliver_batch<'a>(
        &'a self,
        batch: &'a [Delivery],
    ) -> BoxFuture<'a, Vec<Result<(), DeliveryError>>> {
        Box::pin(async move {
            let files: Vec<(PathBuf, Vec<u8>)> = batch
                .iter()
                .map(|d| (self.path_for(d), d.output.message.body.clone()))
                .collect();
            let (root, modes) = (
                self.config.dir.clone(),
                (self.config.file_mode, self.config.dir_mode),
            );
            let syncs = self.syncs.clone();
            match tokio::task::spawn_blocking(move || write_batch(&root, &files, modes, &syncs))
                .await
            {
                Ok(results) => results.into_iter().map(|r| r.map_err(refusal)).collect(),
                Err(e) => batch
                    .iter()
                    .map(|_| Err(DeliveryError::Transient(format!("writer task failed: {e}"))))
                    .collect(),
            }
        })
    }
}

/// What a failed write means for its delivery.
fn refusal(e: std::io::Error) -> DeliveryError {
    match e.raw_os_error() {
        // A name the file system refuses stays refused.
        #[cfg(unix)]
        Some(libc::ENAMETOOLONG | libc::EINVAL) => {
            DeliveryError::Permanent(format!("the file name is refused: {e}"))
        }
        // A full disk or a permission problem can be fixed by the
        // operator: keep trying.
        _ => DeliveryError::Transient(e.to_string()),
    }
}

/// Writes each `(path, bytes)` atomically, durable together: every
/// temporary file written, then made durable (one `syncfs` of the
/// filesystem under `root` for the lot on Linux, else an fsync each),
/// renamed, and each directory synced once (shared with the other writes
/// in flight through `syncs`). A result per file, in order: one that fails
/// does not fail the others, unless the sync they share fails.
pub fn write_batch(
    root: &Path,
    files: &[(PathBuf, Vec<u8>)],
    (file_mode, dir_mode): (u32, u32),
    syncs: &DirSyncs,
) -> Vec<std::io::Result<()>> {
    let one_sync = cfg!(target_os = "linux") && files.len() > 1;
    // Opened before anything is written: `syncfs` reports the write-back
    // errors seen since this handle was opened.
    let filesystem = match one_sync
        .then(|| {
            crate::private::create_dir_with(root, dir_mode).and_then(|()| std::fs::File::open(root))
        })
        .transpose()
    {
        Ok(f) => f,
        Err(e) => return files.iter().map(|_| Err(copy(&e))).collect(),
    };
    // Each file to its temporary name (synced on its own unless the
    // filesystem is synced once for all).
    let mut written: Vec<std::io::Result<PathBuf>> = files
        .iter()
        .map(|(path, bytes)| {
            let dir = parent(path);
            crate::private::create_dir_with(dir, dir_mode)?;
            crate::private::write_temp(dir, bytes, file_mode, !one_sync)
        })
        .collect();
    if let Some(filesystem) = &filesystem
        && written.iter().any(Result::is_ok)
        && let Err(e) = sync_filesystem(filesystem)
    {
        for w in &mut written {
            if let Ok(tmp) = w {
                let _ = std::fs::remove_file(&*tmp);
                *w = Err(copy(&e));
            }
        }
    }
    // The renames, then each directory synced once.
    let mut results: Vec<std::io::Result<()>> = written
        .into_iter()
        .zip(files)
        .map(|(w, (path, _))| {
            let tmp = w?;
            std::fs::rename(&tmp, path).inspect_err(|_| {
                let _ = std::fs::remove_file(&tmp);
            })
        })
        .collect();
    let mut dirs: Vec<&Path> = files
        .iter()
        .zip(&results)
        .filter(|(_, r)| r.is_ok())
        .map(|((path, _), _)| parent(path))
        .collect();
    dirs.sort();
    dirs.dedup();
    for dir in dirs {
        if let Err(e) = syncs.sync(dir) {
            for ((path, _), r) in files.iter().zip(&mut results) {
                if r.is_ok() && parent(path) == dir {
                    *r = Err(copy(&e));
                }
            }
        }
    }
    results
}

/// An error for each of several files that one failure failed.
fn copy(e: &std::io::Error) -> std::io::Error {
    match e.raw_os_error() {
        Some(code) => std::io::Error::from_raw_os_error(code),
        None => std::io::Error::new(e.kind(), e.to_string()),
    }
}

/// Makes durable everything written to the filesystem `f` is on: its
/// data, its new files and their names.
#[cfg(target_os = "linux")]
fn sync_filesystem(f: &std::fs::File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: `f` is an open file for the duration of the call.
    match unsafe { libc::syncfs(f.as_raw_fd()) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

#[cfg(not(target_os = "linux"))]
fn sync_filesystem(f: &std::fs::File) -> std::io::Result<()> {
    f.sync_all()
}

/// Fills in a file name template.
pub fn render(template: &str, d: &Delivery) -> String {
    let stamp = weft_hl7::datetime::format_unix(
        d.received
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |t| t.as_secs()),
    );
    let date = format!("{}-{}-{}", &stamp[0..4], &stamp[4..6], &stamp[6..8]);
    let ext = match d.output.message.content_type.as_str() {
        "application/hl7-v2" | "x-application/hl7-v2+er7" => "hl7",
        t if t.ends_with("json") => "json",
        t if t.starts_with("text/") => "txt",
        t if t.ends_with("xml") => "xml",
        _ => "bin",
    };
    template
        .replace("{date}", &date)
        .replace("{hour}", &stamp[8..10])
        .replace("{bucket}", &format!("{:06}", d.seq.max(0) / 1000))
        .replace("{message_id}", &safe(&d.message_id))
        .replace("{control_id}", &safe(&d.control_id))
        .replace("{type}", &safe(&d.message_type))
        .replace("{n}", &d.n.to_string())
        .replace("{ext}", ext)
}

/// The longest a value may be in a file name; a longer one keeps its
/// first characters and a short hash of the whole.
pub const MAX_NAME_PART: usize = 64;

/// Keeps a value usable in a file name: letters, digits, `.`, `-`, `_`;
/// anything else becomes `_` (so `ADT^A01` is `ADT_A01`); longer than
/// [`MAX_NAME_PART`], its first 51 characters, `-` and 12 hex digits of
/// its SHA-256 (distinct values stay distinct).
fn safe(value: &str) -> String {
    let value = if value.len() > MAX_NAME_PART {
        use sha2::{Digest, Sha256};
        let hash = crate::plugins::engine::hex(&Sha256::digest(value.as_bytes())[..6]);
        let head: String = value.chars().take(MAX_NAME_PART - 13).collect();
        format!("{head}-{hash}")
    } else {
        value.to_string()
    };
    let s: String = value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    match s.trim_start_matches('.') {
        "" => "_".to_string(),
        t => t.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::{Message, Output};
    use std::path::Path;

    fn delivery(content_type: &str) -> Delivery {
        Delivery {
            seq: 12_345,
            message_id: "0193-abc".into(),
            control_id: "CTRL/../1".into(),
            message_type: "ADT^A01".into(),
            n: 2,
            received: std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_709_210_096),
            output: Output {
                destination: None,
                message: Message {
                    id: String::new(),
                    content_type: content_type.into(),
                    body: b"{}".to_vec(),
                    headers: vec![],
                },
            },
        }
    }

    #[test]
    fn long_values_are_cut_and_stay_distinct() {
        let mut a = delivery("application/hl7-v2");
        a.control_id = "X".repeat(300);
        let mut b = a.clone();
        b.control_id = format!("{}Y", "X".repeat(299));
        let (na, nb) = (render("{control_id}", &a), render("{control_id}", &b));
        assert_eq!(na.len(), MAX_NAME_PART);
        assert_eq!(nb.len(), MAX_NAME_PART);
        assert_ne!(na, nb);
        assert!(na.starts_with(&"X".repeat(51)));
        assert_eq!(render("{control_id}", &delivery("x")), "CTRL_.._1");
    }

    #[test]
    fn renders_templates_safely() {
        let d = delivery("application/fhir+json");
        assert_eq!(
            render("{date}/{type}-{control_id}-{message_id}-{n}.{ext}", &d),
            "2024-02-29/ADT_A01-CTRL_.._1-0193-abc-2.json"
        );
        assert_eq!(
            render("{n}.{ext}", &delivery("application/hl7-v2")),
            "2.hl7"
        );
        // 2024-02-29 12:34:56 UTC; delivery 12,345.
        assert_eq!(
            render("{date}/{hour}/{bucket}/{n}", &d),
            "2024-02-29/12/000012/2"
        );
        let mut big = delivery("x");
        big.seq = 9_876_543_210;
        assert_eq!(render("{bucket}", &big), "9876543");
    }

    #[tokio::test]
    async fn writes_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let dest = FileDestination::new(FileDestinationConfig {
            dir: dir.path().to_path_buf(),
            filename: "{date}/{message_id}.{ext}".into(),
            file_mode: 0o640,
            dir_mode: 0o750,
            batch: 64,
        });
        let d = delivery("application/json");
        dest.deliver(&d).await.unwrap();
        let path = dir.path().join("2024-02-29/0193-abc.json");
        assert_eq!(std::fs::read(&path).unwrap(), b"{}");
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o640);
            assert_eq!(mode(path.parent().unwrap()), 0o750);
        }
    }

    #[tokio::test]
    async fn a_name_the_file_system_refuses_fails_for_good() {
        let dir = tempfile::tempdir().unwrap();
        let dest = FileDestination::new(FileDestinationConfig {
            dir: dir.path().to_path_buf(),
            // 5 × 64 characters and more: past any file system's 255.
            filename: "{control_id}{control_id}{control_id}{control_id}{control_id}.{ext}".into(),
            file_mode: 0o600,
            dir_mode: 0o700,
            batch: 64,
        });
        let mut d = delivery("application/json");
        d.control_id = "C".repeat(300);
        match dest.deliver(&d).await {
            Err(DeliveryError::Permanent(reason)) => {
                assert!(reason.contains("refused"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        // In a batch, the refused name fails alone: the others are written.
        let mut fine = delivery("application/json");
        fine.control_id = "fine".into();
        fine.message_id = "m-ok".into();
        let mut other = fine.clone();
        other.message_id = "m-ok-2".into();
        other.output.message.body = b"[2]".to_vec();
        let results = dest.deliver_batch(&[fine, d, other]).await;
        assert!(results[0].is_ok(), "{results:?}");
        assert!(
            matches!(results[1], Err(DeliveryError::Permanent(_))),
            "{results:?}"
        );
        assert!(results[2].is_ok(), "{results:?}");
        assert_eq!(
            std::fs::read(dir.path().join("finefinefinefinefine.json")).unwrap(),
            b"[2]"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(
            names,
            ["finefinefinefinefine.json"],
            "no temporary file is left behind"
        );
    }

    #[tokio::test]
    async fn a_batch_is_written_across_directories() {
        let dir = tempfile::tempdir().unwrap();
        let dest = FileDestination::new(FileDestinationConfig {
            dir: dir.path().join("out"),
            filename: crate::config::DEFAULT_FILENAME.into(),
            file_mode: 0o600,
            dir_mode: 0o700,
            batch: 64,
        });
        assert_eq!(dest.max_batch(), 64);
        // Deliveries 999 to 2,001 of the journal: three buckets.
        let batch: Vec<Delivery> = (999..1_200)
            .chain(2_000..2_002)
            .map(|seq| {
                let mut d = delivery("application/fhir+json");
                d.seq = seq;
                d.message_id = format!("m{seq}");
                d.output.message.body = seq.to_string().into_bytes();
                d
            })
            .collect();
        let results = dest.deliver_batch(&batch).await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        let day = dir.path().join("out/2024-02-29");
        for (bucket, count) in [("000000", 1), ("000001", 200), ("000002", 2)] {
            let files = std::fs::read_dir(day.join(bucket)).unwrap().count();
            assert_eq!(files, count, "bucket {bucket}");
        }
        assert_eq!(
            std::fs::read(day.join("000001/m1100-2.json")).unwrap(),
            b"1100"
        );
    }
}
