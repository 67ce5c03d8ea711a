//! The audit trail (HIPAA §164.312(b)): every access to patient data and
//! every operator action, who did it, from where, on which messages, and
//! how it ended. Entries live in the journal's `audit` table, append-only
//! (an update is refused by a trigger) and hash-chained: each entry holds
//! the SHA-256 of the one before it and of its own content, so an edited
//! entry, or one deleted from the middle, is found by [`verify_chain`].
//! Retention removes only entries older than `runtime.audit_retain_days`,
//! from the oldest, and keeps the last removed entry's hash as the chain's
//! new anchor.
//!
//! The chain shows tampering by anyone who edits rows without recomputing
//! every later hash. Someone who can rewrite the whole file can rewrite
//! the whole chain: `weft audit verify` prints the newest entry's hash, to
//! be kept somewhere else and compared later.

use serde_json::json;
use sha2::{Digest, Sha256};

use super::JournalError;

/// The hash before the first entry of a new journal.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What an entry records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its place in the chain, from 1.
    pub seq: i64,
    /// When (ms since the epoch).
    pub at: i64,
    /// Who: a token's name (the admin API), or `os:USER` (the command line).
    pub who: String,
    /// `api` or `cli`.
    pub via: String,
    /// What: `message.body`, `messages.search-patient`, `messages.resend`,
    /// `messages.resend-dead`,
    /// `messages.purge`, `reload`, `token.add`, `token.revoke`.
    pub action: String,
    /// The message ids it touched (empty when none or all).
    pub messages: Vec<String>,
    /// From where: the peer's address, or `local`.
    pub remote: String,
    /// How it ended: `ok`, `refused: …`, `failed: …`, or counts.
    pub result: String,
    /// The hash of the entry before it.
    pub prev: String,
    /// The hash of this entry (its content and `prev`).
    pub hash: String,
}

/// An entry to append: everything but its place and hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Who.
    pub who: String,
    /// `api` or `cli`.
    pub via: &'static str,
    /// What.
    pub action: &'static str,
    /// Which messages.
    pub messages: Vec<String>,
    /// From where.
    pub remote: String,
    /// How it ended.
    pub result: String,
}

impl Record {
    /// A record of `action` by the command line's OS user.
    pub fn cli(action: &'static str, messages: Vec<String>, result: impl Into<String>) -> Record {
        Record {
            who: format!("os:{}", os_user()),
            via: "cli",
            action,
            messages,
            remote: "local".into(),
            result: result.into(),
        }
    }
}

/// The name of the user running this process (`uid N` when it has none).
pub fn os_user() -> String {
    #[cfg(unix)]
    {
        // SAFETY: getuid has no preconditions and cannot fail.
        let uid = unsafe { libc::getuid() };
        user_name(uid).unwrap_or_else(|| format!("uid {uid}"))
    }
    #[cfg(not(unix))]
    {
        std::env::var("USERNAME").unwrap_or_else(|_| "unknown".into())
    }
}

/// The name of the user with this uid, if the system knows one.
#[cfg(unix)]
pub fn user_name(uid: u32) -> Option<String> {
    // SAFETY: getpwuid_r writes only into the buffers given, and the name
    // is copied out before they go.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        if libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut out) == 0
            && !out.is_null()
            && !pwd.pw_name.is_null()
        {
            return Some(
                std::ffi::CStr::from_ptr(pwd.pw_name)
                    .to_string_lossy()
                    .into_owned(),
            );
        }
        None
    }
}

/// The hash of an entry's content and the hash before it.
#[allow(clippy::too_many_arguments)]
fn hash(
    seq: i64,
    at: i64,
    who: &str,
    via: &str,
    action: &str,
    messages: &str,
    remote: &str,
    result: &str,
    prev: &str,
) -> String {
    let content = json!([seq, at, who, via, action, messages, remote, result, prev]).to_string();
    crate::plugins::engine::hex(&Sha256::digest(content.as_bytes()))
}

fn entry_hash(e: &Entry) -> String {
    let messages = serde_json::to_string(&e.messages).unwrap_or_default();
    hash(
        e.seq, e.at, &e.who, &e.via, &e.action, &messages, &e.remote, &e.result, &e.prev,
    )
}

/// An entry for `record`, placed after the entry `(prev_seq, prev)` (or
/// the chain's anchor) and sealed with its hash.
pub fn seal(record: &Record, prev_seq: i64, prev: String, at: i64) -> Entry {
    let mut e = Entry {
        seq: prev_seq + 1,
        at,
        who: record.who.clone(),
        via: record.via.to_string(),
        action: record.action.to_string(),
        messages: record.messages.clone(),
        remote: record.remote.clone(),
        result: record.result.clone(),
        prev,
        hash: String::new(),
    };
    e.hash = entry_hash(&e);
    e
}

/// The chain's anchor as the journal keeps it: `SEQ:HASH`, the place and
/// hash just before the oldest entry.
pub fn anchor_text(seq: i64, hash: &str) -> String {
    format!("{seq}:{hash}")
}

/// The anchor kept as [`anchor_text`]; `(0, GENESIS)` when there is none
/// (no entry was ever removed) or it cannot be read.
pub fn parse_anchor(text: Option<&str>) -> (i64, String) {
    text.and_then(|v| {
        let (seq, hash) = v.split_once(':')?;
        Some((seq.parse().ok()?, hash.to_string()))
    })
    .unwrap_or((0, GENESIS.to_string()))
}

/// Which entries [`Journal::audit_list`](super::Journal::audit_list) returns.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// At or after (ms).
    pub since: Option<i64>,
    /// Exactly this `who`.
    pub who: Option<String>,
    /// Touching this message id.
    pub message: Option<String>,
    /// At most this many, newest first.
    pub limit: usize,
}

/// What [`verify_chain`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every entry is intact: how many, and the newest one's place and hash.
    Intact {
        /// Entries checked.
        entries: u64,
        /// The newest entry's place (the anchor's when there is none).
        head_seq: i64,
        /// The newest entry's hash.
        head_hash: String,
    },
    /// The first broken entry and what is wrong with it.
    Broken {
        /// Its place in the chain.
        seq: i64,
        /// What is wrong.
        reason: String,
    },
}

/// Walks the chain from its `anchor`, `entries` oldest first, and checks
/// every link and hash; stops at the first broken entry.
pub fn verify_chain(
    anchor: (i64, String),
    entries: impl IntoIterator<Item = Result<Entry, JournalError>>,
) -> Result<Verdict, JournalError> {
    let (mut seq, mut prev) = anchor;
    let mut count = 0u64;
    for e in entries {
        let e = e?;
        let broken = |reason: String| Ok(Verdict::Broken { seq: e.seq, reason });
        if e.seq != seq + 1 {
            return broken(format!(
                "entries {} to {} are missing (deleted)",
                seq + 1,
                e.seq - 1
            ));
        }
        if e.prev != prev {
            return broken("it does not follow the entry before it (edited or reordered)".into());
        }
        if entry_hash(&e) != e.hash {
            return broken("its content does not match its hash (edited)".into());
        }
        seq = e.seq;
        prev = e.hash;
        count += 1;
    }
    Ok(Verdict::Intact {
        entries: count,
        head_seq: seq,
        head_hash: prev,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(who: &str) -> Record {
        Record {
            who: who.into(),
            via: "api",
            action: "message.body",
            messages: vec!["m1".into()],
            remote: "127.0.0.1:5000".into(),
            result: "ok".into(),
        }
    }

    fn chain(n: usize) -> Vec<Entry> {
        let (mut seq, mut prev) = parse_anchor(None);
        let mut out = Vec::new();
        for i in 0..n {
            let e = seal(&record(&format!("ops{i}")), seq, prev, 1000 + i as i64);
            (seq, prev) = (e.seq, e.hash.clone());
            out.push(e);
        }
        out
    }

    fn check(entries: &[Entry], anchor: (i64, String)) -> Verdict {
        verify_chain(anchor, entries.iter().cloned().map(Ok)).unwrap()
    }

    #[test]
    fn a_sealed_chain_verifies_and_any_change_is_found() {
        let entries = chain(4);
        assert_eq!(
            check(&entries, parse_anchor(None)),
            Verdict::Intact {
                entries: 4,
                head_seq: 4,
                head_hash: entries[3].hash.clone()
            }
        );
        let mut edited = entries.clone();
        edited[1].who = "someone-else".into();
        assert!(
            matches!(check(&edited, parse_anchor(None)), Verdict::Broken { seq: 2, reason } if reason.contains("edited"))
        );
        let mut gap = entries.clone();
        gap.remove(1);
        assert!(
            matches!(check(&gap, parse_anchor(None)), Verdict::Broken { seq: 3, reason } if reason.contains("missing"))
        );
        // A chain cut at its start verifies from the anchor kept for it.
        let anchor = parse_anchor(Some(&anchor_text(2, &entries[1].hash)));
        assert!(matches!(
            check(&entries[2..], anchor),
            Verdict::Intact { entries: 2, .. }
        ));
        assert!(matches!(
            check(
                &entries[3..],
                parse_anchor(Some(&anchor_text(2, &entries[1].hash)))
            ),
            Verdict::Broken { seq: 4, .. }
        ));
    }
}
