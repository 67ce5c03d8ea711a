//! The SQLite journal's tests: the behaviour every engine shares
//! (`../conformance.rs`), then its own: durability across reopen,
//! damaged files, space given back, a command attached beside the
//! runtime.

use super::*;
use crate::journal::NewDelivery;

/// A new journal in a directory of its own.
fn fresh() -> (SqliteJournal, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (SqliteJournal::open(&dir.path().join("j.db")).unwrap(), dir)
}

crate::journal::conformance::message_path!(fresh());
crate::journal::conformance::queries!(fresh());
crate::journal::conformance::operations!(fresh());
crate::journal::conformance::audit_trail!(fresh());

#[test]
fn records_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    {
        let j = SqliteJournal::open(&path).unwrap();
        j.append(msg("m1")).wait().unwrap();
        j.append(msg("m2")).wait().unwrap();
        j.record(Outcome {
            message_id: "m1".into(),
            status: MessageStatus::Transformed,
            error: None,
            versions: vec![crate::journal::PluginUse {
                plugin: "p".into(),
                sha256: "abc".into(),
                declared_version: Some("1.2.0".into()),
                signer: Some("site-team".into()),
                key: Some("0123456789abcdef".into()),
            }],
            deliveries: vec![NewDelivery {
                destination: "files".into(),
                n: 1,
                content_type: "application/json".into(),
                body: b"{}".to_vec(),
                ordering_key: None,
            }],
        })
        .wait()
        .unwrap();
    }
    let j = SqliteJournal::open(&path).unwrap();
    let unfinished = j.unfinished().unwrap();
    assert_eq!(unfinished.len(), 1);
    assert_eq!(unfinished[0].message.id, "m2");
    let due = j.due("files", 10, 10, &[]).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].control_id, "C-m1");
    j.attempt_failed(due[0].id, "down", Some(100))
        .wait()
        .unwrap();
    assert!(j.due("files", 10, 10, &[]).unwrap().is_empty());
    assert_eq!(j.next_due("files").unwrap(), Some(100));
    assert_eq!(j.due("files", 100, 10, &[]).unwrap()[0].attempts, 1);
    j.delivered(due[0].id, 200).wait().unwrap();
    assert_eq!(j.next_due("files").unwrap(), None);
    assert!(j.pending_counts().unwrap().is_empty());
    // The plugin version that made it, and its signer, come back.
    let plugins = j.show("m1").unwrap().unwrap().plugins;
    assert_eq!(
        plugins[0].signature(),
        "signed by site-team (key 0123456789abcdef)"
    );
    assert_eq!(plugins[0].version(), "p@abc");
}

#[test]
fn versions_recorded_before_signers_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let j = SqliteJournal::open(&dir.path().join("j.db")).unwrap();
    j.append(msg("m1")).wait().unwrap();
    j.side(|c| {
        c.execute(
            "UPDATE messages SET plugin_versions = 'a@11,b@22' WHERE id = 'm1'",
            [],
        )
        .map_err(write_err)
    })
    .unwrap();
    let plugins = j.show("m1").unwrap().unwrap().plugins;
    let versions: Vec<String> = plugins.iter().map(|p| p.version()).collect();
    assert_eq!(versions, ["a@11", "b@22"]);
    assert_eq!(plugins[1].signature(), "unsigned");
}

#[test]
fn refuses_a_damaged_journal() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let e = SqliteJournal::open(&empty).err().unwrap();
    assert!(
        e.to_string().contains("empty.db") && e.to_string().contains("empty"),
        "{e}"
    );
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![0x42u8; 8192]).unwrap();
    let e = SqliteJournal::open(&junk).err().unwrap();
    assert!(e.to_string().contains("junk.db"), "{e}");
}

#[test]
fn purges_give_space_back_even_in_an_older_journal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        // A journal from before incremental vacuum was set.
        let c = Connection::open(&path).unwrap();
        c.pragma_update(None, "journal_mode", "WAL").unwrap();
        c.execute_batch("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);")
            .unwrap();
    }
    let j = SqliteJournal::open(&path).unwrap();
    for i in 0..300 {
        let mut m = msg(&format!("m{i}"));
        m.body = vec![b'x'; 8000];
        j.append(m).wait().unwrap();
        j.record(Outcome {
            message_id: format!("m{i}"),
            status: MessageStatus::Rejected,
            error: Some("no".into()),
            versions: vec![],
            deliveries: vec![],
        })
        .wait()
        .unwrap();
    }
    j.close();
    drop(j);
    let j = SqliteJournal::attach(&path, Attach::Existing).unwrap();
    let auto: i64 = j
        .side(|c| {
            c.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
                .map_err(read_err)
        })
        .unwrap();
    assert_eq!(auto, 2, "rebuilt with incremental vacuum");
    let before = j.side(|c| operate::used_bytes(c)).unwrap();
    assert!(before > 2_000_000, "{before}");
    let (purged, after) = j.purge_to_size(1024 * 1024).unwrap();
    assert!(purged.messages > 150 && purged.messages < 300, "{purged:?}");
    assert!(after <= 1024 * 1024, "{after}");
    drop(j);
    let conn = Connection::open(&path).unwrap();
    let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    let file = std::fs::metadata(&path).unwrap().len();
    assert!(file <= 1024 * 1024, "the file shrank: {file}");
}

#[test]
fn a_command_attached_beside_the_runtime_sees_and_acts_on_its_journal() {
    use crate::journal::DeliveryState;
    use crate::journal::query::StatusFilter;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let missing = SqliteJournal::attach(&path, Attach::Existing)
        .err()
        .unwrap();
    assert!(missing.to_string().contains("no journal here"), "{missing}");
    assert!(!path.exists(), "looking did not make one");
    let runtime = SqliteJournal::open(&path).unwrap();
    runtime.append(msg("m1")).wait().unwrap();
    runtime
        .record(crate::journal::test_outcome("m1"))
        .wait()
        .unwrap();
    let id = runtime.due("d", 10, 10, &[]).unwrap()[0].id;
    runtime.attempt_failed(id, "refused", None).wait().unwrap();

    let cli = SqliteJournal::attach(&path, Attach::Existing).unwrap();
    let dead = cli
        .list(&Filter {
            status: Some(StatusFilter::Delivery(DeliveryState::Dead)),
            limit: 10,
            ..Filter::default()
        })
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].status, MessageStatus::Transformed);
    let shown = cli.show("m1").unwrap().unwrap();
    assert_eq!(shown.deliveries[0].state, DeliveryState::Dead);
    assert_eq!(cli.resend_dead().unwrap(), 1);
    assert_eq!(
        runtime.due("d", 10, 10, &[]).unwrap().len(),
        1,
        "the runtime sees it due again"
    );
    // Writes of the message path commit at once when attached.
    cli.append(msg("m2")).wait().unwrap();
    assert_eq!(runtime.unfinished().unwrap().len(), 1);
    let recent = runtime.find_recent("A", "F", "C-m1", 0).unwrap().unwrap();
    assert_eq!(recent.status, MessageStatus::Transformed);
    // Both append to one audit chain.
    cli.audit_append(&Record::cli("messages.resend-dead", vec![], "queued 1"))
        .unwrap();
    runtime
        .audit_append(&Record::cli("message.body", vec!["m1".into()], "ok"))
        .unwrap();
    assert!(matches!(
        cli.audit_verify().unwrap(),
        Verdict::Intact { entries: 2, .. }
    ));
    cli.close();
    assert_eq!(cli.append(msg("m3")).wait(), Err(JournalError::Closed));
}

#[test]
fn a_closed_journal_is_one_whole_file_and_a_damaged_one_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE);
    let wal = dir.path().join(format!("{FILE}-wal"));
    let j = SqliteJournal::open(&path).unwrap();
    j.append(msg("m1")).wait().unwrap();
    assert!(wal.exists(), "written through the write-ahead log");
    j.close();
    assert_eq!(j.pending_counts(), Err(JournalError::Closed));
    assert!(!wal.exists(), "closing copied the log in and removed it");

    // A journal left with a log (as by a process killed), then damaged:
    // refused, and neither file is touched.
    let left = connect(&path, JournalSync::Full).unwrap();
    checkpoint_on_close(&left, false).unwrap();
    left.execute("INSERT INTO meta (key, value) VALUES ('x', 'y')", [])
        .unwrap();
    drop(left);
    assert!(wal.exists());
    let mut bytes = std::fs::read(&path).unwrap();
    let end = bytes.len().min(4096 + 8192);
    bytes[4096..end].fill(0xA5);
    std::fs::write(&path, &bytes).unwrap();
    let log = std::fs::read(&wal).unwrap();
    assert!(SqliteJournal::open(&path).is_err());
    assert!(
        std::fs::read(&path).unwrap() == bytes,
        "the file is as it was"
    );
    assert!(std::fs::read(&wal).unwrap() == log, "so is its log");
}

/// A connection to a new journal in `dir`, schema made, for tests that
/// edit rows behind the journal's back.
pub(super) fn connection(dir: &Path) -> Connection {
    let path = dir.join(FILE);
    let mut conn = connect(&path, JournalSync::Full).unwrap();
    migrate(&mut conn, &path).unwrap();
    conn
}

#[test]
fn a_bulk_selection_takes_every_match_and_no_more() {
    let dir = tempfile::tempdir().unwrap();
    let j = SqliteJournal::open(&dir.path().join("journal.db")).unwrap();
    for i in 0..30 {
        let mut m = msg(&format!("m{i:02}"));
        m.received_at = i;
        m.route = if i % 3 == 0 { "oru" } else { "adt" }.into();
        j.append(m).wait().unwrap();
    }
    let adt = Filter {
        route: Some("adt".into()),
        ..Filter::default()
    };
    let all = j.select(&adt, 1000).unwrap();
    assert_eq!(all.len(), 20);
    assert_eq!(all[0], "m29", "newest first");
    assert_eq!(j.select(&adt, 5).unwrap().len(), 5);
    let since = Filter {
        since: Some(25),
        ..adt.clone()
    };
    assert_eq!(
        j.select(&since, 1000).unwrap(),
        ["m29", "m28", "m26", "m25"]
    );
    assert_eq!(since.describe(), "route=adt since=1970-01-01 00:00:00");
}

#[test]
fn a_read_only_journal_reads_each_output_once_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let j = SqliteJournal::open(&path).unwrap();
    j.append(msg("m")).wait().unwrap();
    j.append(msg("waiting")).wait().unwrap();
    // Two outputs, the first to two destinations.
    let delivery = |destination: &str, n: usize, body: &[u8]| NewDelivery {
        destination: destination.into(),
        n,
        content_type: "text/plain".into(),
        body: body.to_vec(),
        ordering_key: None,
    };
    j.record(Outcome {
        deliveries: vec![
            delivery("a", 1, b"one"),
            delivery("b", 1, b"one"),
            delivery("a", 2, b"two"),
        ],
        ..crate::journal::test_outcome("m")
    })
    .wait()
    .unwrap();

    // Beside the open journal, as `weft replay` reads beside `weft run`.
    let ro = SqliteJournal::read_only(&path).unwrap();
    let r = ro.recorded("m").unwrap().unwrap();
    assert_eq!(r.status, MessageStatus::Transformed);
    assert_eq!(r.route, "adt");
    let bodies: Vec<&[u8]> = r.outputs.iter().map(|o| o.body.as_slice()).collect();
    assert_eq!(bodies, [b"one".as_slice(), b"two".as_slice()]);
    assert_eq!(
        ro.recorded("waiting").unwrap().unwrap().status,
        MessageStatus::Received
    );
    assert!(ro.recorded("nope").unwrap().is_none());
    // Every write fails; the journal keeps what it had.
    assert!(ro.append(msg("x")).wait().is_err());
    assert!(ro.reprocess(&["m".to_string()]).is_err());
    let all = Filter {
        limit: 10,
        ..Filter::default()
    };
    assert_eq!(j.list(&all).unwrap().len(), 2);
    // After a reprocessing, the current run's outputs only.
    j.reprocess(&["m".to_string()]).unwrap();
    assert!(ro.recorded("m").unwrap().unwrap().outputs.is_empty());

    // No journal there, or one of another schema: an error, no file made.
    let none = dir.path().join("none.db");
    assert!(SqliteJournal::read_only(&none).is_err());
    assert!(!none.exists());
    j.close();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE meta SET value = '6' WHERE key = 'schema_version'",
        [],
    )
    .unwrap();
    drop(conn);
    let e = SqliteJournal::read_only(&path).err().unwrap().to_string();
    assert!(e.contains("schema version 6"), "{e}");
}

#[test]
fn a_lazy_write_waits_for_an_intake_only_while_messages_arrive() {
    let (j, _dir) = fresh();
    // m0 is taken in long before the rest (its outcome is recorded last).
    j.append(msg("m0")).wait().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    // Messages arriving (an intake just now): a lazy write alone is held
    // for LINGER, then committed anyway.
    j.append(msg("m1")).wait().unwrap();
    let t = std::time::Instant::now();
    j.record_lazily(crate::journal::test_outcome("m1"))
        .wait()
        .unwrap();
    assert!(t.elapsed() >= writer::LINGER, "{:?}", t.elapsed());
    // Held or not, it lands: the outcome and its delivery are recorded.
    let detail = j.show("m1").unwrap().expect("m1");
    assert_eq!(detail.summary.status, MessageStatus::Transformed);
    // An intake arriving while one is held shares its commit: both land.
    let lazy = j.record_lazily(crate::journal::test_outcome("m0"));
    let held = std::thread::spawn(move || lazy.wait());
    j.append(msg("m2")).wait().unwrap();
    held.join().unwrap().unwrap();
    let d = j.due("d", i64::MAX, 10, &[]).unwrap();
    assert_eq!(d.len(), 2, "both outcomes' deliveries are due");
    j.delivered_lazily(d[0].id, 5).wait().unwrap();
    assert_eq!(j.due("d", i64::MAX, 10, &[]).unwrap().len(), 1);
}
