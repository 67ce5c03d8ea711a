//! Several `weft run` nodes sharing one PostgreSQL journal (a real server
//! the test starts), each with its own listeners and data directory, under
//! MLLP load spread across them: a node killed with SIGKILL mid-load, the
//! database stopped mid-load, a node running a newer plugin build. The
//! stand-in FHIR server checks that every acknowledged message arrives and
//! that each patient's messages arrive in the order they were sent.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::fhir_server::{FhirServer, free_addr};
use crate::common::run::{Weft, a01, adt_config};
use crate::common::weft_cli;

/// A node's configuration: the default ADT route delivering to the FHIR
/// server at `fhir` (per-patient order), duplicates dropped for an hour,
/// the shared journal at `url` as node `name`, `site_normalize` as its
/// first plugin's build.
fn node_config(
    dir: &std::path::Path,
    url: &str,
    name: &str,
    lease_s: u64,
    fhir: SocketAddr,
    admin: SocketAddr,
) -> String {
    adt_config(
        dir,
        "after-commit",
        &format!(
            "[destinations.fhir-server]\nkind = \"http\"\nurl = \"http://{fhir}/fhir\"\ntimeout_s = 5\n\
             [journal]\nengine = \"postgres\"\nurl = \"{url}\"\nnode = \"{name}\"\nlease_s = {lease_s}\n\
             [runtime]\nshutdown_grace_s = 1\n\
             [admin]\nlisten = \"{admin}\"\n"
        ),
    )
    .replace(
        r#"destinations = ["files"]"#,
        r#"destinations = ["fhir-server"]"#,
    )
    .replace("idle_timeout_s = 5", "idle_timeout_s = 5\ndedup_window_s = 3600")
}

/// One MLLP exchange that may fail, as against a node that is gone: the
/// ACK's MSA-1, or `None` (refused, reset, no answer in 10 s).
fn try_exchange(addr: SocketAddr, message: &[u8]) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut frame = vec![0x0b];
    frame.extend_from_slice(message);
    frame.extend_from_slice(&[0x1c, 0x0d]);
    s.write_all(&frame).ok()?;
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    while !got.windows(2).any(|w| w == [0x1c, 0x0d]) {
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        got.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    let msa = text.split('\r').find(|seg| seg.contains("MSA|"))?;
    msa.split('|').nth(1).map(str::to_string)
}

/// What the senders did: each message's control id with its patient, in
/// the order each patient's were sent, and which node acknowledged it.
#[derive(Default)]
struct Sent {
    by_patient: BTreeMap<String, Vec<String>>,
    acked_by: BTreeMap<String, usize>,
    /// Answers other than AA (AE, AR) and sends that got no answer.
    refused: usize,
}

/// `senders` threads, each sending `per_sender` A01s for its own three
/// patients one after another, each message to the next node in turn
/// (`nodes`), until a node acknowledges it with AA: a patient's next
/// message leaves only once the last one is acknowledged, so the intake
/// order of each patient is the order sent. `acked` counts the AAs.
fn send_load(
    nodes: Vec<SocketAddr>,
    senders: usize,
    per_sender: usize,
    acked: Arc<AtomicUsize>,
    sent: Arc<Mutex<Sent>>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..senders)
        .map(|s| {
            let (nodes, acked, sent) = (nodes.clone(), acked.clone(), sent.clone());
            std::thread::spawn(move || {
                for i in 0..per_sender {
                    let (ctrl, mrn) = (format!("S{s}-{i:04}"), format!("P{s}{}", i % 3));
                    let message = String::from_utf8(a01(&ctrl, &mrn))
                        .unwrap()
                        .replace("Test^Pat", &format!("Test^{ctrl}"));
                    let deadline = Instant::now() + Duration::from_secs(120);
                    let mut turn = i + s;
                    let node = loop {
                        let node = turn % nodes.len();
                        turn += 1;
                        match try_exchange(nodes[node], message.as_bytes()) {
                            Some(code) if code == "AA" => break node,
                            _ => {
                                sent.lock().unwrap().refused += 1;
                                assert!(Instant::now() < deadline, "{ctrl} never acknowledged");
                                std::thread::sleep(Duration::from_millis(100));
                            }
                        }
                    };
                    acked.fetch_add(1, Ordering::SeqCst);
                    let mut sent = sent.lock().unwrap();
                    sent.by_patient.entry(mrn).or_default().push(ctrl.clone());
                    sent.acked_by.insert(ctrl, node);
                }
            })
        })
        .collect()
}

/// Waits until the server has accepted every message of `sent`, then
/// checks each patient's order: the messages in the order sent, a message
/// repeated only right after itself (a delivery a killed node made but
/// could not record, made again by the node that took it over).
fn assert_all_delivered_in_order(server: &FhirServer, sent: &Sent, within: Duration) {
    let total: usize = sent.by_patient.values().map(Vec::len).sum();
    let deadline = Instant::now() + within;
    loop {
        let got: std::collections::BTreeSet<String> = server
            .accepted()
            .iter()
            .map(|r| crate::common::fhir_server::control_id_and_mrn(&r.body).0)
            .collect();
        if got.len() >= total {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {total} acknowledged messages delivered",
            got.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in server.accepted() {
        let (ctrl, mrn) = crate::common::fhir_server::control_id_and_mrn(&r.body);
        let seq = got.entry(mrn).or_default();
        if seq.last() != Some(&ctrl) {
            seq.push(ctrl);
        }
    }
    assert_eq!(
        got, sent.by_patient,
        "each patient's messages arrive once each, in the order sent"
    );
}

fn start_node(
    url: &str,
    name: &str,
    lease_s: u64,
    fhir: SocketAddr,
    plugin: Option<&str>,
) -> (Weft, SocketAddr) {
    let admin = free_addr();
    let weft = Weft::start(|d| {
        let config = node_config(d, url, name, lease_s, fhir, admin);
        match plugin {
            Some(p) => {
                let shipped = crate::common::wasm("site-normalize").display().to_string();
                config.replace(&shipped, p)
            }
            None => config,
        }
    });
    (weft, admin)
}

#[test]
fn three_nodes_lose_nothing_and_keep_each_patients_order_when_one_is_killed() {
    let cluster = weft_test_postgres::Cluster::start(false).unwrap();
    let url = cluster.database().unwrap();
    let server = FhirServer::start(&[]);
    // edge-c runs a newer build of site-normalize than the other two.
    let variant = crate::common::site_normalize_variant()
        .display()
        .to_string();
    let mut nodes: Vec<(Weft, SocketAddr)> = vec![
        start_node(&url, "edge-a", 3, server.addr, None),
        start_node(&url, "edge-b", 3, server.addr, None),
        start_node(&url, "edge-c", 3, server.addr, Some(&variant)),
    ];
    let config_a = nodes[0].0.config_path().display().to_string();

    // The newer build is shown, by the CLI and by every node's API.
    let (code, out) = weft_cli(&["nodes", "-c", &config_a]);
    assert_eq!(code, 0, "{out}");
    for name in ["edge-a", "edge-b", "edge-c"] {
        assert!(out.contains(name), "{out}");
    }
    let running = out
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("running"))
        .count();
    assert_eq!(running, 3, "{out}");
    assert!(
        out.contains("plugin site-normalize differs between the running nodes"),
        "{out}"
    );
    // The same as JSON, in the API's shape.
    let (code, out) = weft_cli(&["nodes", "-c", &config_a, "--json"]);
    assert_eq!(code, 0, "{out}");
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed["shared"], true, "{listed}");
    assert_eq!(
        listed["differing_plugins"],
        serde_json::json!(["site-normalize"])
    );
    let api = nodes[1].0.api(nodes[1].1);
    let listed = crate::common::admin(&api, "GET", "/nodes");
    assert_eq!(listed["shared"], true, "{listed}");
    assert_eq!(
        listed["differing_plugins"],
        serde_json::json!(["site-normalize"])
    );
    assert_eq!(
        listed["nodes"].as_array().map_or(0, Vec::len),
        3,
        "{listed}"
    );

    // Load across the three; edge-b is killed a third of the way in.
    let addrs: Vec<SocketAddr> = nodes.iter().map(|(w, _)| w.addr).collect();
    let (acked, sent) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(Mutex::new(Sent::default())),
    );
    let senders = send_load(addrs, 6, 50, acked.clone(), sent.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.load(Ordering::SeqCst) < 100 {
        assert!(Instant::now() < deadline, "no load");
        std::thread::sleep(Duration::from_millis(10));
    }
    nodes[1].0.kill();
    let killed = Instant::now();
    let delivered_at_kill: std::collections::BTreeSet<String> = server
        .accepted()
        .iter()
        .map(|r| crate::common::fhir_server::control_id_and_mrn(&r.body).0)
        .collect();
    let b_unfinished: Vec<String> = sent
        .lock()
        .unwrap()
        .acked_by
        .iter()
        .filter(|(ctrl, node)| **node == 1 && !delivered_at_kill.contains(*ctrl))
        .map(|(ctrl, _)| ctrl.clone())
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    let sent = sent.lock().unwrap();
    assert_all_delivered_in_order(&server, &sent, Duration::from_secs(90));
    // How long the dead node's work waited: from the kill to its first
    // delivery by another node (the lease, then the next poll).
    let first = server
        .accepted()
        .iter()
        .filter(|r| {
            r.at > killed
                && b_unfinished.contains(&crate::common::fhir_server::control_id_and_mrn(&r.body).0)
        })
        .map(|r| r.at)
        .min();
    match first {
        Some(at) => println!(
            "failover: {} of edge-b's acknowledged messages were not delivered when it was killed; \
             the first was delivered by another node {:.2} s after the kill (lease_s = 3)",
            b_unfinished.len(),
            at.duration_since(killed).as_secs_f64()
        ),
        None => println!("failover: edge-b had delivered everything it acknowledged when killed"),
    }
    println!(
        "{} messages acknowledged, {} sends refused or unanswered along the way",
        sent.acked_by.len(),
        sent.refused
    );
    // The killed node is listed as lapsed once its lease (3 s after its
    // last heartbeat) runs out, and holds no claims.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (code, out) = weft_cli(&["nodes", "-c", &config_a]);
        assert_eq!(code, 0, "{out}");
        let b_line = out
            .lines()
            .find(|l| l.starts_with("edge-b"))
            .unwrap_or_default()
            .to_string();
        let fields: Vec<&str> = b_line.split_whitespace().collect();
        if fields.get(1) == Some(&"lapsed") {
            assert_eq!(fields.get(6..8), Some(&["0", "0"][..]), "{out}");
            break;
        }
        assert!(Instant::now() < deadline, "edge-b never lapsed: {out}");
        std::thread::sleep(Duration::from_millis(200));
    }
    for i in [0, 2] {
        let weft = &mut nodes[i].0;
        assert_eq!(weft.stop(), 0, "{}", weft.log_text());
    }
}

#[test]
fn nodes_answer_ae_while_postgres_is_down_and_recover_by_themselves() {
    let mut cluster = weft_test_postgres::Cluster::start(false).unwrap();
    let url = cluster.database().unwrap();
    let server = FhirServer::start(&[]);
    let mut nodes = [
        start_node(&url, "edge-a", 15, server.addr, None),
        start_node(&url, "edge-b", 15, server.addr, None),
    ];
    let addrs: Vec<SocketAddr> = nodes.iter().map(|(w, _)| w.addr).collect();
    let (acked, sent) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(Mutex::new(Sent::default())),
    );
    let senders = send_load(addrs.clone(), 4, 40, acked.clone(), sent.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.load(Ordering::SeqCst) < 40 {
        assert!(Instant::now() < deadline, "no load");
        std::thread::sleep(Duration::from_millis(10));
    }
    cluster.stop();
    // While it is down, a message is refused (AE), by both nodes, and
    // nothing is acknowledged.
    let during = acked.load(Ordering::SeqCst);
    for (n, addr) in addrs.iter().enumerate() {
        let message = a01(&format!("DOWN-{n}"), "PX");
        let code = try_exchange(*addr, &message);
        assert_eq!(
            code.as_deref(),
            Some("AE"),
            "node {n} while the database is down"
        );
    }
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        acked.load(Ordering::SeqCst) <= during + 4,
        "acknowledged while the database was down"
    );
    cluster.start_again().unwrap();
    for s in senders {
        s.join().unwrap();
    }
    let sent = sent.lock().unwrap();
    assert!(sent.refused > 0, "the senders saw the outage");
    assert_all_delivered_in_order(&server, &sent, Duration::from_secs(90));
    for (weft, _) in &mut nodes {
        assert_eq!(weft.stop(), 0, "{}", weft.log_text());
    }
}
