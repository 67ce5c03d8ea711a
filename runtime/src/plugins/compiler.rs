//! Where plugins are compiled: in this process, or in a child process of
//! the same binary (`weft run` and every other command of the CLI).
//!
//! Compiling a component is the biggest thing the runtime allocates: the
//! compilers keep per-thread contexts that grow to the largest function
//! they compiled, and their scratch memory fragments the heap the message
//! path uses. Measured with heaptrack over 200 hot reloads under traffic
//! (`benches/reload.rs`, `WEFT_BENCH_HEAPTRACK`), compiler allocations were
//! 10–13 MB of a 14–18 MB live heap, and most of its growth. In a child
//! process all of that goes away with the child; the parent only maps the
//! finished code. A compiler crash, a runaway compile or a plugin built to
//! exhaust the compiler's memory ends the child (capped in address space
//! and time), not the runtime, and the plugin is refused with the reason.
//!
//! The child is `weft compile-plugin` (hidden): the component on standard
//! input, the serialized code (wasmtime's `precompile_component`) on
//! standard output, the reason on standard error and a non-zero exit when
//! it cannot compile. Its engine is built by the same [`super::engine`]
//! settings, so the parent's engine accepts the code (wasmtime checks the
//! settings again when it loads it).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use wasmtime::{Engine, Strategy};

/// Where compiles run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CompileIn {
    /// In this process (the library's default: tests, embedders).
    #[default]
    ThisProcess,
    /// In a child process.
    Child(ChildCompiler),
}

/// A compiler process: what to run and how far it may go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildCompiler {
    /// The executable, run as `EXE compile-plugin ...`.
    pub exe: PathBuf,
    /// The longest a compile may take before the child is killed.
    pub deadline: Duration,
    /// The largest compiled output read back.
    pub max_output: usize,
}

impl ChildCompiler {
    /// `exe` with the default deadline and output cap.
    pub fn new(exe: impl Into<PathBuf>) -> ChildCompiler {
        ChildCompiler {
            exe: exe.into(),
            deadline: CHILD_DEADLINE,
            max_output: MAX_OUTPUT,
        }
    }
}

impl CompileIn {
    /// A child process of the running executable (`/proc/self/exe` on
    /// Linux, so a binary replaced by an upgrade still runs its own
    /// compiler).
    pub fn child_of_this_executable() -> CompileIn {
        let exe = if cfg!(target_os = "linux") {
            PathBuf::from("/proc/self/exe")
        } else {
            std::env::current_exe().unwrap_or_else(|_| PathBuf::from("weft"))
        };
        CompileIn::Child(ChildCompiler::new(exe))
    }
}

/// The subcommand the child runs.
pub const CHILD_COMMAND: &str = "compile-plugin";

/// The longest a compile may take in a child before it is killed.
pub const CHILD_DEADLINE: Duration = Duration::from_secs(300);

/// The child's address-space cap (`RLIMIT_AS`): far above what the shipped
/// plugins need (well under 200 MiB), far below what would starve the
/// runtime beside it.
pub const CHILD_ADDRESS_SPACE: u64 = 4 << 30;

/// The largest compiled output read back from a child, by default.
pub const MAX_OUTPUT: usize = 512 << 20;

/// The most of a child's standard error kept as the reason.
const MAX_REASON: usize = 4096;

/// Which compiler: its name on the child's command line.
fn strategy_name(strategy: Strategy) -> &'static str {
    match strategy {
        Strategy::Winch => "winch",
        _ => "cranelift",
    }
}

/// Compiles `bytes` for `engine` (built with `strategy` and `fuel`) where
/// `how` says: the serialized code, to load with
/// `Component::deserialize` on `engine`.
pub fn compile(
    how: &CompileIn,
    engine: &Engine,
    strategy: Strategy,
    fuel: bool,
    bytes: &[u8],
) -> wasmtime::Result<Vec<u8>> {
    match how {
        CompileIn::ThisProcess => engine.precompile_component(bytes),
        CompileIn::Child(child) => match in_child(child, strategy, fuel, bytes) {
            Ok(code) => Ok(code),
            Err(ChildError::Refused(reason)) => Err(wasmtime::Error::msg(reason)),
            Err(ChildError::Spawn(e)) => {
                // No process to be had (out of processes or memory, the
                // binary gone): still serve, at the old memory cost.
                tracing::warn!(error = %e, "cannot start the compiler process; compiling in this process");
                engine.precompile_component(bytes)
            }
        },
    }
}

/// Why a child did not give code.
enum ChildError {
    /// No child could be started.
    Spawn(std::io::Error),
    /// The child ran and refused, crashed or ran out of time: the reason.
    Refused(String),
}

fn in_child(
    compiler: &ChildCompiler,
    strategy: Strategy,
    fuel: bool,
    bytes: &[u8],
) -> Result<Vec<u8>, ChildError> {
    let mut cmd = Command::new(&compiler.exe);
    cmd.arg(CHILD_COMMAND)
        .arg("--compiler")
        .arg(strategy_name(strategy));
    if fuel {
        cmd.arg("--fuel");
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(ChildError::Spawn)?;
    let (Some(mut stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(ChildError::Refused(
            "the compiler process has no pipes".into(),
        ));
    };
    let max_output = compiler.max_output;
    // Write the input and read both outputs at once: a child blocked on a
    // full pipe must not wait for a parent blocked on another. Each reader
    // reads to the end (so the child never blocks), keeping at most its cap.
    let (status, out, err) = std::thread::scope(|scope| {
        scope.spawn(move || {
            let _ = stdin.write_all(bytes);
        });
        let out = scope.spawn(move || read_capped(stdout, max_output + 1));
        let err = scope.spawn(move || read_capped(stderr, MAX_REASON));
        let status = wait_until(&mut child, compiler.deadline);
        (
            status,
            out.join().ok().and_then(Result::ok),
            err.join().ok().and_then(Result::ok).unwrap_or_default(),
        )
    });
    let reason = String::from_utf8_lossy(&err).trim().to_string();
    match (status?, out) {
        (s, Some(out)) if s.success() && out.len() <= max_output => Ok(out),
        (s, Some(_)) if s.success() => Err(ChildError::Refused(format!(
            "the compiled code is larger than {} MiB",
            max_output >> 20
        ))),
        (_, _) if !reason.is_empty() => Err(ChildError::Refused(reason)),
        (s, _) => Err(ChildError::Refused(format!(
            "the compiler process ended without code ({})",
            describe(s)
        ))),
    }
}

/// Waits for `child` to end; kills it after `limit` (or when it cannot be
/// waited for) and says why.
fn wait_until(
    child: &mut std::process::Child,
    limit: Duration,
) -> Result<std::process::ExitStatus, ChildError> {
    let deadline = Instant::now() + limit;
    let stop = |child: &mut std::process::Child, reason: String| {
        let _ = child.kill();
        let _ = child.wait();
        Err(ChildError::Refused(reason))
    };
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
            Ok(None) => {
                return stop(
                    child,
                    format!("the compile took longer than {limit:?} and was stopped"),
                );
            }
            Err(e) => return stop(child, format!("cannot wait for the compiler process: {e}")),
        }
    }
}

/// Reads `from` to its end, keeping the first `cap` bytes.
fn read_capped(mut from: impl Read, cap: usize) -> std::io::Result<Vec<u8>> {
    let mut kept = Vec::new();
    (&mut from).take(cap as u64).read_to_end(&mut kept)?;
    std::io::copy(&mut from, &mut std::io::sink())?;
    Ok(kept)
}

/// An exit status in words: its code, or the signal that ended it.
fn describe(status: std::process::ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return format!("killed by signal {sig}: out of memory or a compiler crash");
        }
    }
    format!("{status}")
}

/// The child's side (`weft compile-plugin --compiler NAME [--fuel]`): caps
/// its own address space, reads a component from standard input, writes its
/// compiled code to standard output. Exit 0 with the code, or 1 with the
/// reason on standard error.
pub fn child_main(compiler: &str, fuel: bool) -> ExitCode {
    cap_address_space(CHILD_ADDRESS_SPACE);
    let strategy = match compiler {
        "winch" => Strategy::Winch,
        "cranelift" => Strategy::Cranelift,
        other => {
            eprintln!("unknown compiler {other:?} (expected cranelift or winch)");
            return ExitCode::from(2);
        }
    };
    let mut bytes = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut bytes) {
        eprintln!("cannot read the component: {e}");
        return ExitCode::FAILURE;
    }
    let config = super::engine::compile_config(fuel, strategy);
    let compiled = Engine::new(&config).and_then(|engine| engine.precompile_component(&bytes));
    match compiled {
        Ok(code) => {
            let mut out = std::io::stdout().lock();
            if let Err(e) = out.write_all(&code).and_then(|()| out.flush()) {
                eprintln!("cannot write the compiled code: {e}");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Sets this process's `RLIMIT_AS` (Linux; nothing elsewhere).
fn cap_address_space(bytes: u64) {
    #[cfg(target_os = "linux")]
    {
        let limit = libc::rlimit {
            rlim_cur: bytes,
            rlim_max: bytes,
        };
        // SAFETY: setrlimit reads the struct it is given and only lowers
        // this process's own limit.
        unsafe {
            libc::setrlimit(libc::RLIMIT_AS, &limit);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = bytes;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_capped_keeps_the_cap_and_reads_the_rest() {
        let mut input = std::io::Cursor::new(vec![7u8; 10_000]);
        let kept = read_capped(&mut input, 100).unwrap();
        assert_eq!(kept.len(), 100);
        // The rest was read (a child writing it is not left blocked).
        assert_eq!(input.position(), 10_000);
    }

    #[test]
    fn code_compiled_in_process_loads_on_the_engine_it_was_compiled_for() {
        let engine = Engine::new(&super::super::engine::compile_config(
            false,
            Strategy::Cranelift,
        ))
        .unwrap();
        let component = b"\0asm\x0d\0\x01\0";
        let code = compile(
            &CompileIn::ThisProcess,
            &engine,
            Strategy::Cranelift,
            false,
            component,
        )
        .unwrap();
        // SAFETY: `code` was compiled just now for this engine.
        assert!(unsafe { wasmtime::component::Component::deserialize(&engine, &code) }.is_ok());
    }
}
