//! The file destination: each output becomes a file, written atomically
//! (temporary name, fsync, rename, fsync of the directory, shared by the
//! writes in flight: `dir_sync`), 0600 in 0700 directories unless
//! `file_mode`/`dir_mode` say otherwise. Each value in
//! a file name is made safe and kept short, so no sender's control id can
//! make a name the file system refuses.

use std::path::PathBuf;
use std::sync::Arc;

use super::dir_sync::DirSyncs;
use super::{BoxFuture, Delivery, DeliveryError, Destination};
use crate::config::FileDestinationConfig;

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
            let path = self.path_for(d);
            let body = d.output.message.body.clone();
            let modes = (self.config.file_mode, self.config.dir_mode);
            let syncs = self.syncs.clone();
            tokio::task::spawn_blocking(move || {
                crate::private::write_synced(&path, &body, modes, &|dir| syncs.sync(dir))
            })
            .await
            .map_err(|e| DeliveryError::Transient(format!("writer task failed: {e}")))?
            .map_err(|e| match e.raw_os_error() {
                // A name the file system refuses stays refused.
                #[cfg(unix)]
                Some(libc::ENAMETOOLONG | libc::EINVAL) => {
                    DeliveryError::Permanent(format!("the file name is refused: {e}"))
                }
                // A full disk or a permission problem can be fixed by
                // the operator: keep trying.
                _ => DeliveryError::Transient(e.to_string()),
            })
        })
    }
}

/// Fills in a file name template.
pub fn render(template: &str, d: &Delivery) -> String {
    let date = weft_hl7::datetime::format_unix(
        d.received
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |t| t.as_secs()),
    );
    let date = format!("{}-{}-{}", &date[0..4], &date[4..6], &date[6..8]);
    let ext = match d.output.message.content_type.as_str() {
        "application/hl7-v2" | "x-application/hl7-v2+er7" => "hl7",
        t if t.ends_with("json") => "json",
        t if t.starts_with("text/") => "txt",
        t if t.ends_with("xml") => "xml",
        _ => "bin",
    };
    template
        .replace("{date}", &date)
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
    }

    #[tokio::test]
    async fn writes_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let dest = FileDestination::new(FileDestinationConfig {
            dir: dir.path().to_path_buf(),
            filename: "{date}/{message_id}.{ext}".into(),
            file_mode: 0o640,
            dir_mode: 0o750,
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
        });
        let mut d = delivery("application/json");
        d.control_id = "C".repeat(300);
        match dest.deliver(&d).await {
            Err(DeliveryError::Permanent(reason)) => {
                assert!(reason.contains("refused"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }
}
