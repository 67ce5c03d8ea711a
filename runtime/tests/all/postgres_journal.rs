//! `weft run` on a PostgreSQL journal (`[journal] engine = "postgres"`),
//! against a real server the test starts: a message is acknowledged after
//! its commit there, delivered, listed by `weft messages`, and its audit
//! trail verified by `weft audit`; the node is in the database's `nodes`
//! while it runs, stopped once it stops, and a delivery it could not make
//! stays pending there.

use std::time::{Duration, Instant};

use crate::common::run::{Weft, a01};
use crate::common::weft_cli;

fn config(dir: &std::path::Path, url: &str, dest_port: u16) -> String {
    format!(
        "[runtime]\nshutdown_grace_s = 1\n\
         [journal]\nengine = \"postgres\"\nurl = \"{url}\"\nnode = \"edge-a\"\n\
         [sources.in]\nkind = \"mllp\"\nlisten = \"127.0.0.1:0\"\n\
         [destinations.files]\nkind = \"file\"\ndir = \"{out}\"\nfilename = \"{{control_id}}.{{ext}}\"\n\
         [destinations.down]\nkind = \"mllp\"\naddress = \"127.0.0.1:{dest_port}\"\n\
         [routes.adt]\nmatch = [\"ADT^*\"]\ndestinations = [\"files\", \"down\"]\n",
        out = dir.join("out").display(),
    )
}

#[test]
fn weft_run_keeps_its_journal_in_postgres() {
    let cluster = weft_test_postgres::Cluster::start(false).unwrap();
    let url = cluster.database().unwrap();
    // A downstream that is not there yet: its deliveries stay pending.
    let down = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = down.local_addr().unwrap().port();
    drop(down);
    let mut weft = Weft::start(|d| config(d, &url, port));
    let mut c = weft.client();
    for i in 0..3 {
        let ack = c.exchange(&a01(&format!("PG-{i}"), &format!("{i}")));
        assert_eq!(ack.code, "AA");
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while weft.out_files().len() < 3 {
        assert!(Instant::now() < deadline, "not delivered to files");
        std::thread::sleep(Duration::from_millis(50));
    }
    let config_path = weft.config_path().display().to_string();
    let (code, out) = weft_cli(&["messages", "-c", &config_path, "list"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.matches("ADT^A01").count(), 3, "{out}");
    let (code, out) = weft_cli(&["audit", "-c", &config_path, "verify"]);
    assert_eq!(code, 0, "{out}");
    // The node is registered while it runs, and stopped after.
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let running: i64 = admin
        .query_one(
            "SELECT count(*) FROM nodes WHERE name = 'edge-a' AND stopped_at IS NULL",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(running, 1);
    let code = weft.stop();
    assert_eq!(code, 0, "{}", weft.log_text());
    let running: i64 = admin
        .query_one("SELECT count(*) FROM nodes WHERE stopped_at IS NULL", &[])
        .unwrap()
        .get(0);
    assert_eq!(running, 0);
    let pending: i64 = admin
        .query_one(
            "SELECT count(*) FROM deliveries WHERE destination = 'down' AND state = 'pending'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(pending, 3, "the downstream was never there");
}
