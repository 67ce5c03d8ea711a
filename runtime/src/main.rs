//! `weft`: the runtime's command line.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    limit_malloc_arenas();
    private_files();
    let args = cli::Cli::parse();
    let quiet = args.interactive();
    cli::init_logging(args.verbose, args.log_format, quiet);
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(cli::EXIT_ERROR)
        }
    }
}

/// Every file and directory Weft creates (the journal and its WAL, tokens,
/// outputs, the plugin cache) is its own user's only: the journal holds
/// patient data. A file destination's `file_mode`/`dir_mode` opens its
/// outputs to a downstream reader explicitly.
fn private_files() {
    #[cfg(unix)]
    // SAFETY: umask only sets the process's file-creation mask.
    unsafe {
        libc::umask(0o077);
    }
}

/// glibc gives threads up to eight malloc arenas per core and hands little
/// of what they free back to the system; with plugin workers, I/O threads
/// and compiler threads all allocating, a long-running `weft run` that
/// compiles new plugin versions grew by half again in resident memory
/// (`benches/reload.rs`). One arena per core (at least two) holds that
/// to a sixth; its cost in `benches/mllp_load.rs` on 2 cores was within
/// that benchmark's run-to-run noise (0-15% at 64 connections).
/// `MALLOC_ARENA_MAX` in the environment still wins.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let arenas = libc::c_int::try_from(cores.max(2)).unwrap_or(libc::c_int::MAX);
        // SAFETY: called first thing in main, before any other thread
        // exists; mallopt only changes the allocator's tuning.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}
