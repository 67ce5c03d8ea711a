//! Retention: what the journal keeps (`runtime.retain_days`,
//! `retain_max_mb`, `audit_retain_days`), purged in the background.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Journal, now_ms};

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
    journal: Arc<dyn Journal>,
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
        let j = journal.clone();
        let purged = tokio::task::spawn_blocking(move || {
            if hourly {
                let n = j.audit_purge(now_ms() - audit.as_millis() as i64)?;
                if n > 0 {
                    tracing::info!(
                        entries = n,
                        "retention: removed audit entries older than audit_retain_days"
                    );
                }
            }
            let aged = match by_age {
                Some(retain) => j.purge(now_ms() - retain.as_millis() as i64)?,
                None => Default::default(),
            };
            let sized = match max_bytes {
                Some(max) => Some(j.purge_to_size(max)?),
                None => None,
            };
            Ok::<_, super::JournalError>((aged, sized))
        })
        .await;
        match purged {
            Ok(Ok((aged, sized))) => {
                if aged.messages > 0 {
                    tracing::info!(
                        messages = aged.messages,
                        deliveries = aged.deliveries,
                        "retention: purged settled messages older than retain_days"
                    );
                }
                if let (Some((purged, used)), Some(max)) = (sized, max_bytes) {
                    if purged.messages > 0 {
                        tracing::info!(
                            messages = purged.messages,
                            deliveries = purged.deliveries,
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
    use super::*;
    use crate::journal::{JournalSync, MessageStatus, Outcome};

    /// Records a message received in 1970 and settled (filtered: no
    /// outputs). On the blocking pool: tokio's paused clock does not jump
    /// ahead while a blocking task runs, as it would while awaiting the
    /// journal's writer thread.
    async fn old_settled(journal: &Arc<dyn Journal>, id: &str) {
        let (journal, id) = (journal.clone(), id.to_string());
        tokio::task::spawn_blocking(move || {
            journal.append(crate::journal::test_message(&id)).wait()?;
            journal
                .record(Outcome {
                    message_id: id,
                    status: MessageStatus::Transformed,
                    error: None,
                    versions: vec![],
                    deliveries: vec![],
                })
                .wait()
        })
        .await
        .unwrap()
        .unwrap();
    }

    /// Waits on tokio's clock until the journal holds `n` messages, for at
    /// most `within`; returns whether it did.
    async fn holds(journal: &Arc<dyn Journal>, n: usize, within: Duration) -> bool {
        let end = tokio::time::Instant::now() + within;
        loop {
            let j = journal.clone();
            let all = crate::journal::query::Filter {
                limit: 100,
                ..Default::default()
            };
            let count = tokio::task::spawn_blocking(move || j.list(&all).unwrap().len());
            if count.await.unwrap() == n {
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
        let journal = crate::journal::open(dir.path(), JournalSync::Normal).unwrap();
        old_settled(&journal, "m1").await;
        let stop = CancellationToken::new();
        let retention = Retention {
            messages: Some(Duration::from_secs(86_400)),
            max_bytes: None,
            audit: Duration::from_secs(86_400 * 2190),
        };
        tokio::spawn(retention_loop(journal.clone(), retention, stop.clone()));
        assert!(
            holds(&journal, 0, Duration::from_secs(1)).await,
            "purged at start"
        );
        old_settled(&journal, "m2").await;
        // Not purged again before the hour is out ...
        assert!(!holds(&journal, 0, Duration::from_secs(50 * 60)).await);
        // ... and purged once it is.
        assert!(
            holds(&journal, 0, Duration::from_secs(15 * 60)).await,
            "purged after an hour"
        );
        stop.cancel();
    }
}
