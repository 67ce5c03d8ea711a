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

/// A node's configuration with these `[journal]` lines.
fn with_journal(dir: &std::path::Path, journal: &str) -> String {
    format!(
        "[runtime]\nshutdown_grace_s = 1\n\
         [journal]\nengine = \"postgres\"\nnode = \"edge-a\"\n{journal}\n\
         [sources.in]\nkind = \"mllp\"\nlisten = \"127.0.0.1:0\"\n\
         [destinations.files]\nkind = \"file\"\ndir = \"{out}\"\nfilename = \"{{control_id}}.{{ext}}\"\n\
         [routes.adt]\nmatch = [\"ADT^*\"]\ndestinations = [\"files\"]\n",
        out = dir.join("out").display(),
    )
}

/// `weft check` on a configuration with these `[journal]` lines.
fn check(dir: &std::path::Path, name: &str, journal: &str) -> (i32, String) {
    let path = dir.join(name);
    std::fs::write(&path, with_journal(dir, journal)).unwrap();
    weft_cli(&["check", "--config", &path.display().to_string()])
}

#[test]
fn weft_check_and_run_reach_postgres_over_tls_and_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let pki = crate::common::pki::Pki::new(&dir.path().join("pki"));
    let cluster = weft_test_postgres::Cluster::start(false).unwrap();
    let url = cluster.database().unwrap();
    let port = cluster.port();
    let db = url.rsplit('/').next().unwrap().to_string();
    cluster
        .execute("CREATE ROLE clerk LOGIN PASSWORD 'right-pw'")
        .unwrap();
    // The superuser's own session, over the Unix socket (TCP will want TLS).
    let mut admin = postgres::Config::new()
        .host_path(cluster.data_dir().parent().unwrap())
        .port(port)
        .user("weft")
        .dbname(&db)
        .connect(postgres::NoTls)
        .unwrap();
    // As PostgreSQL 15 on has it by default, whatever this server's version:
    // only the owner creates in public.
    admin
        .batch_execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        .unwrap();
    // TLS only over TCP; the clerk logs in with a password.
    cluster
        .enable_tls(
            &dir.path().join("pki/server.pem"),
            &dir.path().join("pki/server.key"),
        )
        .unwrap();
    cluster
        .set_hba(
            "hostssl all clerk 127.0.0.1/32 scram-sha-256\n\
             hostssl all all 127.0.0.1/32 trust",
        )
        .unwrap();
    let tls = format!("tls = {{ ca = \"{}\" }}", pki.path("server-ca.pem"));
    let ok = format!("url = \"{url}\"\n{tls}");

    // Reached over TLS, the CA checked: an empty database, ready.
    let (code, out) = check(dir.path(), "ok.toml", &ok);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("over TLS"), "{out}");
    assert!(
        out.contains("empty: the first `weft run` creates the schema"),
        "{out}"
    );

    // Each way of being wrong is said, naming the key; no password shown.
    let rogue = format!(
        "url = \"{url}\"\ntls = {{ ca = \"{}\" }}",
        pki.path("rogue-ca.pem")
    );
    let other_name = format!(
        "url = \"{url}\"\ntls = {{ ca = \"{}\", server_name = \"db.example\" }}",
        pki.path("server-ca.pem")
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let wrong = [
        ("plain", format!("url = \"{url}\""), "no encryption"),
        ("rogue", rogue, "certificate"),
        ("name", other_name, "certificate"),
        (
            "password",
            format!("url = \"postgres://clerk:wrong-pw@127.0.0.1:{port}/{db}\"\n{tls}"),
            "password authentication failed for user \"clerk\"",
        ),
        (
            "unreachable",
            format!("url = \"postgres://weft@127.0.0.1:{closed_port}/{db}\"\n{tls}"),
            "connect",
        ),
    ];
    for (name, journal, says) in wrong {
        let (code, out) = check(dir.path(), &format!("{name}.toml"), &journal);
        assert_ne!(code, 0, "{name}: {out}");
        assert!(
            out.contains("journal.url: journal postgres://"),
            "{name}: {out}"
        );
        assert!(out.contains(says), "{name}: {out}");
        assert!(!out.contains("wrong-pw"), "{name}: {out}");
    }
    let right = format!("url = \"postgres://clerk:right-pw@127.0.0.1:{port}/{db}\"\n{tls}");
    let (code, out) = check(dir.path(), "clerk.toml", &right);
    // The clerk reaches it, and may not create the tables.
    assert!(out.contains("over TLS"), "{out}");
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("journal.url: the database is empty and this user may not create tables"),
        "{out}"
    );
    assert!(!out.contains("right-pw"), "{out}");

    // A node runs over TLS: acknowledged after the commit, delivered.
    let mut weft = Weft::start(|d| with_journal(d, &ok));
    let ack = weft.client().exchange(&a01("TLS-1", "1"));
    assert_eq!(ack.code, "AA");
    let deadline = Instant::now() + Duration::from_secs(20);
    while weft.out_files().is_empty() {
        assert!(Instant::now() < deadline, "not delivered");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Now the schema is there, and a second node named edge-a is warned of.
    let (code, out) = check(dir.path(), "ok.toml", &ok);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!(
            "schema version {}",
            weft::journal::postgres::SCHEMA_VERSION
        )),
        "{out}"
    );
    assert!(out.contains("a node named edge-a is running"), "{out}");
    assert_eq!(weft.stop(), 0, "{}", weft.log_text());

    // A database a newer weft has migrated is refused by name.
    admin
        .execute(
            "UPDATE weft_meta SET value = '99' WHERE key = 'schema_version'",
            &[],
        )
        .unwrap();
    let (code, out) = check(dir.path(), "ok.toml", &ok);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("schema version 99 is newer than this runtime's"),
        "{out}"
    );
}
