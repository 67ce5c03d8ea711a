//! Directory fsyncs shared by concurrent writers, as a journal shares its
//! commits: a writer that renamed a file into a directory needs an fsync
//! of that directory that *started after* its rename. While one runs, the
//! writers that arrive wait for it to end and then share the next one, so
//! with N writers in flight a directory is synced about once per round
//! instead of N times.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

/// Most directories remembered; past it, the idle ones are forgotten.
const MAX_DIRS: usize = 256;

/// The shared syncs of every directory one destination writes into.
#[derive(Debug, Default)]
pub struct DirSyncs {
    dirs: Mutex<HashMap<PathBuf, Arc<DirSync>>>,
}

/// One directory's syncs.
#[derive(Debug, Default)]
struct DirSync {
    state: Mutex<State>,
    ended: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// Syncs started so far (the number of the latest).
    started: u64,
    /// The number of the latest sync that ended, and what it said.
    ended: u64,
    failed: Option<(std::io::ErrorKind, String)>,
    running: bool,
}

impl DirSyncs {
    /// No directories yet.
    pub fn new() -> DirSyncs {
        DirSyncs::default()
    }

    /// Returns once an fsync of `dir` that started after this call has
    /// ended, with its result: this caller's own, or one it shared.
    pub fn sync(&self, dir: &Path) -> std::io::Result<()> {
        self.sync_with(dir, crate::private::sync_dir)
    }

    fn sync_with(
        &self,
        dir: &Path,
        fsync: impl Fn(&Path) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let one = self.entry(dir);
        let mut s = one.state.lock().unwrap_or_else(PoisonError::into_inner);
        // A sync that has already started may have started before the
        // caller's rename: only the next one counts.
        let needed = s.started + 1;
        loop {
            if s.ended >= needed {
                return match &s.failed {
                    None => Ok(()),
                    Some((kind, what)) => Err(std::io::Error::new(*kind, what.clone())),
                };
            }
            if s.running {
                s = one.ended.wait(s).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            s.running = true;
            s.started += 1;
            let number = s.started;
            drop(s);
            let result = fsync(dir);
            s = one.state.lock().unwrap_or_else(PoisonError::into_inner);
            s.running = false;
            s.ended = number;
            s.failed = result.as_ref().err().map(|e| (e.kind(), e.to_string()));
            one.ended.notify_all();
            // `number` >= `needed`: the loop returns this result.
        }
    }

    /// The syncs of `dir`, made on first use.
    fn entry(&self, dir: &Path) -> Arc<DirSync> {
        let mut dirs = self.dirs.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(one) = dirs.get(dir) {
            return one.clone();
        }
        if dirs.len() >= MAX_DIRS {
            // Held only here: nobody is syncing them.
            dirs.retain(|_, one| Arc::strong_count(one) > 1);
        }
        let one = Arc::new(DirSync::default());
        dirs.insert(dir.to_path_buf(), one.clone());
        one
    }

    /// Syncs of `dir` run so far (for tests).
    #[cfg(test)]
    fn count(&self, dir: &Path) -> u64 {
        self.entry(dir)
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .started
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    #[test]
    fn concurrent_writers_share_syncs_and_each_waits_for_one_that_started_after_it() {
        let syncs = Arc::new(DirSyncs::new());
        let dir = Path::new("/somewhere");
        // Each fsync takes 20 ms and records when it started.
        let clock = Arc::new(AtomicU64::new(0));
        let started_at: Arc<Mutex<Vec<u64>>> = Arc::default();
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (syncs, clock, started_at) = (syncs.clone(), clock.clone(), started_at.clone());
                std::thread::spawn(move || {
                    let called = clock.fetch_add(1, Ordering::SeqCst);
                    syncs
                        .sync_with(dir, |_| {
                            let t = clock.fetch_add(1, Ordering::SeqCst);
                            started_at.lock().unwrap().push(t);
                            std::thread::sleep(Duration::from_millis(20));
                            Ok(())
                        })
                        .unwrap();
                    // The caller returned after a sync that started after
                    // its call.
                    let after = started_at.lock().unwrap().iter().any(|t| *t > called);
                    assert!(after, "a sync started after the call at {called}");
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let n = syncs.count(dir);
        assert!((1..16).contains(&n), "16 writers shared {n} syncs");
    }

    #[test]
    fn a_failed_sync_fails_its_waiters_and_the_next_one_runs_again() {
        let syncs = DirSyncs::new();
        let dir = Path::new("/somewhere");
        let err = syncs
            .sync_with(dir, |_| Err(std::io::Error::other("disk on fire")))
            .unwrap_err();
        assert!(err.to_string().contains("disk on fire"));
        syncs.sync_with(dir, |_| Ok(())).unwrap();
        assert_eq!(syncs.count(dir), 2);
        // A directory that is not there fails for real.
        let missing = tempfile::tempdir().unwrap().path().join("gone");
        assert!(syncs.sync(&missing).is_err());
    }

    #[test]
    fn idle_directories_are_forgotten_past_the_cap() {
        let syncs = DirSyncs::new();
        let dir = tempfile::tempdir().unwrap();
        for i in 0..MAX_DIRS * 2 {
            let d = dir.path().join(i.to_string());
            std::fs::create_dir(&d).unwrap();
            syncs.sync(&d).unwrap();
        }
        let held = syncs.dirs.lock().unwrap().len();
        assert!(held <= MAX_DIRS, "{held} directories remembered");
    }
}
