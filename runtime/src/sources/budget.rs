//! What the sources may hold in memory at once: the bytes of every message
//! between its arrival and its answer, across all sources, with the cost
//! of its parsed form counted too. A message waits for room (its sender
//! waits for the ACK), then is refused as busy; one that could never fit
//! is refused at once. And a message with more segments or fields than any
//! real one is refused before it is parsed.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The most segments a message may have.
pub const MAX_SEGMENTS: usize = 50_000;

/// The most fields (all segments together) a message may have.
pub const MAX_FIELDS: usize = 250_000;

/// How long a message waits for room before it is refused as busy.
pub const WAIT: Duration = Duration::from_secs(10);

/// The segments and fields of an HL7 v2 message, counted without parsing
/// (no allocation): segment terminators and field separators.
pub fn structure(body: &[u8]) -> (usize, usize) {
    let text = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    let Some(&fs) = text.get(3).filter(|_| text.starts_with(b"MSH")) else {
        return (1, 1);
    };
    let mut segments = 1;
    let mut fields = 1;
    for &b in text {
        if b == fs {
            fields += 1;
        } else if b == b'\r' || b == b'\n' {
            segments += 1;
        }
    }
    (segments, fields)
}

/// Why a message does not fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// More segments or fields than any message should have.
    #[error("the message has {count} {what}; at most {max} are taken")]
    TooComplex {
        /// `segments` or `fields`.
        what: &'static str,
        /// How many it has.
        count: usize,
        /// The cap.
        max: usize,
    },
    /// Larger than the whole budget: it can never be held.
    #[error(
        "the message needs {needed_kib} KiB in memory; runtime.max_inflight_mib allows {budget_kib} KiB for all messages"
    )]
    TooLarge {
        /// What it needs.
        needed_kib: usize,
        /// The budget.
        budget_kib: usize,
    },
    /// No room came within [`WAIT`].
    #[error("busy: {budget_kib} KiB of messages are held already; send again later")]
    Busy {
        /// The budget.
        budget_kib: usize,
    },
}

impl Refused {
    /// Why, one word (the `reason` label of `weft_source_refused_total`).
    pub fn word(&self) -> &'static str {
        match self {
            Refused::TooComplex { .. } => "too_complex",
            Refused::TooLarge { .. } => "too_large",
            Refused::Busy { .. } => "busy",
        }
    }
}

/// The sources' shared budget, in KiB.
#[derive(Debug)]
pub struct Budget {
    kib: usize,
    room: Arc<Semaphore>,
}

/// Room held for one message until it is answered.
#[derive(Debug)]
pub struct Held(#[allow(dead_code)] OwnedSemaphorePermit);

impl Budget {
    /// A budget of `bytes`.
    pub fn new(bytes: usize) -> Budget {
        let kib = (bytes / 1024).clamp(1, Semaphore::MAX_PERMITS);
        Budget {
            kib,
            room: Arc::new(Semaphore::new(kib)),
        }
    }

    /// Room for `body` (counting its parsed form when it is HL7 v2): held
    /// until the returned value is dropped.
    pub async fn hold(&self, body: &[u8], hl7: bool) -> Result<Held, Refused> {
        let parsed = if hl7 {
            let (segments, fields) = structure(body);
            if segments > MAX_SEGMENTS {
                return Err(Refused::TooComplex {
                    what: "segments",
                    count: segments,
                    max: MAX_SEGMENTS,
                });
            }
            if fields > MAX_FIELDS {
                return Err(Refused::TooComplex {
                    what: "fields",
                    count: fields,
                    max: MAX_FIELDS,
                });
            }
            weft_hl7::Message::parsed_size_bound(body.len(), segments, fields)
        } else {
            0
        };
        // The body, the copy the journal and the pipeline take, and its
        // parsed form.
        let bytes = body.len().saturating_mul(2).saturating_add(parsed);
        let needed_kib = bytes.div_ceil(1024).max(1);
        if needed_kib > self.kib {
            return Err(Refused::TooLarge {
                needed_kib,
                budget_kib: self.kib,
            });
        }
        let n = u32::try_from(needed_kib).unwrap_or(u32::MAX);
        match tokio::time::timeout(WAIT, self.room.clone().acquire_many_owned(n)).await {
            Ok(Ok(permit)) => Ok(Held(permit)),
            _ => Err(Refused::Busy {
                budget_kib: self.kib,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_without_parsing() {
        assert_eq!(structure(b"MSH|^~\\&|A\rPID|1|2\r"), (3, 5));
        assert_eq!(structure(b"not hl7"), (1, 1));
        let pipes = [b"MSH|".as_slice(), &vec![b'|'; 300_000]].concat();
        assert!(structure(&pipes).1 > MAX_FIELDS);
    }

    #[tokio::test]
    async fn waits_then_refuses_and_frees() {
        let b = Budget::new(100 * 1024);
        let big = vec![b'x'; 40 * 1024];
        let first = b.hold(&big, false).await.unwrap();
        assert!(matches!(
            b.hold(&vec![b'x'; 200 * 1024], false).await,
            Err(Refused::TooLarge { .. })
        ));
        drop(first);
        let _again = b.hold(&big, false).await.unwrap();
        let pipes = [b"MSH|".as_slice(), &vec![b'|'; 300_000]].concat();
        assert!(matches!(
            b.hold(&pipes, true).await,
            Err(Refused::TooComplex { what: "fields", .. })
        ));
    }
}
