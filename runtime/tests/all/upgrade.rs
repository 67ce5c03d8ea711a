//! Upgrades across binaries: each journal under `tests/upgrade/` was
//! written by the weft of an older commit (`tests/upgrade/make-fixture.sh`,
//! the commits in `tests/upgrade/README.md`): six messages, each with a
//! delivery pending (its LIS was down) and a dead one (its FHIR server
//! answered 400), and an audit entry where that schema had a trail. The
//! current weft opens and migrates it, delivers every pending delivery,
//! lists the dead ones and resends them, and the audit trail verifies. A
//! journal of a newer schema than this weft's is refused, naming both.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::fhir_server::FhirServer;
use crate::common::printed;
use crate::common::run::{Weft, run_refused};

fn fixtures() -> Vec<PathBuf> {
    let dir = crate::common::repo().join("tests/upgrade");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "db"))
        .collect();
    found.sort();
    found
}

fn config(data: &Path, lis: std::net::SocketAddr, fhir: std::net::SocketAddr) -> String {
    format!(
        r#"[runtime]
data_dir = "{data}"
[sources.in]
kind = "mllp"
listen = "127.0.0.1:0"
ack = "after-commit"
[destinations.lis]
kind = "mllp"
address = "{lis}"
[destinations.fhir]
kind = "http"
url = "http://{fhir}/fhir"
[routes.all]
match = ["ADT^*"]
destinations = ["lis", "fhir"]
"#,
        data = data.display()
    )
}

fn cli(config: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), printed(&out))
}

#[test]
fn journals_written_by_older_binaries_are_migrated_and_nothing_is_lost() {
    let fixtures = fixtures();
    assert!(!fixtures.is_empty(), "no fixture under tests/upgrade");
    for fixture in fixtures {
        let name = fixture.file_name().unwrap().to_string_lossy().into_owned();
        let work = tempfile::tempdir().unwrap();
        let data = work.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::copy(&fixture, data.join("journal.db")).unwrap();

        // The LIS is up now, and the FHIR server takes everything.
        let receiver = Weft::receiver();
        let fhir = FhirServer::start(&[]);
        let mut weft = Weft::start(|_| config(&data, receiver.addr, fhir.addr));
        let ids: Vec<String> = (1..=6).map(|i| format!("UPG-{i}")).collect();
        let missing = receiver.missing(&ids, Duration::from_secs(60));
        assert!(
            missing.is_empty(),
            "{name}: pending deliveries not made: {missing:?}\n{}",
            weft.log_text()
        );
        let cfg = weft.config_path().to_path_buf();
        let (code, list) = cli(&cfg, &["messages", "list"]);
        assert_eq!(code, 0, "{name}: {list}");
        for id in &ids {
            assert!(
                list.contains(id.as_str()),
                "{name}: {id} not listed: {list}"
            );
        }
        let (_, dead) = cli(&cfg, &["messages", "list", "--status", "dead"]);
        assert_eq!(
            dead.lines().count(),
            7,
            "{name}: six dead, one header: {dead}"
        );
        let (code, out) = cli(&cfg, &["messages", "resend", "--dead"]);
        assert_eq!(code, 0, "{name}: {out}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while fhir.accepted().len() < 6 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(fhir.accepted().len(), 6, "{name}: the dead ones resent");
        let (code, out) = cli(&cfg, &["audit", "verify"]);
        assert_eq!(code, 0, "{name}: {out}");
        assert_eq!(weft.stop(), 0);

        // A downgrade: a journal of a newer schema is refused, both named.
        let conn = rusqlite::Connection::open(data.join("journal.db")).unwrap();
        conn.execute(
            "UPDATE meta SET value = '99' WHERE key = 'schema_version'",
            [],
        )
        .unwrap();
        drop(conn);
        let (code, out) = run_refused(&cfg);
        assert_ne!(code, 0);
        assert!(
            out.contains("schema version 99 is newer than this runtime's (")
                && out.contains("upgrade weft"),
            "{name}: {out}"
        );
    }
}
