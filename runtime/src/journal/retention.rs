//! Retention: what the journal keeps (`runtime.retain_days`,
//! `retain_max_mb`, `audit_retain_days`), purged in the background.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::now_ms;

/// What the journal keeps (`runtime.retain_days`, `retain_max_mb`,
/// `audit_retain_days`).
pub(crate) struct Retention {
    /// Settled messages older than this are purged; `None` keeps them.
    pub(crate) messages: Option<Duration>,
    /// The journal's size cap; `None`: none.
    pub(crate) max_bytes: Option<u64>,
    /// Audit entries older than this are removed.
    pub(crate) audit: Duration,
}

/// Purges settled messages older than `retain` and audit entries older than
/// their retention (at start, then hourly) and the oldest settled messages
/// while the journal is over `max_bytes` (checked every 10 s).
pub(crate) async fn retention_loop(
    path: std::path::PathBuf,
    retention: Retention,
    stop: CancellationToken,
) {
    const CHECK: Duration = Duration::from_secs(10);
    let Retention {
        messages: retain,
        max_bytes,
        audit,
    } = retention;
    let mut since_age_purge = None::<tokio::time::Instant>;
    let mut warned_full = false;
    loop {
        let now = tokio::time::Instant::now();
        let hourly =
            since_age_purge.is_none_or(|at| now.duration_since(at) >= Duration::from_secs(3600));
        let by_age = retain.filter(|_| hourly);
        if hourly {
            since_age_purge = Some(now);
        }
        let p = path.clone();
        let purged = tokio::task::spawn_blocking(move || {
            let mut conn = super::operate::open(&p)?;
            if hourly {
                let n = super::audit::purge(&mut conn, now_ms() - audit.as_millis() as i64)?;
                if n > 0 {
                    tracing::info!(
                        entries = n,
                        "retention: removed audit entries older than audit_retain_days"
                    );
                }
            }
            let aged = match by_age {
                Some(retain) => {
                    super::operate::purge(&mut conn, now_ms() - retain.as_millis() as i64)?
                }
                None => (0, 0),
            };
            let sized = match max_bytes {
                Some(max) => Some(super::operate::purge_to_size(&mut conn, max)?),
                None => None,
            };
            Ok::<_, super::JournalError>((aged, sized))
        })
        .await;
        match purged {
            Ok(Ok((aged, sized))) => {
                if aged.0 > 0 {
                    tracing::info!(
                        messages = aged.0,
                        deliveries = aged.1,
                        "retention: purged settled messages older than retain_days"
                    );
                }
                if let (Some((m, d, used)), Some(max)) = (sized, max_bytes) {
                    if m > 0 {
                        tracing::info!(
                            messages = m,
                            deliveries = d,
                            used_mb = used / (1024 * 1024),
                            "retention: purged the oldest settled messages to stay under retain_max_mb"
                        );
                    }
                    let over = used > max;
                    if over && !warned_full {
                        tracing::warn!(
                            used_mb = used / (1024 * 1024),
                            max_mb = max / (1024 * 1024),
                            "retention: the journal is over retain_max_mb and holds nothing settled to purge (pending work is never purged)"
                        );
                    }
                    warned_full = over;
                }
            }
            Ok(Err(e)) => tracing::error!(error = %e, "retention: purge failed"),
            Err(_) => {}
        }
        tokio::select! {
            _ = tokio::time::sleep(if max_bytes.is_some() { CHECK } else { Duration::from_secs(3600) }) => {}
            _ = stop.cancelled() => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::journal::sqlite::SqliteJournal;
    use crate::journal::{Journal, JournalSync, MessageStatus, Outcome};

    /// Records a message received in 1970 and settled (filtered: no
    /// outputs). On the blocking pool: tokio's paused clock does not jump
    /// ahead while a blocking task runs, as it would while awaiting the
    /// journal's writer thread.
    async fn old_settled(journal: &Arc<SqliteJournal>, id: &str) {
        let (journal, id) = (journal.clone(), id.to_string());
        tokio::task::spawn_blocking(move || {
            journal.append(crate::journal::test_message(&id))?;
            journal.record(Outcome {
                message_id: id,
                status: MessageStatus::Transformed,
                error: None,
                versions: vec![],
                deliveries: vec![],
            })
        })
        .await
        .unwrap()
        .unwrap();
    }

    fn count(path: &std::path::Path) -> i64 {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
            .unwrap()
    }

    /// Waits on tokio's clock until `path` holds `n` messages, for at most
    /// `within`; returns whether it did.
    async fn holds(path: &std::path::Path, n: i64, within: Duration) -> bool {
        let end = tokio::time::Instant::now() + within;
        loop {
            let p = path.to_path_buf();
            if tokio::task::spawn_blocking(move || count(&p))
                .await
                .unwrap()
                == n
            {
                return true;
            }
            if tokio::time::Instant::now() >= end {
                return false;
            }
            tokio::time::sleep((within / 100).max(Duration::from_millis(100))).await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn old_settled_messages_go_at_start_then_hourly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.db");
        let journal = Arc::new(SqliteJournal::open_with(&path, JournalSync::Normal).unwrap());
        old_settled(&journal, "m1").await;
        let stop = CancellationToken::new();
        let retention = Retention {
            messages: Some(Duration::from_secs(86_400)),
            max_bytes: None,
            audit: Duration::from_secs(86_400 * 2190),
        };
        tokio::spawn(retention_loop(path.clone(), retention, stop.clone()));
        assert!(
            holds(&path, 0, Duration::from_secs(1)).await,
            "purged at start"
        );
        old_settled(&journal, "m2").await;
        // Not purged again before the hour is out ...
        assert!(!holds(&path, 0, Duration::from_secs(50 * 60)).await);
        // ... and purged once it is.
        assert!(
            holds(&path, 0, Duration::from_secs(15 * 60)).await,
            "purged after an hour"
        );
        stop.cancel();
    }
}
