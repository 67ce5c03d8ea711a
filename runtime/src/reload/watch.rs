//! The file watcher: reloads once the reloader's files have changed and
//! every write to them is finished.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::Reloader;

/// Watches the reloader's files and reloads once every changed file has
/// been closed after writing or renamed into place, or, for a file still
/// open, once it has been quiet for `quiet` (editors and `cp` write in
/// steps; a half-written file is refused, and the finished one is taken
/// when its last write lands). Runs until `stop`; returns an error when the
/// watcher cannot start.
pub fn watch(
    reloader: Arc<Reloader>,
    quiet: Duration,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Result<std::thread::JoinHandle<()>, String> {
    use notify::{EventKind, RecursiveMode, Watcher};
    use std::sync::atomic::Ordering;

    use notify::event::{AccessKind, AccessMode, MetadataKind, ModifyKind, RenameMode};

    // (path, the change is complete): a file closed after writing, or
    // renamed into place, is complete; other writes may go on.
    let (tx, rx) = std::sync::mpsc::channel::<(PathBuf, bool)>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        let complete = match event.kind {
            EventKind::Access(AccessKind::Close(AccessMode::Write))
            | EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both))
            | EventKind::Remove(_) => true,
            EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)) => return,
            EventKind::Create(_) | EventKind::Modify(_) => false,
            _ => return,
        };
        for p in event.paths {
            let _ = tx.send((p, complete));
        }
    })
    .map_err(|e| format!("cannot start the file watcher: {e}"))?;
    let mut dirs: HashSet<PathBuf> = HashSet::new();
    let mut watch_dirs = move |watcher: &mut notify::RecommendedWatcher,
                               files: &HashSet<PathBuf>| {
        for f in files {
            if let Some(dir) = f.parent()
                && dirs.insert(dir.to_path_buf())
                && let Err(e) = watcher.watch(dir, RecursiveMode::NonRecursive)
            {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot watch this directory; use SIGHUP or the admin API to reload");
            }
        }
    };
    let mut files = reloader.watched_files();
    watch_dirs(&mut watcher, &files);
    std::thread::Builder::new()
        .name("weft-watch".into())
        .spawn(move || {
            let tick = Duration::from_millis(200);
            // Once every watched file written to has been closed (or renamed
            // into place), a moment for companion events is enough; a file
            // still open for writing must first be quiet for `quiet`.
            let settle = Duration::from_millis(5);
            while !stop.load(Ordering::Relaxed) {
                let first = match rx.recv_timeout(tick) {
                    Ok(e) => e,
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                    Err(_) => break,
                };
                let mut hit = false;
                let mut open: HashSet<PathBuf> = HashSet::new();
                let mut event = Some(first);
                while let Some((path, complete)) = event.take() {
                    if files.contains(&path) {
                        hit = true;
                        if complete {
                            open.remove(&path);
                        } else {
                            open.insert(path);
                        }
                    }
                    let wait = if open.is_empty() { settle } else { quiet };
                    match rx.recv_timeout(wait) {
                        Ok(e) => event = Some(e),
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                        Err(_) => return,
                    }
                }
                if !hit {
                    continue;
                }
                tracing::debug!("watched files changed; reloading");
                let report = reloader.reload();
                if report.config_applied {
                    files = reloader.watched_files();
                    watch_dirs(&mut watcher, &files);
                }
            }
        })
        .map_err(|e| format!("cannot start the file watcher: {e}"))
}
