//! Where a message's CPU goes: `perf record` with DWARF call stacks on a
//! running `weft` process, each sample given to the stage of the message
//! path its stack shows (the innermost frame that names one), and the
//! process's CPU time per message split by those shares.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The stages of the message path, in the order a message meets them.
pub const STAGES: &[&str] = &[
    "MLLP read + framing",
    "HL7 parse (intake)",
    "journal: intake rows",
    "journal: outcome rows",
    "journal: delivery rows",
    "journal: commit + fsync",
    "queue hand-off",
    "plugin call: host share",
    "plugin call: guest code",
    "dispatch: due() + bookkeeping",
    "destination: file write + fsync",
    "ACK build + write",
    "metrics + logs",
    "runtime: scheduler, wakeups",
    "other",
];

/// Which stage a frame's symbol names: checked in this order against each
/// frame from the innermost out; the first frame that matches decides.
const OWNERS: &[(&str, &str)] = &[
    ("weft_hl7::ack", "ACK build + write"),
    ("build_ack", "ACK build + write"),
    ("weft_hl7::", "HL7 parse (intake)"),
    ("weft_mllp::", "MLLP read + framing"),
    ("writer::append", "journal: intake rows"),
    ("writer::earlier", "journal: intake rows"),
    ("writer::record", "journal: outcome rows"),
    ("writer::delivered", "journal: delivery rows"),
    ("writer::failed", "journal: delivery rows"),
    ("writer::write_loop", "journal: commit + fsync"),
    ("::due", "dispatch: due() + bookkeeping"),
    ("::next_due", "dispatch: due() + bookkeeping"),
    (
        "weft::destinations::dispatch",
        "dispatch: due() + bookkeeping",
    ),
    (
        "weft::private::write_synced",
        "destination: file write + fsync",
    ),
    ("weft::private::sync_dir", "destination: file write + fsync"),
    ("weft::destinations::", "destination: file write + fsync"),
    ("wasmtime", "plugin call: host share"),
    ("weft::plugins::", "plugin call: host share"),
    ("weft::journal::", "journal: commit + fsync"),
    ("weft::pipeline::", "queue hand-off"),
    ("weft::metrics", "metrics + logs"),
    ("weft::activity", "metrics + logs"),
    ("tracing", "metrics + logs"),
    ("weft::sources::", "MLLP read + framing"),
];

/// One profile: samples per stage.
#[derive(Default, Debug)]
pub struct Profile {
    /// Samples per stage name.
    pub samples: BTreeMap<&'static str, u64>,
    /// Every sample.
    pub total: u64,
}

/// Records `pid` for `secs` with DWARF call stacks into `out`; `false`
/// when `perf` is missing or cannot record here.
pub fn record(pid: u32, secs: u64, out: &Path) -> bool {
    let status = Command::new("perf")
        .args([
            "record",
            "-q",
            "-F",
            "499",
            "--call-graph",
            "dwarf,32768",
            "-p",
        ])
        .arg(pid.to_string())
        .arg("-o")
        .arg(out)
        .args(["--", "sleep"])
        .arg(secs.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    matches!(status, Ok(s) if s.success()) && out.exists()
}

/// Gives each sample of the recording at `data` to a stage.
pub fn attribute(data: &Path) -> Option<Profile> {
    let mut child = Command::new("perf")
        .args(["script", "--no-inline", "-F", "comm,tid,ip,sym", "-i"])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let stdout = child.stdout.take()?;
    let mut profile = Profile::default();
    let (mut comm, mut frames) = (String::new(), Vec::<String>::new());
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            if !comm.is_empty() {
                profile.add(classify(&comm, &frames));
            }
            comm.clear();
            frames.clear();
        } else if line.starts_with(char::is_whitespace) {
            // "    7f12ab34 symbol" (an address, then the symbol).
            let frame = line.trim();
            let sym = frame.split_once(' ').map_or("", |(_, s)| s.trim());
            frames.push(sym.to_string());
        } else {
            comm = line
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
        }
    }
    if !comm.is_empty() {
        profile.add(classify(&comm, &frames));
    }
    let _ = child.wait();
    (profile.total > 0).then_some(profile)
}

impl Profile {
    fn add(&mut self, stage: &'static str) {
        *self.samples.entry(stage).or_default() += 1;
        self.total += 1;
    }

    /// The share of the samples `stage` has.
    pub fn share(&self, stage: &str) -> f64 {
        self.samples.get(stage).copied().unwrap_or(0) as f64 / self.total.max(1) as f64
    }
}

/// The stage a sample belongs to, from its thread's name and its frames
/// (innermost first).
pub fn classify(comm: &str, frames: &[String]) -> &'static str {
    for (i, frame) in frames.iter().enumerate() {
        let Some(&(_, stage)) = OWNERS.iter().find(|(p, _)| frame.contains(p)) else {
            continue;
        };
        // The MLLP source's own code reads frames and writes ACKs: which
        // one, the kernel's frames inside it say.
        if stage == "MLLP read + framing"
            && frame.starts_with("weft::sources::mllp")
            && frames[..i]
                .iter()
                .any(|f| f.contains("sendmsg") || f.contains("sys_write"))
        {
            return "ACK build + write";
        }
        return stage;
    }
    let leaf = frames.first().map_or("", String::as_str);
    if comm.starts_with("weft-worker") && (leaf.is_empty() || leaf.contains("[unknown]")) {
        // Compiled plugin code: no symbols, and the unwinding stops there.
        return "plugin call: guest code";
    }
    if comm.starts_with("weft-journal") {
        return "journal: commit + fsync";
    }
    if frames
        .iter()
        .any(|f| f.contains("tokio::") || f.contains("futex") || f.contains("schedule"))
    {
        return "runtime: scheduler, wakeups";
    }
    "other"
}

/// The process's CPU time so far (user + system), from `/proc`.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15: 12 and 13 after the state.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_millis((ticks(11) + ticks(12)) * 1000 / hz)
}

/// Bytes each thread named like `prefix` passed to `write` so far
/// (`wchar` of `/proc/PID/task/TID/io`).
pub fn written_by(pid: u32, prefix: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with(prefix))
        })
        .map(|t| {
            std::fs::read_to_string(t.path().join("io"))
                .unwrap_or_default()
                .lines()
                .find_map(|l| l.strip_prefix("wchar: ")?.trim().parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum()
}
