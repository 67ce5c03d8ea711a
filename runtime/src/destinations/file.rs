//! The file destination: each output becomes a file, written atomically
//! (temporary name, fsync, rename, fsync of the directory).

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{BoxFuture, Delivery, DeliveryError, Destination};
use crate::config::FileDestinationConfig;

/// Writes outputs under a directory, named by a template.
#[derive(Debug, Clone)]
pub struct FileDestination {
    config: FileDestinationConfig,
}

impl FileDestination {
    /// A destination for these settings.
    pub fn new(config: FileDestinationConfig) -> FileDestination {
        FileDestination { config }
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
            tokio::task::spawn_blocking(move || write_atomically(&path, &body))
                .await
                .map_err(|e| DeliveryError::Transient(format!("writer task failed: {e}")))?
                // A full disk or a permission problem can be fixed by the
                // operator: keep trying.
                .map_err(|e| DeliveryError::Transient(e.to_string()))
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

/// Keeps a value usable in a file name: letters, digits, `.`, `-`, `_`;
/// anything else becomes `_` (so `ADT^A01` is `ADT_A01`).
fn safe(value: &str) -> String {
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

fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::now_v7().simple()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::{Message, Output};

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
        });
        let d = delivery("application/json");
        dest.deliver(&d).await.unwrap();
        let path = dir.path().join("2024-02-29/0193-abc.json");
        assert_eq!(std::fs::read(&path).unwrap(), b"{}");
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
    }
}
