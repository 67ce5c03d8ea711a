//! `weft backup` under MLLP load and `weft restore` on a fresh directory:
//! every message acknowledged before the backup began is in the restored
//! journal and is delivered by a `weft run` started on it; the audit trail
//! verifies; a damaged archive is refused naming the file, and nothing of
//! it is written.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::fhir_server::free_addr;
use crate::common::printed;
use crate::common::run::{Client, Weft, a01, relay_config};

/// Every ADT message to the MLLP destination `lis` at `lis`, unchanged;
/// the journal in `data_dir` (default: the config's own directory's).
fn config(lis: std::net::SocketAddr, data_dir: Option<&Path>) -> String {
    let data = data_dir
        .map(|d| format!("[runtime]\ndata_dir = \"{}\"\n", d.display()))
        .unwrap_or_default();
    relay_config(lis, &data)
}

fn weft(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(args)
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), printed(&out))
}

#[test]
fn a_backup_under_load_restores_every_acknowledged_message_and_delivers_it() {
    // Where the LIS will be once restored; during the backup nothing
    // listens there, so every delivery is pending.
    let receiver = Weft::receiver();
    let down = free_addr();
    let mut original = Weft::start(|_| config(down, None));

    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (acked, stop, addr) = (acked.clone(), stop.clone(), original.addr);
        std::thread::spawn(move || {
            let mut c = Client::connect(addr);
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let id = format!("BK-{i:05}");
                assert_eq!(c.exchange(&a01(&id, &i.to_string())).code, "AA");
                acked.lock().unwrap().push(id);
                i += 1;
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < 300 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let before: Vec<String> = acked.lock().unwrap().clone();
    assert!(before.len() >= 300, "only {} acknowledged", before.len());

    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("weft.tar");
    let started = Instant::now();
    let config_arg = original.config_path().display().to_string();
    let (code, out) = weft(&["backup", archive.to_str().unwrap(), "--config", &config_arg]);
    let took = started.elapsed();
    assert_eq!(code, 0, "{out}");
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    let total = acked.lock().unwrap().len();
    assert!(
        total > before.len(),
        "the load went on during the backup: {out}"
    );
    println!(
        "backup under load: {} acknowledged before, {total} by the end; {} ({:.0} ms): {out}",
        before.len(),
        std::fs::metadata(&archive).unwrap().len(),
        took.as_secs_f64() * 1000.0
    );
    assert_eq!(original.stop(), 0);

    // A damaged copy: one byte of the journal changed. Refused, naming it,
    // and nothing written.
    let damaged = work.path().join("damaged.tar");
    std::fs::copy(&archive, &damaged).unwrap();
    let offset = {
        let mut t = tar::Archive::new(std::fs::File::open(&damaged).unwrap());
        t.entries()
            .unwrap()
            .map(|e| e.unwrap())
            .find(|e| e.path().unwrap().to_str() == Some("journal.db"))
            .map(|e| e.raw_file_position())
            .unwrap()
    };
    let mut bytes = std::fs::read(&damaged).unwrap();
    bytes[offset as usize + 5000] ^= 0x01;
    std::fs::write(&damaged, bytes).unwrap();
    let refused_dir = work.path().join("refused");
    let (code, out) = weft(&[
        "restore",
        damaged.to_str().unwrap(),
        "--to",
        refused_dir.to_str().unwrap(),
    ]);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("damaged archive: journal.db") && out.contains("sha256"),
        "{out}"
    );
    assert!(
        !refused_dir.join("journal.db").exists()
            && !refused_dir.join("journal.db.restoring").exists(),
        "nothing of a damaged archive is written"
    );

    // Restored on a fresh directory, with the LIS now up.
    let data = work.path().join("restored");
    let (code, out) = weft(&[
        "restore",
        archive.to_str().unwrap(),
        "--to",
        data.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("intact"), "{out}");
    // Never over a journal.
    let (code, again) = weft(&[
        "restore",
        archive.to_str().unwrap(),
        "--to",
        data.to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert!(again.contains("already holds a journal"), "{again}");

    let mut restored = Weft::start(|_| config(receiver.addr, Some(&data)));
    let missing = receiver.missing(&before, Duration::from_secs(120));
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged before the backup not delivered after the restore: {:?}",
        missing.len(),
        before.len(),
        &missing[..missing.len().min(5)]
    );
    let restored_config = restored.config_path().display().to_string();
    let (code, out) = weft(&["audit", "verify", "--config", &restored_config]);
    assert_eq!(code, 0, "{out}");
    let (_, out) = weft(&["audit", "list", "--config", &restored_config]);
    assert!(
        out.contains("backup") && out.contains("restore"),
        "both on the record: {out}"
    );
    assert_eq!(restored.stop(), 0);

    // An archive of a newer weft (its journal's schema ahead of this one's):
    // refused at open, naming the versions, and not left behind.
    let newer = work.path().join("newer.tar");
    rewrite_journal(&archive, &newer, |db| {
        let c = rusqlite::Connection::open(db).unwrap();
        c.execute(
            "UPDATE meta SET value = '99' WHERE key = 'schema_version'",
            [],
        )
        .unwrap();
    });
    let target = work.path().join("newer-data");
    let (code, out) = weft(&[
        "restore",
        newer.to_str().unwrap(),
        "--to",
        target.to_str().unwrap(),
    ]);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("schema version 99 is newer") && out.contains("nothing was restored"),
        "{out}"
    );
    assert!(!target.join("journal.db").exists(), "not left behind");
}

/// A copy of `archive` whose journal `change` edited, its manifest's
/// sums made to match (a whole archive, as a newer weft would write).
fn rewrite_journal(archive: &Path, to: &Path, change: impl FnOnce(&Path)) {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut entries: Vec<(String, Vec<u8>)> =
        tar::Archive::new(std::fs::File::open(archive).unwrap())
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let name = e.path().unwrap().to_string_lossy().into_owned();
                let mut bytes = Vec::new();
                e.read_to_end(&mut bytes).unwrap();
                (name, bytes)
            })
            .collect();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("journal.db");
    let at = entries.iter().position(|(n, _)| n == "journal.db").unwrap();
    std::fs::write(&db, &entries[at].1).unwrap();
    change(&db);
    let bytes = std::fs::read(&db).unwrap();
    let hex = |b: &[u8]| {
        Sha256::digest(b)
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<String>()
    };
    let mut manifest: serde_json::Value = serde_json::from_slice(&entries[0].1).unwrap();
    for f in manifest["files"].as_array_mut().unwrap() {
        if f["path"] == "journal.db" {
            f["sha256"] = hex(&bytes).into();
            f["bytes"] = bytes.len().into();
        }
    }
    entries[at].1 = bytes;
    entries[0].1 = serde_json::to_vec_pretty(&manifest).unwrap();
    entries[1].1 = format!("{}\n", hex(&entries[0].1)).into_bytes();
    let mut t = tar::Builder::new(std::fs::File::create(to).unwrap());
    for (name, bytes) in &entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o600);
        t.append_data(&mut h, name, bytes.as_slice()).unwrap();
    }
    t.finish().unwrap();
}
