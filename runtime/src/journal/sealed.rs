//! The journal with patient data encrypted at rest: a [`Journal`] over
//! either engine that seals message bodies, outputs and reasons on their
//! way in and opens them on their way out ([`seal`](super::seal)), and
//! stores patient identifiers and ordering keys as keyed hashes, so that
//! search and per-patient order work while the stored values say nothing.
//! What queries need stays as it is: ids, times, types, statuses, routes,
//! senders, control ids.
//!
//! The journal keeps its key's id (`encryption.key_id`): a wrong key is
//! refused at start, naming the key file, and a process without the key
//! cannot run on it (it would send ciphertext downstream). A command
//! given no key still lists and shows messages, with bodies and reasons
//! marked encrypted. [`Sealed::rotate`] makes a new key the active one
//! while serving; a background pass ([`spawn_resealer`]) seals again,
//! in batches, every value not yet under the active key (resumable: a
//! value names its key), and, on a journal that was written before it was
//! given a key, seals what was plaintext. Several nodes sharing one
//! journal each hold their keys in memory: a change of key (the first,
//! or a rotation) is refused while another node serves (`alone`).

use std::borrow::Cow;
use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwapOption;

use super::audit::{AuditFilter, Entry, Record, Verdict};
use super::query::{Detail, Filter, Purged, Reprocessed, Resent, Summary};
use super::seal::{Index, JournalKey, Keyring, SealError, is_sealed, is_sealed_text};
use super::{
    Commit, DueDelivery, Health, Journal, JournalError, NewMessage, Node, NodePlugin, Outcome,
    Recent, Recorded, SealedColumn, Stale, Unfinished, Use,
};

/// The setting naming the id of the key the journal is sealed with.
pub const KEY_ID: &str = "encryption.key_id";
/// The setting holding the index key, sealed with the journal key.
const INDEX_KEY: &str = "encryption.index_key";
/// The setting naming the key every value was last found sealed with (a
/// pass finished): no pass is needed while it is the active key.
pub const SEALED_ALL: &str = "encryption.sealed_all";
/// The associated data of the sealed index key.
const INDEX_AAD: &str = "index-key";

/// The keys in use: the keyring and the index of patient identifiers.
#[derive(Debug)]
struct Keys {
    ring: Keyring,
    index: Index,
}

/// The journal `inner`, sealed (see the module's documentation).
pub struct Sealed {
    inner: Arc<dyn Journal>,
    /// `None`: the journal is sealed and this process has no key (a
    /// command beside the runtime): bodies and reasons read as stored.
    keys: ArcSwapOption<Keys>,
    /// Itself, for the background pass a rotation starts.
    me: Weak<Sealed>,
}

impl Sealed {
    fn new(inner: Arc<dyn Journal>, keys: Option<Keys>, how: Use) -> Arc<Sealed> {
        let sealed = Arc::new_cyclic(|me| Sealed {
            inner,
            keys: ArcSwapOption::from(keys.map(Arc::new)),
            me: me.clone(),
        });
        if how == Use::Run {
            spawn_resealer(&sealed);
        }
        sealed
    }
}

/// The message that says a command has no key for an encrypted journal.
const LOCKED: &str = "the journal is encrypted and this command was not given its key \
     (set [runtime] encryption_key to a key file this user can read)";

fn key_error(key: &JournalKey, reason: String) -> JournalError {
    JournalError::Key(format!("encryption key {}: {reason}", key.path().display()))
}

/// Wraps `inner` for `how`, given the keys of the configuration
/// (`encryption_key` first, then `previous_encryption_keys`), if any:
///
/// - no key, and a journal never sealed: `inner` as it is;
/// - no key, and a sealed journal: refused for `weft run`; a command
///   beside it reads bodies and reasons as stored (marked encrypted);
/// - a key the journal was sealed with: sealed;
/// - a journal sealed with one of the previous keys: `weft run` makes the
///   first key the active one (a rotation, finished in the background);
/// - a journal never sealed: `weft run` gives it the key (and a new index
///   key); what it held before is sealed in the background;
/// - any other key: refused, naming the key file and both key ids.
pub fn wrap(
    inner: Arc<dyn Journal>,
    given: Option<(JournalKey, Vec<JournalKey>)>,
    how: Use,
) -> Result<Arc<dyn Journal>, JournalError> {
    let stored = inner.setting(KEY_ID)?;
    let Some((active, previous)) = given else {
        return match stored {
            None => Ok(inner),
            Some(id) if how == Use::Run => Err(JournalError::Open {
                path: inner.location(),
                reason: format!(
                    "encrypted with key {id}, and no key was given: set [runtime] \
                     encryption_key to that key's file"
                ),
            }),
            Some(_) => Ok(Sealed::new(inner, None, how)),
        };
    };
    let ring = Keyring::new(active, previous);
    let active_id = ring.active().id();
    let index = match &stored {
        Some(id) if *id == active_id => read_index(&*inner, &ring)?,
        Some(id) if ring.previous().iter().any(|k| k.id() == *id) => {
            let index = read_index(&*inner, &ring)?;
            if how == Use::Run {
                alone(&*inner, "rotate the key").map_err(|reason| JournalError::Open {
                    path: inner.location(),
                    reason,
                })?;
                // The rotation starts: the index key is sealed again with
                // the new key (unchanged: stored hashes stay valid), then
                // the journal names the new key.
                store_index(&*inner, &ring, &index.1)?;
                inner.set_setting(KEY_ID, &active_id)?;
                tracing::info!(from = %id, to = %active_id, "the journal's key is rotated: values under the previous key are sealed again in the background");
            }
            index
        }
        Some(id) => {
            return Err(key_error(
                ring.active(),
                format!(
                    "is key {active_id}, and the journal {} is encrypted with key {id}: \
                     the wrong key (after `weft key rotate`, encryption_key names the new \
                     key and previous_encryption_keys the old)",
                    inner.location()
                ),
            ));
        }
        None if how == Use::Run => {
            alone(&*inner, "turn encryption on").map_err(|reason| JournalError::Open {
                path: inner.location(),
                reason,
            })?;
            let (index, bytes) =
                Index::generate().map_err(|e| key_error(ring.active(), e.to_string()))?;
            store_index(&*inner, &ring, &bytes)?;
            inner.set_setting(KEY_ID, &active_id)?;
            tracing::info!(key = %active_id, "the journal is encrypted from now on: what it held before is sealed in the background");
            (index, bytes.to_vec())
        }
        // A command beside a journal not sealed yet: nothing to open, and
        // no index to hash with; it reads and writes as it is.
        None => return Ok(inner),
    };
    Ok(Sealed::new(
        inner,
        Some(Keys {
            ring,
            index: index.0,
        }),
        how,
    ))
}

/// Refuses to change the journal's key (`what`) while other nodes serve
/// it: each holds its keys in memory, and one left on the old key (or on
/// none) could not open what the others seal from then on, or would hand
/// ciphertext on. Why, as a reason.
fn alone(inner: &dyn Journal, what: &str) -> Result<(), String> {
    let others = inner.other_nodes().map_err(|e| e.to_string())?;
    if others.is_empty() {
        return Ok(());
    }
    Err(format!(
        "cannot {what} while other nodes serve this journal ({}): each node holds its keys \
         in memory. Stop the other nodes, {what} on this one, then start them with this \
         node's encryption_key and previous_encryption_keys",
        others.join(", ")
    ))
}

/// The index key the journal holds, opened.
fn read_index(inner: &dyn Journal, ring: &Keyring) -> Result<(Index, Vec<u8>), JournalError> {
    let sealed = inner
        .setting(INDEX_KEY)?
        .ok_or_else(|| JournalError::Open {
            path: inner.location(),
            reason: "encrypted, but its index key is missing (the journal was damaged)".into(),
        })?;
    let text = ring
        .open_text(INDEX_AAD, &sealed)
        .map_err(|e| key_error(ring.active(), format!("the journal's index key: {e}")))?;
    let bytes = weft_signature::parse_hex::<32>(&text, "the index key").map_err(|e| {
        JournalError::Open {
            path: inner.location(),
            reason: e,
        }
    })?;
    Ok((Index::from_bytes(&bytes), bytes.to_vec()))
}

fn store_index(inner: &dyn Journal, ring: &Keyring, bytes: &[u8]) -> Result<(), JournalError> {
    let sealed = ring
        .seal_text(INDEX_AAD, &weft_signature::hex(bytes))
        .map_err(|e| JournalError::Write(e.to_string()))?;
    inner.set_setting(INDEX_KEY, &sealed)
}

/// The associated data of each column's value: the row it belongs to.
fn aad(column: SealedColumn, message_id: &str, row: i64) -> String {
    match column {
        SealedColumn::MessageBody => format!("m:{message_id}"),
        SealedColumn::MessageError | SealedColumn::OutcomeError => format!("e:{message_id}"),
        SealedColumn::DeliveryBody => format!("d:{message_id}"),
        SealedColumn::DeliveryError => format!("l:{row}"),
        SealedColumn::PatientId | SealedColumn::OrderingKey | SealedColumn::HoldKey => {
            String::new()
        }
    }
}

/// A write refused because its values could not be sealed: nothing of it
/// is recorded, so the sender is refused (never acknowledged).
fn refused(e: SealError) -> Commit {
    Commit::finished(Err(JournalError::Write(e.to_string())))
}

fn opened(message_id: &str, e: SealError) -> JournalError {
    JournalError::Read(format!("message {message_id}: {e}"))
}

impl Sealed {
    fn keys(&self) -> Option<Arc<Keys>> {
        self.keys.load_full()
    }

    fn seal(
        &self,
        keys: &Option<Arc<Keys>>,
        aad: &str,
        plain: Vec<u8>,
    ) -> Result<Vec<u8>, SealError> {
        match keys {
            Some(k) => k.ring.seal(aad, &plain),
            None => Ok(plain),
        }
    }

    fn seal_text(
        &self,
        keys: &Option<Arc<Keys>>,
        aad: &str,
        plain: String,
    ) -> Result<String, SealError> {
        match keys {
            Some(k) => k.ring.seal_text(aad, &plain),
            None => Ok(plain),
        }
    }

    fn hash(&self, keys: &Option<Arc<Keys>>, value: String) -> String {
        match keys {
            Some(k) => k.index.hash(&value),
            None => value,
        }
    }

    /// Opens bytes the message path needs: without a key, a sealed value
    /// is an error (never handed on as ciphertext).
    fn open(&self, aad: &str, message_id: &str, stored: Vec<u8>) -> Result<Vec<u8>, JournalError> {
        match self.keys() {
            Some(k) => match k
                .ring
                .open(aad, &stored)
                .map_err(|e| opened(message_id, e))?
            {
                Cow::Borrowed(_) => Ok(stored),
                Cow::Owned(plain) => Ok(plain),
            },
            None if is_sealed(&stored) => Err(JournalError::Read(LOCKED.into())),
            None => Ok(stored),
        }
    }

    fn open_text(
        &self,
        aad: &str,
        message_id: &str,
        stored: Option<String>,
    ) -> Result<Option<String>, JournalError> {
        let Some(text) = stored else { return Ok(None) };
        match self.keys() {
            Some(k) => k
                .ring
                .open_text(aad, &text)
                .map(Some)
                .map_err(|e| opened(message_id, e)),
            None if is_sealed_text(&text) => Err(JournalError::Read(LOCKED.into())),
            None => Ok(Some(text)),
        }
    }

    /// For what operators read: without a key, values stay as stored (the
    /// commands mark them encrypted).
    fn show_bytes(
        &self,
        aad: &str,
        message_id: &str,
        stored: Vec<u8>,
    ) -> Result<Vec<u8>, JournalError> {
        if self.keys().is_none() {
            return Ok(stored);
        }
        self.open(aad, message_id, stored)
    }

    fn show_text(
        &self,
        aad: &str,
        message_id: &str,
        stored: Option<String>,
    ) -> Result<Option<String>, JournalError> {
        if self.keys().is_none() {
            return Ok(stored);
        }
        self.open_text(aad, message_id, stored)
    }

    fn seal_message(
        &self,
        keys: &Option<Arc<Keys>>,
        mut m: NewMessage,
    ) -> Result<NewMessage, SealError> {
        m.body = self.seal(keys, &format!("m:{}", m.id), std::mem::take(&mut m.body))?;
        m.patient_ids = std::mem::take(&mut m.patient_ids)
            .into_iter()
            .map(|p| self.hash(keys, p))
            .collect();
        m.ordering_keys = std::mem::take(&mut m.ordering_keys)
            .into_iter()
            .map(|(d, k)| (d, self.hash(keys, k)))
            .collect();
        Ok(m)
    }

    fn seal_outcome(&self, keys: &Option<Arc<Keys>>, mut o: Outcome) -> Result<Outcome, SealError> {
        let id = o.message_id.clone();
        o.error = o
            .error
            .map(|e| self.seal_text(keys, &format!("e:{id}"), e))
            .transpose()?;
        for d in &mut o.deliveries {
            d.body = self.seal(keys, &format!("d:{id}"), std::mem::take(&mut d.body))?;
            d.ordering_key = d.ordering_key.take().map(|k| self.hash(keys, k));
        }
        Ok(o)
    }

    fn open_unfinished(&self, list: Vec<Unfinished>) -> Result<Vec<Unfinished>, JournalError> {
        list.into_iter()
            .map(|mut u| {
                let id = u.message.id.clone();
                u.message.body =
                    self.open(&format!("m:{id}"), &id, std::mem::take(&mut u.message.body))?;
                Ok(u)
            })
            .collect()
    }

    /// `filter` with its patient identifier hashed as stored; without the
    /// key, a search by patient cannot be made (refused, not empty).
    fn hash_filter(&self, filter: &Filter) -> Result<Filter, JournalError> {
        let keys = self.keys();
        if keys.is_none() && filter.patient.is_some() {
            return Err(JournalError::Read(format!("a search by patient: {LOCKED}")));
        }
        let mut f = filter.clone();
        f.patient = f.patient.map(|p| self.hash(&keys, p));
        Ok(f)
    }

    /// Makes `new` the active key while serving: the index key is sealed
    /// again with it, the journal names it, what is written from now on is
    /// sealed with it, and the values under the old key are sealed again
    /// in the background (and after a restart, which must be given the new
    /// key first and the old one among the previous). Its id.
    pub fn rotate(&self, new: JournalKey) -> Result<String, JournalError> {
        alone(&*self.inner, "rotate the key").map_err(JournalError::Write)?;
        let Some(keys) = self.keys() else {
            return Err(JournalError::Write(LOCKED.into()));
        };
        let new_id = new.id();
        if new_id == keys.ring.active().id() {
            return Err(key_error(
                &new,
                format!("is key {new_id}, the key in use already"),
            ));
        }
        // The bytes of the index key, read back from the journal.
        let (index, bytes) = read_index(&*self.inner, &keys.ring)?;
        let mut previous = vec![keys.ring.active().clone()];
        previous.extend(keys.ring.previous().iter().cloned());
        let ring = Keyring::new(new, previous);
        store_index(&*self.inner, &ring, &bytes)?;
        self.inner.set_setting(KEY_ID, &new_id)?;
        self.keys.store(Some(Arc::new(Keys { ring, index })));
        tracing::info!(to = %new_id, "the journal's key is rotated: values under the previous key are sealed again in the background");
        if let Some(me) = self.me.upgrade() {
            spawn_resealer(&me);
        }
        Ok(new_id)
    }

    /// Whether a pass is needed: not every value is known to be under the
    /// active key.
    fn needs_pass(&self) -> Result<bool, JournalError> {
        let Some(keys) = self.keys() else {
            return Ok(false);
        };
        Ok(self.inner.setting(SEALED_ALL)?.as_deref() != Some(&keys.ring.active().id()))
    }

    /// One step of a pass: up to `limit` values after `cursors` (one per
    /// column) sealed again under the active key (or hashed, or sealed for
    /// the first time); `seen` is 0 when none is left after the cursors.
    pub fn reseal_step(
        &self,
        cursors: &mut [i64; SealedColumn::ALL.len()],
        limit: usize,
    ) -> Result<StepDone, JournalError> {
        let Some(keys) = self.keys() else {
            return Ok(StepDone::default());
        };
        let (bin, text) = keys.ring.active_prefixes();
        for (i, column) in SealedColumn::ALL.into_iter().enumerate() {
            let prefix: &[u8] = if column.is_hashed() {
                b"k1:"
            } else if column.is_text() {
                text.as_bytes()
            } else {
                &bin
            };
            let found = self.inner.stale(column, prefix, cursors[i], limit)?;
            let Some(last) = found.last() else { continue };
            cursors[i] = last.row;
            let mut step = StepDone {
                seen: found.len(),
                ..StepDone::default()
            };
            let mut done: Vec<(Stale, Vec<u8>)> = Vec::with_capacity(step.seen);
            for stale in found {
                match reseal_value(&keys, &stale) {
                    Ok(new) => done.push((stale, new)),
                    Err(e) => {
                        step.failed += 1;
                        tracing::debug!(
                            column = ?stale.column, row = stale.row, message = %stale.message_id,
                            error = %e, "a value cannot be sealed again: left as it is"
                        );
                    }
                }
            }
            step.rewritten = self.inner.replace_stale(&done)?;
            return Ok(step);
        }
        Ok(StepDone::default())
    }
}

/// What one step of a pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepDone {
    /// Values found not under the active key.
    pub seen: usize,
    /// Values written under it.
    pub rewritten: usize,
    /// Values that do not open (damaged, or under a key not given).
    pub failed: usize,
}

/// `stale` under the active key: sealed again, sealed for the first time,
/// or hashed.
fn reseal_value(keys: &Keys, stale: &Stale) -> Result<Vec<u8>, SealError> {
    let aad = aad(stale.column, &stale.message_id, stale.row);
    if stale.column.is_hashed() {
        return Ok(keys
            .index
            .hash(&String::from_utf8_lossy(&stale.value))
            .into_bytes());
    }
    if stale.column.is_text() {
        let text = String::from_utf8_lossy(&stale.value);
        let plain = keys.ring.open_text(&aad, &text)?;
        return Ok(keys.ring.seal_text(&aad, &plain)?.into_bytes());
    }
    let plain = keys.ring.open(&aad, &stale.value)?;
    keys.ring.seal(&aad, &plain)
}

/// Values looked at per step of a pass.
const STEP: usize = 256;
/// The pause between steps, leaving the file to the message path.
const PAUSE: Duration = Duration::from_millis(5);

/// Starts the background pass of `journal` when one is needed (a rotation
/// or a first key not finished): a thread that stops when the pass is
/// done or the journal closes.
pub fn spawn_resealer(journal: &Arc<Sealed>) {
    match journal.needs_pass() {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            tracing::warn!(error = %e, "cannot tell whether the journal needs sealing again");
            return;
        }
    }
    let weak: Weak<Sealed> = Arc::downgrade(journal);
    let spawned = std::thread::Builder::new()
        .name("weft-reseal".into())
        .spawn(move || reseal_all(weak));
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start sealing the journal again; the next start will");
    }
}

/// Passes over the whole journal until one finds nothing to seal again.
/// A value sealed with the old key just before a rotation may be committed
/// behind a pass's cursors: hence the confirming pass, and only then is
/// the journal recorded as sealed with the active key.
fn reseal_all(weak: Weak<Sealed>) {
    let started = std::time::Instant::now();
    let mut total = 0usize;
    loop {
        let mut cursors = [0i64; SealedColumn::ALL.len()];
        let mut pass = StepDone::default();
        loop {
            let Some(journal) = weak.upgrade() else {
                return;
            };
            match journal.reseal_step(&mut cursors, STEP) {
                Ok(step) if step.seen == 0 => break,
                Ok(step) => {
                    pass.seen += step.seen;
                    pass.rewritten += step.rewritten;
                    pass.failed += step.failed;
                }
                Err(JournalError::Closed) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "sealing the journal again failed; trying again in 5 s");
                    drop(journal);
                    std::thread::sleep(Duration::from_secs(5));
                    continue;
                }
            }
            drop(journal);
            std::thread::sleep(PAUSE);
        }
        total += pass.rewritten;
        let Some(journal) = weak.upgrade() else {
            return;
        };
        if pass.seen == 0 {
            let Some(keys) = journal.keys() else { return };
            let id = keys.ring.active().id();
            if let Err(e) = journal.inner.set_setting(SEALED_ALL, &id) {
                tracing::warn!(error = %e, "the journal is sealed again, but this was not recorded; the next start looks again");
            }
            tracing::info!(
                key = %id, values = total, seconds = started.elapsed().as_secs_f64(),
                "every value in the journal is sealed with the active key: previous keys may be removed from the configuration and destroyed"
            );
            return;
        }
        if pass.failed == pass.seen {
            tracing::warn!(
                values = pass.failed,
                "values in the journal do not open (damaged, or sealed with a key this weft was not given): keep the previous keys; the next start looks again"
            );
            return;
        }
        drop(journal);
        std::thread::sleep(Duration::from_secs(1));
    }
}

impl Journal for Sealed {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn disk_bytes(&self) -> Result<u64, JournalError> {
        self.inner.disk_bytes()
    }
    fn append(&self, message: NewMessage) -> Commit {
        let keys = self.keys();
        match self.seal_message(&keys, message) {
            Ok(m) => self.inner.append(m),
            Err(e) => refused(e),
        }
    }
    fn record(&self, outcome: Outcome) -> Commit {
        let keys = self.keys();
        match self.seal_outcome(&keys, outcome) {
            Ok(o) => self.inner.record(o),
            Err(e) => refused(e),
        }
    }
    fn record_lazily(&self, outcome: Outcome) -> Commit {
        let keys = self.keys();
        match self.seal_outcome(&keys, outcome) {
            Ok(o) => self.inner.record_lazily(o),
            Err(e) => refused(e),
        }
    }
    fn append_settled(&self, message: NewMessage, outcome: Outcome) -> Commit {
        let keys = self.keys();
        match (
            self.seal_message(&keys, message),
            self.seal_outcome(&keys, outcome),
        ) {
            (Ok(m), Ok(o)) => self.inner.append_settled(m, o),
            (Err(e), _) | (_, Err(e)) => refused(e),
        }
    }
    fn unfinished(&self) -> Result<Vec<Unfinished>, JournalError> {
        self.open_unfinished(self.inner.unfinished()?)
    }
    fn take_reprocess(&self, limit: usize) -> Result<Vec<Unfinished>, JournalError> {
        self.open_unfinished(self.inner.take_reprocess(limit)?)
    }
    fn take_over(&self, limit: usize) -> Result<Vec<Unfinished>, JournalError> {
        self.open_unfinished(self.inner.take_over(limit)?)
    }
    fn set_plugins(&self, plugins: &[NodePlugin]) -> Result<(), JournalError> {
        self.inner.set_plugins(plugins)
    }
    fn nodes(&self) -> Result<Option<Vec<Node>>, JournalError> {
        self.inner.nodes()
    }
    fn find_recent(
        &self,
        sending_application: &str,
        sending_facility: &str,
        control_id: &str,
        since: i64,
    ) -> Result<Option<Recent>, JournalError> {
        let Some(mut r) =
            self.inner
                .find_recent(sending_application, sending_facility, control_id, since)?
        else {
            return Ok(None);
        };
        r.error = self.show_text(&format!("e:{}", r.id), &r.id, r.error.take())?;
        Ok(Some(r))
    }
    fn due(
        &self,
        destination: &str,
        now: i64,
        limit: usize,
        busy: &[i64],
    ) -> Result<Vec<DueDelivery>, JournalError> {
        self.inner
            .due(destination, now, limit, busy)?
            .into_iter()
            .map(|mut d| {
                let id = d.message_id.clone();
                d.body = self.open(&format!("d:{id}"), &id, std::mem::take(&mut d.body))?;
                Ok(d)
            })
            .collect()
    }
    fn next_due(&self, destination: &str) -> Result<Option<i64>, JournalError> {
        self.inner.next_due(destination)
    }
    fn delivered(&self, id: i64, at: i64) -> Commit {
        self.inner.delivered(id, at)
    }
    fn delivered_lazily(&self, id: i64, at: i64) -> Commit {
        self.inner.delivered_lazily(id, at)
    }
    fn attempt_failed(&self, id: i64, error: &str, next_attempt: Option<i64>) -> Commit {
        let keys = self.keys();
        match self.seal_text(&keys, &format!("l:{id}"), error.to_string()) {
            Ok(error) => self.inner.attempt_failed(id, &error, next_attempt),
            Err(e) => refused(e),
        }
    }
    fn pending_counts(&self) -> Result<Vec<(String, u64)>, JournalError> {
        self.inner.pending_counts()
    }
    fn backlog(&self, destination: &str, cap: u64) -> Result<(u64, u64), JournalError> {
        self.inner.backlog(destination, cap)
    }
    fn health(&self) -> Result<Health, JournalError> {
        self.inner.health()
    }
    fn snapshot_to(&self, dest: &Path) -> Result<(), JournalError> {
        self.inner.snapshot_to(dest)
    }
    fn list(&self, filter: &Filter) -> Result<Vec<Summary>, JournalError> {
        self.inner.list(&self.hash_filter(filter)?)
    }
    fn show(&self, id: &str) -> Result<Option<Detail>, JournalError> {
        let Some(mut d) = self.inner.show(id)? else {
            return Ok(None);
        };
        d.body = self.show_bytes(&format!("m:{id}"), id, std::mem::take(&mut d.body))?;
        d.error = self.show_text(&format!("e:{id}"), id, d.error.take())?;
        for r in &mut d.deliveries {
            r.body = self.show_bytes(&format!("d:{id}"), id, std::mem::take(&mut r.body))?;
            r.last_error = self.show_text(&format!("l:{}", r.id), id, r.last_error.take())?;
        }
        for e in &mut d.earlier {
            e.error = self.show_text(&format!("e:{id}"), id, e.error.take())?;
        }
        Ok(Some(d))
    }
    fn recorded(&self, id: &str) -> Result<Option<Recorded>, JournalError> {
        let Some(mut r) = self.inner.recorded(id)? else {
            return Ok(None);
        };
        r.body = self.open(&format!("m:{id}"), id, std::mem::take(&mut r.body))?;
        r.error = self.open_text(&format!("e:{id}"), id, r.error.take())?;
        for o in &mut r.outputs {
            o.body = self.open(&format!("d:{id}"), id, std::mem::take(&mut o.body))?;
        }
        Ok(Some(r))
    }
    fn select(&self, filter: &Filter, max: usize) -> Result<Vec<String>, JournalError> {
        self.inner.select(&self.hash_filter(filter)?, max)
    }
    fn resend(&self, ids: &[String]) -> Result<Resent, JournalError> {
        self.inner.resend(ids)
    }
    fn resend_dead(&self) -> Result<usize, JournalError> {
        self.inner.resend_dead()
    }
    fn reprocess(&self, ids: &[String]) -> Result<Reprocessed, JournalError> {
        self.inner.reprocess(ids)
    }
    fn purge(&self, before: i64) -> Result<Purged, JournalError> {
        self.inner.purge(before)
    }
    fn purge_to_size(&self, max_bytes: u64) -> Result<(Purged, u64), JournalError> {
        self.inner.purge_to_size(max_bytes)
    }
    fn audit_append(&self, record: &Record) -> Result<Entry, JournalError> {
        self.inner.audit_append(record)
    }
    fn audit_list(&self, filter: &AuditFilter) -> Result<Vec<Entry>, JournalError> {
        self.inner.audit_list(filter)
    }
    fn audit_verify(&self) -> Result<Verdict, JournalError> {
        self.inner.audit_verify()
    }
    fn audit_hash_at(&self, seq: i64) -> Result<Option<String>, JournalError> {
        self.inner.audit_hash_at(seq)
    }
    fn audit_purge(&self, before: i64) -> Result<usize, JournalError> {
        self.inner.audit_purge(before)
    }
    fn setting(&self, key: &str) -> Result<Option<String>, JournalError> {
        self.inner.setting(key)
    }
    fn set_setting(&self, key: &str, value: &str) -> Result<(), JournalError> {
        self.inner.set_setting(key, value)
    }
    fn stale(
        &self,
        column: SealedColumn,
        prefix: &[u8],
        after: i64,
        limit: usize,
    ) -> Result<Vec<Stale>, JournalError> {
        self.inner.stale(column, prefix, after, limit)
    }
    fn replace_stale(&self, done: &[(Stale, Vec<u8>)]) -> Result<usize, JournalError> {
        self.inner.replace_stale(done)
    }
    fn other_nodes(&self) -> Result<Vec<String>, JournalError> {
        self.inner.other_nodes()
    }
    fn rotate_key(&self, new: JournalKey) -> Result<String, JournalError> {
        self.rotate(new)
    }
    fn close(&self) {
        self.inner.close()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::journal::sqlite::SqliteJournal;

    pub(crate) fn key(byte: u8) -> JournalKey {
        JournalKey::from_bytes(&[byte; 32], Path::new(&format!("/keys/{byte}.key")))
    }

    /// A sealed SQLite journal in a directory of its own (not behind an
    /// `Arc`, so the suite's `&j` is a `&dyn Journal`).
    fn fresh() -> (Sealed, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let inner = Arc::new(SqliteJournal::open(&dir.path().join("j.db")).unwrap());
        let sealed = Sealed {
            inner,
            keys: ArcSwapOption::from_pointee(Keys {
                ring: Keyring::new(key(1), vec![]),
                index: Index::generate().unwrap().0,
            }),
            me: Weak::new(),
        };
        (sealed, dir)
    }

    // Every engine's behaviour holds through the sealing layer.
    crate::journal::conformance::message_path!(fresh());
    crate::journal::conformance::queries!(fresh());
    crate::journal::conformance::operations!(fresh());
    crate::journal::conformance::audit_trail!(fresh());

    /// Whether the bytes of the journal's files (the database, its
    /// write-ahead log) contain `needle`.
    fn on_disk(dir: &Path, needle: &[u8]) -> bool {
        std::fs::read_dir(dir).unwrap().any(|e| {
            let bytes = std::fs::read(e.unwrap().path()).unwrap();
            bytes.windows(needle.len()).any(|w| w == needle)
        })
    }

    pub(crate) fn patient_message(id: &str) -> NewMessage {
        NewMessage {
            body: b"MSH|^~\\&|A|F|||20240101||ADT^A01|1|P|2.5\rPID|1||MRN-778899^^^H^MR||Zyxwvut^Qwerty\r"
                .to_vec(),
            patient_ids: vec!["MRN-778899".into()],
            ordering_keys: vec![("d".into(), "MRN-778899".into())],
            ..crate::journal::test_message(id)
        }
    }

    fn open_run(
        dir: &Path,
        given: Option<(JournalKey, Vec<JournalKey>)>,
    ) -> Result<Arc<dyn Journal>, JournalError> {
        let inner: Arc<dyn Journal> = Arc::new(SqliteJournal::open(&dir.join("j.db"))?);
        wrap(inner, given, Use::Run)
    }

    #[test]
    fn nothing_of_the_patient_reaches_the_disk_and_search_still_finds_him() {
        let dir = tempfile::tempdir().unwrap();
        let j = open_run(dir.path(), Some((key(1), vec![]))).unwrap();
        j.append(patient_message("m1")).wait().unwrap();
        let mut o = crate::journal::test_outcome("m1");
        o.deliveries[0].body = b"{\"name\":[{\"family\":\"Zyxwvut\"}]}".to_vec();
        o.deliveries[0].ordering_key = Some("MRN-778899".into());
        j.record(o).wait().unwrap();
        let d = j.due("d", 10, 10, &[]).unwrap();
        j.attempt_failed(d[0].id, "the server said: Zyxwvut unknown", Some(5))
            .wait()
            .unwrap();
        assert!(String::from_utf8_lossy(&d[0].body).contains("Zyxwvut"));
        let shown = j.show("m1").unwrap().unwrap();
        assert!(String::from_utf8_lossy(&shown.body).contains("Zyxwvut"));
        assert_eq!(
            shown.deliveries[0].last_error.as_deref(),
            Some("the server said: Zyxwvut unknown")
        );
        let found = j
            .list(&crate::journal::query::Filter {
                patient: Some("MRN-778899".into()),
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(found.len(), 1);
        for needle in [&b"Zyxwvut"[..], b"MRN-778899", b"Qwerty"] {
            assert!(
                !on_disk(dir.path(), needle),
                "{} is on disk",
                String::from_utf8_lossy(needle)
            );
        }
    }

    #[test]
    fn a_wrong_key_or_none_is_refused_and_a_command_without_it_reads_sealed() {
        let dir = tempfile::tempdir().unwrap();
        {
            let j = open_run(dir.path(), Some((key(1), vec![]))).unwrap();
            j.append(patient_message("m1")).wait().unwrap();
            j.close();
        }
        let Err(e) = open_run(dir.path(), Some((key(2), vec![]))) else {
            panic!("a wrong key was taken");
        };
        let e = e.to_string();
        assert!(e.contains("/keys/2.key") && e.contains("wrong key"), "{e}");
        let Err(e) = open_run(dir.path(), None) else {
            panic!("no key was taken");
        };
        assert!(e.to_string().contains("encryption_key"), "{e}");
        // A command beside it, without the key: metadata as it is, the
        // body as stored (sealed), the message path's reads refused.
        let inner: Arc<dyn Journal> = Arc::new(
            SqliteJournal::attach(&dir.path().join("j.db"), crate::journal::Attach::Existing)
                .unwrap(),
        );
        let j = wrap(inner, None, Use::Attach(crate::journal::Attach::Existing)).unwrap();
        let shown = j.show("m1").unwrap().unwrap();
        assert_eq!(shown.summary.message_type, "ADT^A01");
        assert!(is_sealed(&shown.body));
        assert!(
            j.recorded("m1")
                .unwrap_err()
                .to_string()
                .contains("encryption_key")
        );
    }

    /// Keys for `weft run`: the active one and the previous.
    pub(crate) type Given = Option<(JournalKey, Vec<JournalKey>)>;

    /// Waits for the runtime's background pass to record every value
    /// sealed with key `id`.
    pub(crate) fn wait_sealed_all(j: &Arc<dyn Journal>, id: &str) {
        for _ in 0..1000 {
            if j.setting(SEALED_ALL).unwrap().as_deref() == Some(id) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("the background pass did not finish");
    }

    /// A journal written before any key is sealed by the first run given
    /// one (bodies, outputs, reasons sealed; identifiers and ordering keys
    /// hashed, search still finding the patient), then rotated to a second
    /// key at a start, and read with the second key alone; `in_clear`
    /// says whether the patient's name or MRN is still stored in the
    /// clear. Any engine: `open` opens the same journal for `weft run`.
    pub(crate) fn rotation_scenario(
        open: &dyn Fn(Given) -> Arc<dyn Journal>,
        in_clear: &dyn Fn(&str) -> bool,
    ) {
        let by_patient = |j: &Arc<dyn Journal>| {
            j.list(&crate::journal::query::Filter {
                patient: Some("MRN-778899".into()),
                limit: 10,
                ..Default::default()
            })
            .unwrap()
            .len()
        };
        // Written before any key: plaintext, in every sealed column.
        {
            let j = open(None);
            j.append(patient_message("m1")).wait().unwrap();
            let mut o = crate::journal::test_outcome("m1");
            o.deliveries[0].body = b"{\"family\":\"Zyxwvut\"}".to_vec();
            o.deliveries[0].ordering_key = Some("MRN-778899".into());
            j.record(o).wait().unwrap();
            let d = j.due("d", 10, 10, &[]).unwrap();
            j.attempt_failed(d[0].id, "Zyxwvut unknown", Some(5))
                .wait()
                .unwrap();
            j.close();
        }
        assert!(in_clear("Zyxwvut") && in_clear("MRN-778899"));
        {
            let j = open(Some((key(1), vec![])));
            wait_sealed_all(&j, &key(1).id());
            j.append(patient_message("m2")).wait().unwrap();
            assert_eq!(by_patient(&j), 2, "the plaintext identifier was hashed");
            j.close();
        }
        // Rotated to key 2: key 1 among the previous.
        {
            let j = open(Some((key(2), vec![key(1)])));
            wait_sealed_all(&j, &key(2).id());
            j.close();
        }
        let j = open(Some((key(2), vec![])));
        for id in ["m1", "m2"] {
            let r = j.recorded(id).unwrap().unwrap();
            assert!(String::from_utf8_lossy(&r.body).contains("Zyxwvut"));
        }
        let shown = j.show("m1").unwrap().unwrap();
        assert!(String::from_utf8_lossy(&shown.deliveries[0].body).contains("Zyxwvut"));
        assert_eq!(
            shown.deliveries[0].last_error.as_deref(),
            Some("Zyxwvut unknown")
        );
        assert_eq!(by_patient(&j), 2);
        j.close();
        assert!(!in_clear("Zyxwvut") && !in_clear("MRN-778899"));
    }

    #[test]
    fn a_rotation_seals_everything_again_and_a_plain_journal_gets_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        rotation_scenario(&|given| open_run(&path, given).unwrap(), &|needle| {
            // Vacuumed so freed pages go.
            let c = rusqlite::Connection::open(path.join("j.db")).unwrap();
            c.execute_batch("VACUUM").unwrap();
            drop(c);
            on_disk(&path, needle.as_bytes())
        });
    }
}
