//! `weft doctor` against a real `weft run`: healthy first, then each fault
//! made for real (a sender's clock ahead, a token file others can read, a
//! dead letter, a destination that is down, a certificate near its end made
//! by openssl, the runtime stopped, the journal damaged), each named with
//! its verdict, and the exit code 0 / 1 / 2.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::fhir_server::{FhirServer, free_addr};
use crate::common::printed;
use crate::common::run::{Weft, a01, adt_config};

/// `weft doctor --json`: its exit code and its report.
fn doctor(config: &Path) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["doctor", "--json", "--config"])
        .arg(config)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", printed(&out)));
    (out.status.code().unwrap_or(-1), report)
}

/// The checks whose name starts with `name`: (verdict, detail) each.
fn checks(report: &Value, name: &str) -> Vec<(String, String)> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["check"].as_str().unwrap().starts_with(name))
        .map(|c| {
            (
                c["verdict"].as_str().unwrap().to_string(),
                c["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The one check named `name` has this verdict; its detail.
fn verdict(report: &Value, name: &str, expected: &str) -> String {
    let found = checks(report, name);
    assert!(
        !found.is_empty() && found.iter().all(|(v, _)| v == expected),
        "{name}: expected {expected}, got {found:?}\n{report:#}"
    );
    found[0].1.clone()
}

/// The adt route on fixed ports (the doctor connects to them), with an
/// admin API and a retention setting, and `extra` sections.
fn config(
    dir: &Path,
    mllp: std::net::SocketAddr,
    admin: std::net::SocketAddr,
    extra: &str,
) -> String {
    adt_config(
        dir,
        "after-commit",
        &format!("[runtime]\nretain_days = 30\n[admin]\nlisten = \"{admin}\"\n{extra}"),
    )
    .replace("listen = \"127.0.0.1:0\"", &format!("listen = \"{mllp}\""))
}

#[test]
fn a_healthy_runtime_passes_and_each_fault_is_named_with_its_verdict() {
    let (mllp, admin) = (free_addr(), free_addr());
    let mut weft = Weft::start(|d| config(d, mllp, admin, ""));
    let mut c = weft.client();
    assert_eq!(c.exchange(&a01("DOC-1", "1")).code, "AA");

    let (code, report) = doctor(weft.config_path());
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["verdict"], "healthy");
    verdict(&report, "config", "ok");
    verdict(&report, "plugin site-normalize", "ok");
    verdict(&report, "plugin adt-to-fhir", "ok");
    assert!(verdict(&report, "journal integrity", "ok").contains("quick_check"));
    verdict(&report, "dead letters", "ok");
    verdict(&report, "disk", "ok");
    verdict(&report, "permissions", "ok");
    verdict(&report, &format!("port {mllp}"), "ok");
    verdict(&report, &format!("port {admin}"), "ok");
    verdict(&report, "last reload", "ok");
    // a01's MSH-7 has no UTC offset: not an instant, not compared.
    assert!(verdict(&report, "clock", "skip").contains("without a UTC offset"));

    // A sender whose clock runs two hours ahead of this machine's.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let ahead = weft_hl7::datetime::format_unix(now + 7200);
    let msg = String::from_utf8(a01("DOC-2", "2"))
        .unwrap()
        .replace("20240102030405", &ahead);
    assert_eq!(c.exchange(msg.as_bytes()).code, "AA");
    drop(c);
    // The admin token readable by everyone.
    let token = weft.dir().join("data/admin.token");
    set_mode(&token, 0o644);
    let (code, report) = doctor(weft.config_path());
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["verdict"], "warnings");
    assert!(
        verdict(&report, "clock", "warn")
            .contains("1 of 1 recent messages were sent (MSH-7) more than 5 min after"),
        "{report:#}"
    );
    let perms = verdict(&report, "permissions", "warn");
    assert!(perms.contains("admin.token is 644"), "{perms}");
    let audit = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["audit", "list", "--config"])
        .arg(weft.config_path())
        .output()
        .unwrap();
    assert!(
        printed(&audit).contains("doctor.clock"),
        "reading MSH-7 is on the record: {}",
        printed(&audit)
    );
    set_mode(&token, 0o600);

    // Stopped: nothing listens, nothing to ask.
    assert_eq!(weft.stop(), 0);
    let (code, report) = doctor(weft.config_path());
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(report["verdict"], "broken");
    assert!(verdict(&report, &format!("port {mllp}"), "fail").contains("is `weft run` running?"));
    verdict(&report, "last reload", "skip");

    // A damaged journal: pages overwritten behind SQLite's back.
    let db = weft.dir().join("data/journal.db");
    let mut bytes = std::fs::read(&db).unwrap();
    assert!(bytes.len() > 3 * 4096, "{} bytes", bytes.len());
    for b in &mut bytes[2 * 4096..3 * 4096] {
        *b = 0xA5;
    }
    std::fs::write(&db, bytes).unwrap();
    let (code, report) = doctor(weft.config_path());
    assert_eq!(code, 2, "{report:#}");
    let journal = checks(&report, "journal");
    assert!(
        journal.iter().any(|(v, _)| v == "fail"),
        "the damage is found: {report:#}"
    );
}

#[test]
fn dead_letters_a_destination_down_and_a_certificate_near_its_end_are_warnings() {
    let dir = tempfile::tempdir().unwrap();
    // A certificate that ends in ten days, made by openssl.
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "10",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", printed(&out));
    // The FHIR server refuses everything (a dead letter); nothing listens
    // where the second FHIR server should be (pending, retried).
    let fhir = FhirServer::start(&[400; 4]);
    let (mllp, admin, web, lis) = (free_addr(), free_addr(), free_addr(), free_addr());
    let extra = format!(
        r#"
[sources.web]
kind = "http"
listen = "{web}"
tls = {{ cert = "{cert}", key = "{key}" }}

[destinations.fhir]
kind = "http"
url = "http://{fhir_addr}/fhir"

[destinations.lis]
kind = "http"
url = "http://{lis}/fhir"
"#,
        cert = cert.display(),
        key = key.display(),
        fhir_addr = fhir.addr,
    );
    let weft = Weft::start(|d| {
        config(d, mllp, admin, &extra).replace(
            "destinations = [\"files\"]",
            "destinations = [\"files\", \"fhir\", \"lis\"]",
        )
    });
    let mut c = weft.client();
    assert_eq!(c.exchange(&a01("DOC-3", "3")).code, "AA");
    drop(c);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let report = loop {
        let (code, report) = doctor(weft.config_path());
        if !checks(&report, "dead letters")
            .iter()
            .any(|(v, _)| v == "warn")
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(200));
            continue;
        }
        assert_eq!(code, 1, "warnings, nothing broken: {report:#}");
        break report;
    };
    let dead = verdict(&report, "dead letters", "warn");
    assert!(dead.starts_with("1 deliveries given up on"), "{dead}");
    assert!(verdict(&report, "backlog", "ok").starts_with("1 deliveries pending"));
    let cert_check = verdict(&report, "certificate sources.web.tls.cert", "warn");
    assert!(cert_check.contains("in 9 days"), "{cert_check}");
    assert!(verdict(&report, "destination lis", "warn").contains("nothing accepts a connection"));
    verdict(&report, "destination fhir", "ok");
    verdict(&report, &format!("port {web}"), "ok");
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}
