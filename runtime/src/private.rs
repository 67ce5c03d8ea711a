//! Files only Weft's own user may read: directories made 0700, files
//! written 0600 (atomically), other modes only when asked for, and the
//! check that a secret file is not open to other users. The umask does not
//! change what is written here: modes are set explicitly.

use std::io::Write;
use std::path::Path;

/// Creates `dir` and its missing parents, 0700 (existing ones keep their
/// mode).
pub fn create_dir(dir: &Path) -> std::io::Result<()> {
    create_dir_with(dir, 0o700)
}

/// Creates `dir` and its missing parents with `mode`, whatever the umask
/// (existing ones keep theirs).
pub fn create_dir_with(dir: &Path, mode: u32) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dir_with(parent, mode)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => {
            set_mode(&std::fs::File::open(dir)?, mode)?;
            // The new directory's entry is durable only once its parent
            // is synced: without it, a crash could take the directory,
            // and every file synced into it, away.
            sync_dir(
                dir.parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new(".")),
            )
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates a new file (it must not exist), 0600 whatever the umask.
pub fn create_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let f = options.open(path)?;
    set_mode(&f, 0o600)?;
    Ok(f)
}

/// Makes the entries of `dir` (files created, renamed or removed in it)
/// durable: an fsync of the directory.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

fn set_mode(f: &std::fs::File, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (f, mode);
        Ok(())
    }
}

/// Writes `bytes` to `path` as a 0600 file, atomically, making missing
/// directories 0700.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_with(path, bytes, (0o600, 0o700))
}

/// Writes `bytes` to `path` atomically (a short temporary name beside it,
/// synced, renamed over it, the directory synced), the file with
/// `file_mode` and missing directories with `dir_mode`.
pub fn write_with(path: &Path, bytes: &[u8], modes: (u32, u32)) -> std::io::Result<()> {
    write_synced(path, bytes, modes, &sync_dir)
}

/// [`write_with`], with the directory made durable by `sync_dir` (which
/// must sync it with an fsync that starts after it is called; see
/// `destinations::dir_sync`, where concurrent writers share them).
pub fn write_synced(
    path: &Path,
    bytes: &[u8],
    (file_mode, dir_mode): (u32, u32),
    sync_dir: &dyn Fn(&Path) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = parent(path);
    create_dir_with(dir, dir_mode)?;
    let tmp = write_temp(dir, bytes, file_mode, true)?;
    let result = std::fs::rename(&tmp, path).and_then(|()| sync_dir(dir));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The directory `path` is in (`.` for a bare name).
pub(crate) fn parent(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Writes `bytes` to a new temporary file in `dir` with `file_mode`,
/// fsynced when `sync`: its path (short, whatever the final name's
/// length; unique among writers). Nothing is left behind on failure.
pub(crate) fn write_temp(
    dir: &Path,
    bytes: &[u8],
    file_mode: u32,
    sync: bool,
) -> std::io::Result<std::path::PathBuf> {
    let tmp = dir.join(format!(".weft-{}.tmp", uuid::Uuid::now_v7().simple()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        set_mode(&f, file_mode)?;
        f.write_all(bytes)?;
        if sync {
            f.sync_all()?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// `Err` with what is wrong when `path` can be read or written by users
/// other than its owner (its mode has group or other bits).
pub fn check(path: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta =
            std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!(
                "{} is open to other users (mode {mode:04o}); it holds secrets: chmod 600 {}",
                path.display(),
                path.display()
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
