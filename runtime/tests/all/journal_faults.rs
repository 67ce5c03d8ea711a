//! The journal when the disk turns against it, against the real binary: a
//! full disk (no write can land: new messages are refused with a reason,
//! nothing already acknowledged is lost, and the runtime recovers by itself
//! when space returns), and a damaged journal at start (a clear error naming
//! the file; never a silent new, empty journal).

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::run::{Weft, a01, adt_config};

/// Sets the soft limit on the size of any file the process writes
/// (RLIMIT_FSIZE). A write past it fails with EFBIG, which the journal sees
/// exactly as it sees ENOSPC on a full disk: the write did not land. This
/// needs no privileges, unlike a small tmpfs or a loop device.
fn set_file_size_limit(pid: u32, bytes: Option<u64>) {
    let limit = libc::rlimit {
        rlim_cur: bytes.unwrap_or(libc::RLIM_INFINITY),
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: prlimit reads `limit` and writes nothing through the null
    // old-limit pointer.
    let rc = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_FSIZE,
            &limit,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
}

/// Control ids found in the delivered Bundles' file names.
fn delivered(weft: &Weft) -> BTreeSet<String> {
    weft.out_files()
        .iter()
        .filter_map(|p| p.file_name()?.to_str()?.split('-').next().map(String::from))
        .collect()
}

fn wait_until(timeout: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    ok()
}

#[test]
fn a_full_disk_refuses_new_messages_loses_nothing_and_recovers() {
    let weft = Weft::start(|d| adt_config(d, "after-commit", ""));
    let mut c = weft.client();
    let mut acked = BTreeSet::new();
    for i in 0..20 {
        let id = format!("BEFORE{i}");
        assert_eq!(c.exchange(&a01(&id, &format!("B{i}"))).code, "AA");
        acked.insert(id);
    }

    // The disk is full: no write lands anywhere (journal, WAL, output files).
    set_file_size_limit(weft.pid(), Some(1024));
    for i in 0..10 {
        let id = format!("FULL{i}");
        let ack = c.exchange(&a01(&id, &format!("F{i}")));
        assert_eq!(ack.code, "AE", "{}", ack.text);
        assert!(
            ack.text.contains("journal write failed"),
            "the AE says why: {}",
            ack.text
        );
    }
    assert!(
        weft.wait_for_log("journal write failed", Duration::from_secs(5)),
        "the refusal is in the log:\n{}",
        weft.log_text()
    );

    // Space returns: the runtime takes messages again without a restart and
    // delivers everything it had acknowledged.
    set_file_size_limit(weft.pid(), None);
    let mut again = None;
    for attempt in 0..50 {
        let id = format!("AFTER{attempt}");
        let ack = c.exchange(&a01(&id, &format!("A{attempt}")));
        if ack.code == "AA" {
            acked.insert(id);
            again = Some(attempt);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(again, Some(0), "the first message after recovery is taken");
    for i in 1..20 {
        let id = format!("AFTER{i}");
        assert_eq!(c.exchange(&a01(&id, &format!("A{i}"))).code, "AA");
        acked.insert(id);
    }
    let ok = wait_until(Duration::from_secs(60), || {
        acked.iter().all(|id| delivered(&weft).contains(id))
    });
    let got = delivered(&weft);
    let missing: Vec<_> = acked.difference(&got).collect();
    assert!(
        ok,
        "every acknowledged message is delivered; missing {missing:?}\n{}",
        weft.log_text()
    );
    assert!(
        got.iter().all(|id| !id.starts_with("FULL")),
        "nothing refused was delivered: {got:?}"
    );
}

#[test]
fn a_damaged_journal_is_refused_at_start_naming_the_file() {
    let mut weft = Weft::start(|d| adt_config(d, "after-commit", ""));
    let mut c = weft.client();
    for i in 0..50 {
        assert_eq!(c.exchange(&a01(&format!("D{i}"), "1")).code, "AA");
    }
    drop(c);
    assert_eq!(weft.stop(), 0);
    let journal = weft.dir().join("data").join("journal.db");
    let good = std::fs::read(&journal).unwrap();
    assert!(good.len() > 8192, "the journal has pages to damage");

    // Pages overwritten in the middle (a bad sector, a partial copy).
    let mut damaged = good.clone();
    let start = 4096;
    for b in &mut damaged[start..good.len().min(start + 8192)] {
        *b = 0xA5;
    }
    std::fs::write(&journal, &damaged).unwrap();
    let (code, err) = crate::common::run::run_refused(weft.config_path());
    assert_ne!(code, 0, "{err}");
    assert!(
        err.contains(&journal.display().to_string()),
        "the error names the file: {err}"
    );
    let after = std::fs::read(&journal).unwrap();
    let first_change = after.iter().zip(&damaged).position(|(a, b)| a != b);
    assert!(
        after.len() == damaged.len() && first_change.is_none(),
        "the damaged file is left as it was, for recovery: {} bytes, was {}; first change at {first_change:?}",
        after.len(),
        damaged.len()
    );

    // Truncated to its header page.
    std::fs::write(&journal, &good[..1000]).unwrap();
    let (code, err) = crate::common::run::run_refused(weft.config_path());
    assert_ne!(code, 0, "{err}");
    assert!(err.contains(&journal.display().to_string()), "{err}");

    // Emptied (a file system repair that kept the name).
    std::fs::write(&journal, b"").unwrap();
    let (code, err) = crate::common::run::run_refused(weft.config_path());
    assert_ne!(code, 0, "{err}");
    assert!(err.contains(&journal.display().to_string()), "{err}");
    assert_eq!(std::fs::metadata(&journal).unwrap().len(), 0);

    // The original, put back, serves again with its 50 messages.
    std::fs::write(&journal, &good).unwrap();
    weft.restart();
    let out = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["messages", "--config"])
        .arg(weft.config_path())
        .args(["list", "--limit", "100"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().count(),
        51,
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
