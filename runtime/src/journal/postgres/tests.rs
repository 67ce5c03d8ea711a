//! The PostgreSQL journal against a real server of the tests' own (one
//! cluster for the test binary, a database per test): the behaviour every
//! engine shares, then what only several nodes on one database do.

use std::sync::OnceLock;

use postgres::NoTls;

use super::*;
use crate::journal::{NodeState, test_outcome};

/// The test binary's cluster.
fn cluster() -> &'static weft_test_postgres::Cluster {
    static C: OnceLock<weft_test_postgres::Cluster> = OnceLock::new();
    C.get_or_init(|| {
        weft_test_postgres::Cluster::start(false)
            .unwrap_or_else(|e| panic!("PostgreSQL for the tests: {e}"))
    })
}

fn open_on(url: &str, node: &str) -> PgJournal {
    PgJournal::open(url, node, "test", DEFAULT_LEASE).unwrap()
}

/// A new journal on a database of its own.
fn fresh() -> (PgJournal, ()) {
    (open_on(&cluster().database().unwrap(), "edge-a"), ())
}

crate::journal::conformance::message_path!(fresh());
crate::journal::conformance::queries!(fresh());
crate::journal::conformance::operations!(fresh());
crate::journal::conformance::audit_trail!(fresh());

#[test]
fn two_nodes_never_take_the_same_delivery_and_keep_each_keys_order() {
    let url = cluster().database().unwrap();
    let (a, b) = (open_on(&url, "edge-a"), open_on(&url, "edge-b"));
    // Accepted on both nodes, alternately; keys A and B.
    for i in 0..6 {
        let node = if i % 2 == 0 { &a } else { &b };
        let id = format!("m{i}");
        let key = if i < 3 { "A" } else { "B" };
        let mut m = msg(&id);
        m.ordering_keys = vec![("d".into(), key.into())];
        node.append(m).wait().unwrap();
        node.record(keyed_outcome(&id, key)).wait().unwrap();
    }
    // Each key's head only, and once: a takes both heads, b nothing.
    let on_a = a.due("d", 10, 10, &[]).unwrap();
    let ids: Vec<&str> = on_a.iter().map(|d| d.message_id.as_str()).collect();
    assert_eq!(ids, ["m0", "m3"]);
    assert!(b.due("d", 10, 10, &[]).unwrap().is_empty());
    // A delivered: its next is due, on whichever node asks first.
    a.delivered(on_a[0].id, 20).wait().unwrap();
    let on_b = b.due("d", 10, 10, &[]).unwrap();
    let ids: Vec<&str> = on_b.iter().map(|d| d.message_id.as_str()).collect();
    assert_eq!(ids, ["m1"]);
    assert!(a.due("d", 10, 10, &[on_a[1].id]).unwrap().is_empty());
}

#[test]
fn a_message_sent_to_two_nodes_at_once_is_kept_once() {
    let url = cluster().database().unwrap();
    let nodes = [
        open_on(&url, "edge-a"),
        open_on(&url, "edge-b"),
        open_on(&url, "edge-c"),
    ];
    // Each of 30 control ids reaches every node at the same moment (a
    // sender that retried on another connection through a load balancer).
    for round in 0..30 {
        let control = format!("C-{round}");
        let results: Vec<_> = std::thread::scope(|s| {
            let tasks: Vec<_> = nodes
                .iter()
                .enumerate()
                .map(|(n, node)| {
                    let m = NewMessage {
                        control_id: control.clone(),
                        received_at: 1_000 + round,
                        dedup_since: Some(0),
                        ..msg(&format!("r{round}n{n}"))
                    };
                    s.spawn(move || node.append(m).wait())
                })
                .collect();
            tasks.into_iter().map(|t| t.join().unwrap()).collect()
        });
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "{results:?}"
        );
        for r in results.iter().filter(|r| r.is_err()) {
            assert!(
                matches!(r, Err(JournalError::Duplicate { .. })),
                "{results:?}"
            );
        }
    }
}

#[test]
fn a_stopped_nodes_work_is_taken_over() {
    let url = cluster().database().unwrap();
    let (a, b) = (open_on(&url, "edge-a"), open_on(&url, "edge-b"));
    a.append(msg("accepted-on-a")).wait().unwrap();
    a.append(msg("delivering-on-a")).wait().unwrap();
    a.record(test_outcome("delivering-on-a")).wait().unwrap();
    assert_eq!(a.due("d", 10, 10, &[]).unwrap().len(), 1);
    // While a runs, its claims hold.
    assert!(b.unfinished().unwrap().is_empty());
    assert!(b.due("d", 10, 10, &[]).unwrap().is_empty());
    assert!(b.take_over(10).unwrap().is_empty());
    b.append(msg("accepted-on-b")).wait().unwrap();
    a.close();
    // A running node takes a stopped one's messages over, never its own
    // (which it is running).
    let taken = b.take_over(10).unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].message.id, "accepted-on-a");
    assert!(b.take_over(10).unwrap().is_empty());
    assert_eq!(b.due("d", 10, 10, &[]).unwrap().len(), 1);
    // Now b's: a third node gets none of them.
    let c = open_on(&url, "edge-c");
    assert!(c.unfinished().unwrap().is_empty());
    assert!(c.take_over(10).unwrap().is_empty());
    assert!(c.due("d", 10, 10, &[]).unwrap().is_empty());
}

#[test]
fn a_lapsed_lease_frees_the_claims_of_a_node_that_stopped_beating() {
    let url = cluster().database().unwrap();
    let (a, b) = (open_on(&url, "edge-a"), open_on(&url, "edge-b"));
    a.append(msg("m")).wait().unwrap();
    // A run that stops beating without saying so (a killed process).
    a.closed.store(true, Ordering::Release);
    if let Some(h) = a.heartbeat.lock().unwrap().take() {
        h.join().unwrap();
    }
    assert!(b.unfinished().unwrap().is_empty(), "a's lease still runs");
    lapse(&a, &url, DEFAULT_LEASE);
    let taken = b.unfinished().unwrap();
    assert_eq!(taken.len(), 1);
}

/// Runs `j`'s lease out (set back by `lease` and a millisecond, rather
/// than waited for).
fn lapse(j: &PgJournal, url: &str, lease: Duration) {
    let mut admin = postgres::Client::connect(url, NoTls).unwrap();
    admin
        .execute(
            "UPDATE nodes SET lease_until = lease_until - $2 WHERE run = $1",
            &[&j.run_id(), &(lease.as_millis() as i64 + 1)],
        )
        .unwrap();
}

#[test]
fn a_node_whose_lease_lapsed_cannot_settle_what_another_node_took_over() {
    let url = cluster().database().unwrap();
    // a's next heartbeat is minutes away.
    let long = Duration::from_secs(600);
    let a = PgJournal::open(&url, "edge-a", "test", long).unwrap();
    let b = open_on(&url, "edge-b");
    for id in ["m0", "m1"] {
        let mut m = msg(id);
        m.ordering_keys = vec![("d".into(), "K".into())];
        a.append(m).wait().unwrap();
        a.record(keyed_outcome(id, "K")).wait().unwrap();
    }
    a.append(msg("x")).wait().unwrap();
    let on_a = a.due("d", 10, 10, &[]).unwrap();
    assert_eq!(on_a.len(), 1);
    // a delivered m0, then lost the server for longer than its lease: b
    // takes m0 (and the message a was running) over.
    lapse(&a, &url, long);
    let on_b = b.due("d", 10, 10, &[]).unwrap();
    assert_eq!(on_b.len(), 1);
    assert_eq!(on_b[0].message_id, "m0");
    assert_eq!(b.take_over(10).unwrap().len(), 1);
    // a's late records change nothing: m0 stays b's, so m1 (its key's
    // next) is not due while b's attempt of m0 may still be under way,
    // and x gets no deliveries from a.
    a.delivered(on_a[0].id, 20).wait().unwrap();
    a.attempt_failed(on_a[0].id, "late", None).wait().unwrap();
    a.record(test_outcome("x")).wait().unwrap();
    assert!(b.due("d", 10, 10, &[on_b[0].id]).unwrap().is_empty());
    let mut admin = postgres::Client::connect(&url, NoTls).unwrap();
    let count = |admin: &mut postgres::Client, sql: &str| -> i64 {
        admin.query_one(sql, &[]).unwrap().get(0)
    };
    let sql = "SELECT COUNT(*) FROM deliveries WHERE message_id = 'x'";
    assert_eq!(count(&mut admin, sql), 0);
    // b's records stand.
    b.record(test_outcome("x")).wait().unwrap();
    assert_eq!(count(&mut admin, sql), 1);
    b.delivered(on_b[0].id, 30).wait().unwrap();
    let next = b.due("d", 40, 10, &[]).unwrap();
    let ids: Vec<&str> = next.iter().map(|d| d.message_id.as_str()).collect();
    assert_eq!(ids, ["m1", "x"]);
    let attempts = "SELECT attempts FROM deliveries WHERE message_id = 'm0'";
    assert_eq!(admin.query_one(attempts, &[]).unwrap().get::<_, i32>(0), 1);
}

#[test]
fn a_newer_schema_is_refused_and_the_password_is_never_shown() {
    let url = cluster().database().unwrap();
    drop(open_on(&url, "edge-a"));
    let mut admin = postgres::Client::connect(&url, NoTls).unwrap();
    admin
        .execute(
            "UPDATE weft_meta SET value = '99' WHERE key = 'schema_version'",
            &[],
        )
        .unwrap();
    let with_password = url.replacen("weft@", "weft:s3cret@", 1);
    let err = PgJournal::open(&with_password, "edge-a", "test", DEFAULT_LEASE)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("schema version 99 is newer"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
    let unreachable = "postgres://weft:s3cret@127.0.0.1:1/x";
    let err = PgJournal::open(unreachable, "edge-a", "test", DEFAULT_LEASE)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
}

#[test]
fn a_server_restart_fails_the_writes_in_between_and_not_the_ones_after() {
    let mut own = weft_test_postgres::Cluster::start(false).unwrap();
    let url = own.database().unwrap();
    let j = open_on(&url, "edge-a");
    j.append(msg("before")).wait().unwrap();
    own.stop();
    assert!(matches!(
        j.append(msg("during")).wait(),
        Err(JournalError::Write(_))
    ));
    assert!(j.due("d", 10, 10, &[]).is_err());
    own.start_again().unwrap();
    j.append(msg("after")).wait().unwrap();
    let ids: Vec<String> = j
        .unfinished()
        .unwrap()
        .into_iter()
        .map(|u| u.message.id)
        .collect();
    assert_eq!(ids, ["before", "after"]);
}

#[test]
fn audit_entries_cannot_be_updated_and_a_deleted_one_is_found() {
    let url = cluster().database().unwrap();
    let j = open_on(&url, "edge-a");
    for i in 0..4 {
        j.audit_append(&record("message.body", &format!("m{i}")))
            .unwrap();
    }
    let mut admin = postgres::Client::connect(&url, NoTls).unwrap();
    let err = admin
        .execute("UPDATE audit SET who = 'x' WHERE seq = 2", &[])
        .unwrap_err();
    assert!(conn::describe(&err).contains("append-only"), "{err}");
    admin
        .execute("DELETE FROM audit WHERE seq = 2", &[])
        .unwrap();
    match j.audit_verify().unwrap() {
        Verdict::Broken { seq: 3, reason } => assert!(reason.contains("missing"), "{reason}"),
        v => panic!("{v:?}"),
    }
}

#[test]
fn two_nodes_append_to_one_chain() {
    let url = cluster().database().unwrap();
    let (a, b) = (open_on(&url, "edge-a"), open_on(&url, "edge-b"));
    for i in 0..10 {
        let node = if i % 2 == 0 { &a } else { &b };
        node.audit_append(&record("reload", "")).unwrap();
    }
    assert!(matches!(
        b.audit_verify().unwrap(),
        Verdict::Intact { entries: 10, .. }
    ));
}

#[test]
fn a_command_attached_beside_the_nodes_sees_and_acts_and_a_read_only_one_cannot_write() {
    let url = cluster().database().unwrap();
    let node = open_on(&url, "edge-a");
    node.append(msg("m")).wait().unwrap();
    node.record(test_outcome("m")).wait().unwrap();
    let command = PgJournal::attach(&url, false).unwrap();
    assert_eq!(command.show("m").unwrap().unwrap().summary.pending, 1);
    command
        .audit_append(&record("messages.resend", "m"))
        .unwrap();
    assert_eq!(command.resend(&["m".to_string()]).unwrap().queued, 1);
    // A command is no node: it holds no claims and is not listed.
    let mut admin = postgres::Client::connect(&url, NoTls).unwrap();
    let nodes: i64 = admin
        .query_one("SELECT count(*) FROM nodes", &[])
        .unwrap()
        .get(0);
    assert_eq!(nodes, 1);
    let reader = PgJournal::attach(&url, true).unwrap();
    assert_eq!(reader.recorded("m").unwrap().unwrap().outputs.len(), 1);
    assert!(matches!(
        reader.append(msg("n")).wait(),
        Err(JournalError::Write(_))
    ));
    // The server refuses its writes too, whatever path they take.
    let err = reader.resend(&["m".to_string()]).unwrap_err().to_string();
    assert!(err.contains("read-only"), "{err}");
    assert!(reader.audit_append(&record("reload", "")).is_err());
}

#[test]
fn nodes_are_listed_with_their_plugins_claims_and_state() {
    let url = cluster().database().unwrap();
    let (a, b) = (open_on(&url, "edge-a"), open_on(&url, "edge-b"));
    let plugin = |sha: &str| {
        vec![NodePlugin {
            name: "map".into(),
            sha256: sha.into(),
        }]
    };
    a.set_plugins(&plugin("aa")).unwrap();
    b.set_plugins(&plugin("aa")).unwrap();
    a.append(msg("held-by-a")).wait().unwrap();
    let nodes = a.nodes().unwrap().unwrap();
    let seen: Vec<(&str, NodeState, u64)> = nodes
        .iter()
        .map(|n| (n.name.as_str(), n.state, n.claimed_messages))
        .collect();
    assert_eq!(
        seen,
        [
            ("edge-a", NodeState::Running, 1),
            ("edge-b", NodeState::Running, 0)
        ]
    );
    assert_eq!(nodes[0].plugins, plugin("aa"));
    assert!(crate::journal::nodes::differing(&nodes).is_empty());
    // A newer build of the plugin on one node: shown.
    b.set_plugins(&plugin("bb")).unwrap();
    let nodes = a.nodes().unwrap().unwrap();
    assert_eq!(
        crate::journal::nodes::differing(&nodes)
            .into_iter()
            .collect::<Vec<_>>(),
        ["map"]
    );
    // A restarted node: its latest run only, once the old one stopped.
    b.close();
    let b2 = open_on(&url, "edge-b");
    let nodes = a.nodes().unwrap().unwrap();
    let names: Vec<(&str, NodeState)> = nodes.iter().map(|n| (n.name.as_str(), n.state)).collect();
    assert_eq!(
        names,
        [
            ("edge-a", NodeState::Running),
            ("edge-b", NodeState::Running)
        ]
    );
    drop(b2);
    let nodes = a.nodes().unwrap().unwrap();
    assert_eq!(nodes[1].state, NodeState::Stopped);
    // A command's journal lists them too.
    let reader = PgJournal::attach(&url, true).unwrap();
    assert_eq!(reader.nodes().unwrap().unwrap().len(), 2);
}

#[test]
fn stopped_runs_are_forgotten_after_a_week_and_listing_is_capped() {
    let url = cluster().database().unwrap();
    drop(open_on(&url, "edge-a")); // makes the schema
    let mut admin = postgres::Client::connect(&url, NoTls).unwrap();
    let week = nodes::KEEP_STOPPED_MS;
    // edge-old stopped twice, long ago: its older run goes, its latest
    // stays; edge-recent's run stopped an hour ago stays.
    admin
        .execute(
            &format!(
                "INSERT INTO nodes (run, name, started_at, heartbeat_at, lease_until, version, stopped_at)
                 VALUES ('old-1', 'edge-old', 0, 0, 0, 'v', {SERVER_NOW} - $1 - 2000),
                        ('old-2', 'edge-old', 1, 1, 1, 'v', {SERVER_NOW} - $1 - 1000),
                        ('recent', 'edge-recent', 0, 0, 0, 'v', {SERVER_NOW} - 3600000)"
            ),
            &[&week],
        )
        .unwrap();
    let b = open_on(&url, "edge-b"); // a node's start forgets
    let runs: Vec<String> = admin
        .query(
            "SELECT run FROM nodes WHERE name <> 'edge-a' AND name <> 'edge-b' ORDER BY run",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(runs, ["old-2", "recent"]);
    // More running runs than a listing shows: it stops at its cap.
    admin
        .execute(
            &format!(
                "INSERT INTO nodes (run, name, started_at, heartbeat_at, lease_until, version)
                 SELECT 'many-' || i, 'many-' || i, 0, 0, {SERVER_NOW} + 60000, 'v'
                 FROM generate_series(1, 1100) AS i"
            ),
            &[],
        )
        .unwrap();
    let listed = b.nodes().unwrap().unwrap().len();
    assert_eq!(i64::try_from(listed).unwrap(), nodes::MAX_LISTED);
}

#[test]
fn an_intake_left_in_doubt_is_released_for_another_node_to_run() {
    let url = cluster().database().unwrap();
    let (a, b) = (open_on(&url, "edge-a"), open_on(&url, "edge-b"));
    // Committed, though a's writer saw the connection break (its sender
    // was answered AE): claimed by a, which is not running it.
    a.append(msg("in-doubt")).wait().unwrap();
    // A settled one and one b holds are not a's to release.
    a.append(msg("settled")).wait().unwrap();
    a.record(test_outcome("settled")).wait().unwrap();
    b.append(msg("b-holds")).wait().unwrap();
    assert!(b.take_over(10).unwrap().is_empty(), "a's claim holds");
    let mut c = postgres::Client::connect(&url, NoTls).unwrap();
    let ids: Vec<String> = ["in-doubt", "settled", "b-holds", "never-landed"]
        .map(String::from)
        .to_vec();
    assert_eq!(writer::release(&mut c, &ids, a.run_id()).unwrap(), 1);
    let taken = b.take_over(10).unwrap();
    let taken: Vec<&str> = taken.iter().map(|u| u.message.id.as_str()).collect();
    assert_eq!(taken, ["in-doubt"]);
}

/// Whether `needle` is stored in the clear in a sealed column's live rows
/// of the database at `url`.
fn in_clear(url: &str, needle: &str) -> bool {
    let mut c = postgres::Client::connect(url, NoTls).unwrap();
    let n: i64 = c
        .query_one(
            "SELECT (SELECT count(*) FROM messages
                      WHERE position($1::BYTEA IN body) > 0 OR position($2 IN coalesce(error, '')) > 0)
                  + (SELECT count(*) FROM deliveries
                      WHERE position($1::BYTEA IN body) > 0
                         OR position($2 IN coalesce(last_error, '') || coalesce(ordering_key, '')) > 0)
                  + (SELECT count(*) FROM outcomes WHERE position($2 IN coalesce(error, '')) > 0)
                  + (SELECT count(*) FROM patient_ids WHERE position($2 IN id) > 0)
                  + (SELECT count(*) FROM order_holds WHERE position($2 IN ordering_key) > 0)",
            &[&needle.as_bytes(), &needle],
        )
        .unwrap()
        .get(0);
    n > 0
}

#[test]
fn a_plain_journal_gets_sealed_and_rotated_and_no_key_changes_beside_another_node() {
    use crate::journal::sealed::{self, tests as s};
    use crate::journal::{Journal, Use};
    let url = cluster().database().unwrap();
    let open_as =
        |node: &str, given: s::Given| sealed::wrap(Arc::new(open_on(&url, node)), given, Use::Run);
    s::rotation_scenario(&|given| open_as("edge-a", given).unwrap(), &|needle| {
        in_clear(&url, needle)
    });

    // Another node serving the journal: no rotation, at a start or while
    // serving, since it would go on sealing with the old key.
    let b = open_on(&url, "edge-b");
    let Err(e) = open_as("edge-a", Some((s::key(3), vec![s::key(2)]))) else {
        panic!("a rotation at start beside another node");
    };
    assert!(e.to_string().contains("edge-b"), "{e}");
    let a = open_as("edge-a", Some((s::key(2), vec![]))).unwrap();
    let e = a.rotate_key(s::key(3)).unwrap_err().to_string();
    assert!(e.contains("other nodes") && e.contains("edge-b"), "{e}");
    // Alone, it rotates while serving, and the pass finishes.
    b.close();
    assert_eq!(a.rotate_key(s::key(3)).unwrap(), s::key(3).id());
    a.append(s::patient_message("m3")).wait().unwrap();
    s::wait_sealed_all(&a, &s::key(3).id());
    a.close();
    let a = open_as("edge-a", Some((s::key(3), vec![]))).unwrap();
    for id in ["m1", "m2", "m3"] {
        let r = a.recorded(id).unwrap().unwrap();
        assert!(String::from_utf8_lossy(&r.body).contains("Zyxwvut"), "{id}");
    }
    assert!(!in_clear(&url, "Zyxwvut"));
}

#[test]
fn schema_4_numbers_the_rows_a_rotation_walks_in_a_journal_of_schema_3() {
    let url = cluster().database().unwrap();
    let mut admin = postgres::Client::connect(&url, NoTls).unwrap();
    admin
        .batch_execute(&format!(
            "CREATE TABLE weft_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             {}{}
             INSERT INTO weft_meta VALUES ('schema_version', '3');
             INSERT INTO patient_ids VALUES ('m1', 'a'), ('m2', 'b');
             INSERT INTO order_holds VALUES ('m1', 1, 'd', 'k'), ('m2', 2, 'd', 'k');
             INSERT INTO outcomes VALUES ('m1', 1, 'failed', 'x', NULL, 5);",
            schema::V1,
            schema::V2
        ))
        .unwrap();
    let j = open_on(&url, "edge-a");
    let mut rids = |table: &str| -> Vec<i64> {
        admin
            .query(&format!("SELECT rid FROM {table} ORDER BY rid"), &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    assert_eq!(rids("patient_ids"), [1, 2]);
    assert_eq!(rids("order_holds"), [1, 2]);
    assert_eq!(rids("outcomes"), [1]);
    // New rows are numbered after them.
    let mut m = msg("m3");
    m.patient_ids = vec!["c".into()];
    j.append(m).wait().unwrap();
    assert_eq!(rids("patient_ids"), [1, 2, 3]);
    let v: String = admin
        .query_one(
            "SELECT value FROM weft_meta WHERE key = 'schema_version'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(v, SCHEMA_VERSION.to_string());
}
