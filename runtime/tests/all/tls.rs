//! MLLP over TLS against the real binary: Weft's listener with mutual TLS
//! against third-party clients (Python's `ssl`, `openssl s_client`) and a
//! plain-text one; Weft's MLLP destination and `weft send` against it; the
//! client certificate's subject recorded with each message; bad
//! certificates refused with a clear reason, and nothing lost.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::pki::Pki;
use crate::common::run::{Weft, a01};
use crate::common::weft_cli;

/// A receiving Weft whose MLLP source `in` speaks TLS and requires a client
/// certificate from the client CA; it writes what it gets to `out/`.
fn tls_receiver(pki: &Pki) -> Weft {
    Weft::receiving(&format!(
        r#"[sources.in]
kind = "mllp"
listen = "127.0.0.1:0"
ack = "after-commit"
idle_timeout_s = 3
tls = {{ cert = "{}", key = "{}", client_ca = "{}" }}"#,
        pki.path("server.pem"),
        pki.path("server.key"),
        pki.path("client-ca.pem"),
    ))
}

/// Sends one framed message with Python's `ssl` module; what came back.
fn python_send(addr: std::net::SocketAddr, pki: &Pki, client_cert: bool, message: &[u8]) -> String {
    python_send_trusting(addr, &pki.path("server-ca.pem"), pki, client_cert, message)
}

/// [`python_send`], trusting the CA in `ca`.
fn python_send_trusting(
    addr: std::net::SocketAddr,
    ca: &str,
    pki: &Pki,
    client_cert: bool,
    message: &[u8],
) -> String {
    let script = r#"
import socket, ssl, sys
port, ca, cert, key, msg = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context(cafile=ca)
if cert:
    ctx.load_cert_chain(cert, key)
try:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            t.sendall(b"\x0b" + msg.encode() + b"\x1c\r")
            data = b""
            while b"\x1c" not in data:
                chunk = t.recv(4096)
                if not chunk:
                    break
                data += chunk
            print("ANSWER", data.decode(errors="replace").replace("\r", "\n"))
except Exception as e:
    print("FAILED", type(e).__name__, e)
"#;
    let (cert, key) = if client_cert {
        (pki.path("client.pem"), pki.path("client.key"))
    } else {
        (String::new(), String::new())
    };
    let out = Command::new("python3")
        .args(["-c", script, &addr.port().to_string(), ca, &cert, &key])
        .arg(String::from_utf8_lossy(message).as_ref())
        .output()
        .expect("python3 runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The files the file destination has finished (not its temporary ones),
/// once there are `n` of them (or after 10 s).
fn wait_for_files(weft: &Weft, n: usize) -> Vec<std::path::PathBuf> {
    let done = || -> Vec<std::path::PathBuf> {
        weft.out_files()
            .into_iter()
            .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while done().len() < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}

#[test]
fn mllp_over_tls_with_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let receiver = tls_receiver(&pki);
    let addr = receiver.addr;

    // Python's ssl with a client certificate: AA.
    let got = python_send(addr, &pki, true, &a01("PY1", "1"));
    assert!(
        got.contains("ANSWER") && got.contains("MSA|AA|PY1"),
        "{got}"
    );

    // Without a client certificate: no answer, and the log says why.
    let got = python_send(addr, &pki, false, &a01("PY2", "2"));
    assert!(!got.contains("MSA|"), "{got}");
    assert!(
        receiver.wait_for_log("TLS handshake failed", Duration::from_secs(5)),
        "{}",
        receiver.log_text()
    );

    // openssl s_client with the client certificate.
    let mut s_client = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &addr.to_string(),
            "-quiet",
            "-ign_eof",
        ])
        .args([
            "-CAfile",
            &pki.path("server-ca.pem"),
            "-servername",
            "localhost",
        ])
        .args([
            "-cert",
            &pki.path("client.pem"),
            "-key",
            &pki.path("client.key"),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl runs");
    let mut frame = vec![0x0b];
    frame.extend(a01("OSSL1", "3"));
    frame.extend([0x1c, 0x0d]);
    s_client.stdin.take().unwrap().write_all(&frame).unwrap();
    // The listener closes the idle connection after 3 s; s_client then ends.
    let out = s_client.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).replace('\r', "\n");
    assert!(
        stdout.contains("MSA|AA|OSSL1"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A plain-text client gets no ACK and the connection is closed.
    let mut plain = std::net::TcpStream::connect(addr).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    plain.write_all(&frame).unwrap();
    let mut buf = Vec::new();
    let _ = plain.read_to_end(&mut buf);
    assert!(!String::from_utf8_lossy(&buf).contains("MSA|"), "{buf:?}");

    // A client that connects and never starts its handshake is closed
    // after the listener's idle timeout (3 s here), not held open.
    let mut silent = std::net::TcpStream::connect(addr).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    assert!(matches!(silent.read(&mut buf), Ok(0) | Err(_)));
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );

    // `weft send` over TLS, with and without the client certificate.
    let msg_file = dir.path().join("m.hl7");
    std::fs::write(&msg_file, a01("SEND1", "4")).unwrap();
    let to = addr.to_string();
    let m = msg_file.display().to_string();
    let (code, text) = weft_cli(&[
        "send",
        "--to",
        &to,
        "--tls-ca",
        &pki.path("server-ca.pem"),
        "--tls-cert",
        &pki.path("client.pem"),
        "--tls-key",
        &pki.path("client.key"),
        "--tls-server-name",
        "localhost",
        &m,
    ]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("AA\tSEND1"), "{text}");
    let (code, text) = weft_cli(&[
        "send",
        "--to",
        &to,
        "--tls-ca",
        &pki.path("rogue-ca.pem"),
        &m,
    ]);
    assert_ne!(code, 0, "{text}");
    assert!(text.to_lowercase().contains("certificate"), "{text}");

    // What arrived, and who sent it.
    let files = wait_for_files(&receiver, 3);
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["OSSL1.hl7", "PY1.hl7", "SEND1.hl7"]);
    let config = receiver.config_path().display().to_string();
    let (code, list) = weft_cli(&["messages", "--config", &config, "list"]);
    assert_eq!(code, 0, "{list}");
    let id = list
        .lines()
        .find(|l| l.contains("PY1"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("{list}"))
        .to_string();
    let (_, shown) = weft_cli(&["messages", "--config", &config, "show", &id]);
    assert!(
        shown.contains("certificate CN=lab-analyzer, O=North Hospital"),
        "{shown}"
    );
    // Four failed handshakes from this address (no certificate, plain text,
    // silence, a client distrusting the server): one warning line.
    let warnings = receiver
        .log_text()
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("TLS handshake failed"))
        .count();
    assert_eq!(warnings, 1, "{}", receiver.log_text());
}

#[test]
fn mllp_destination_speaks_tls_and_bad_certificates_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let receiver = tls_receiver(&pki);
    let target = receiver.addr;
    let sender = |ca: &str, ack: &str| {
        let tls = format!(
            r#"{{ ca = "{}", cert = "{}", key = "{}", server_name = "localhost" }}"#,
            pki.path(ca),
            pki.path("client.pem"),
            pki.path("client.key")
        );
        Weft::start(move |_| {
            format!(
                r#"
[sources.in]
kind = "mllp"
listen = "127.0.0.1:0"
ack = "{ack}"
[destinations.next]
kind = "mllp"
address = "{target}"
timeout_s = 5
tls = {tls}
[routes.forward]
match = ["*"]
destinations = ["next"]
"#
            )
        })
    };
    let good = sender("server-ca.pem", "after-delivery");
    let ack = good.client().exchange(&a01("FWD1", "1"));
    assert_eq!(ack.code, "AA", "{}", ack.raw);
    assert_eq!(wait_for_files(&receiver, 1).len(), 1);

    // A sender that trusts the wrong CA: the delivery fails with the
    // reason and stays pending (nothing is lost), retried later.
    let wrong = sender("rogue-ca.pem", "after-commit");
    let ack = wrong.client().exchange(&a01("FWD2", "2"));
    assert_eq!(ack.code, "AA", "{}", ack.raw);
    assert!(
        wrong.wait_for_log("invalid peer certificate", Duration::from_secs(10)),
        "{}",
        wrong.log_text()
    );
    assert!(
        wrong.log_text().contains("will retry"),
        "{}",
        wrong.log_text()
    );
    let config = wrong.config_path().display().to_string();
    let (_, pending) = weft_cli(&[
        "messages", "--config", &config, "list", "--status", "pending",
    ]);
    assert!(pending.contains("FWD2"), "{pending}");
    assert_eq!(receiver.out_files().len(), 1);
}

fn check(dir: &Path, tls: &str) -> (i32, String) {
    let config = dir.join("weft.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[sources.in]
kind = "mllp"
listen = "127.0.0.1:0"
tls = {tls}
[destinations.files]
kind = "file"
dir = "out"
[routes.copy]
match = ["*"]
destinations = ["files"]
"#
        ),
    )
    .unwrap();
    weft_cli(&["check", &config.display().to_string()])
}

#[test]
fn check_names_what_is_wrong_with_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let tls = |cert: &str, key: &str| {
        format!(
            r#"{{ cert = "{}", key = "{}" }}"#,
            pki.path(cert),
            pki.path(key)
        )
    };
    let (code, out) = check(dir.path(), &tls("server.pem", "server.key"));
    assert_eq!(code, 0, "{out}");
    let (code, out) = check(dir.path(), &tls("expired.pem", "expired.key"));
    assert_ne!(code, 0);
    assert!(
        out.contains("sources.in.tls") && out.contains("expired on"),
        "{out}"
    );
    let (code, out) = check(dir.path(), &tls("server.pem", "client.key"));
    assert_ne!(code, 0);
    assert!(out.contains("does not match the certificate"), "{out}");
    let (code, out) = check(dir.path(), &tls("server.key", "server.key"));
    assert_ne!(code, 0);
    assert!(out.contains("holds no PEM certificate"), "{out}");
    let (code, out) = check(dir.path(), &tls("missing.pem", "server.key"));
    assert_ne!(code, 0);
    assert!(
        out.contains("sources.in.tls.cert") && out.contains("does not exist"),
        "{out}"
    );
}

#[test]
fn https_source_with_client_certificates_and_https_destination() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    // A receiving Weft whose HTTP source is HTTPS with mutual TLS.
    let receiver = Weft::receiving(&format!(
        r#"[sources.web]
kind = "http"
listen = "127.0.0.1:0"
path = "/messages"
ack = "after-commit"
tls = {{ cert = "{}", key = "{}", client_ca = "{}" }}"#,
        pki.path("server.pem"),
        pki.path("server.key"),
        pki.path("client-ca.pem"),
    ));
    let web = receiver.addrs["web"];
    let url = format!("https://localhost:{}/messages", web.port());
    let body = dir.path().join("m.hl7");
    std::fs::write(&body, a01("CURL1", "1")).unwrap();
    let data = format!("@{}", body.display());
    let resolve = format!("localhost:{}:127.0.0.1", web.port());
    let base = [
        "-H",
        "Content-Type: application/hl7-v2",
        "--data-binary",
        data.as_str(),
        "--resolve",
        resolve.as_str(),
        "--cacert",
    ];
    // curl with the client certificate: accepted.
    let (cert, key, ca) = (
        pki.path("client.pem"),
        pki.path("client.key"),
        pki.path("server-ca.pem"),
    );
    let mut args: Vec<&str> = base.to_vec();
    args.extend([
        ca.as_str(),
        "--cert",
        cert.as_str(),
        "--key",
        key.as_str(),
        url.as_str(),
    ]);
    let (code, text) = crate::common::curl(&args);
    assert_eq!(code, 202, "{text}");
    // Without one: no HTTP answer at all.
    let mut args: Vec<&str> = base.to_vec();
    args.extend([ca.as_str(), url.as_str()]);
    let (code, text) = crate::common::curl(&args);
    assert_eq!(code, 0, "{text}");
    // Plain HTTP to the HTTPS port: no HTTP answer either.
    let plain = format!("http://127.0.0.1:{}/messages", web.port());
    let (code, _) = crate::common::curl(&[
        "-H",
        "Content-Type: application/hl7-v2",
        "--data-binary",
        &data,
        "--max-time",
        "5",
        &plain,
    ]);
    assert_eq!(code, 0);

    // Weft's HTTP destination over HTTPS with its client certificate.
    let sender = Weft::start(|_| {
        format!(
            r#"
[sources.in]
kind = "mllp"
listen = "127.0.0.1:0"
ack = "after-delivery"
[destinations.web]
kind = "http"
url = "https://127.0.0.1:{port}/messages"
timeout_s = 5
tls = {{ ca = "{ca}", cert = "{cert}", key = "{key}", server_name = "localhost" }}
[routes.forward]
match = ["*"]
destinations = ["web"]
"#,
            port = web.port(),
            ca = pki.path("server-ca.pem"),
            cert = pki.path("client.pem"),
            key = pki.path("client.key"),
        )
    });
    let ack = sender.client().exchange(&a01("HTTPS1", "2"));
    assert_eq!(ack.code, "AA", "{}", ack.raw);
    let files = wait_for_files(&receiver, 2);
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["CURL1.hl7", "HTTPS1.hl7"]);
    let config = receiver.config_path().display().to_string();
    let (_, list) = weft_cli(&["messages", "--config", &config, "list"]);
    let id = list
        .lines()
        .find(|l| l.contains("HTTPS1"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("{list}"))
        .to_string();
    let (_, shown) = weft_cli(&["messages", "--config", &config, "show", &id]);
    assert!(shown.contains("certificate CN=lab-analyzer"), "{shown}");
}

/// A renewed certificate, written over the old files, is served to new
/// connections after the reload it triggers, without a restart.
#[test]
fn a_renewed_certificate_is_served_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let next = Pki::new(&dir.path().join("next"));
    let live = dir.path().join("live");
    std::fs::create_dir_all(&live).unwrap();
    for f in ["server.pem", "server.key"] {
        std::fs::copy(dir.path().join(f), live.join(f)).unwrap();
    }
    // A fixed port, as in production: the listener restarts on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let receiver = Weft::receiving(&format!(
        r#"[sources.in]
kind = "mllp"
listen = "127.0.0.1:{port}"
ack = "after-commit"
tls = {{ cert = "{}", key = "{}" }}"#,
        live.join("server.pem").display(),
        live.join("server.key").display(),
    ));
    let addr = receiver.addr;
    let old_ca = pki.path("server-ca.pem");
    let new_ca = next.path("server-ca.pem");
    let got = python_send_trusting(addr, &old_ca, &pki, false, &a01("OLD1", "1"));
    assert!(got.contains("MSA|AA|OLD1"), "{got}");
    let got = python_send_trusting(addr, &new_ca, &pki, false, &a01("NEW0", "1"));
    assert!(!got.contains("MSA|"), "{got}");
    // A connection open across the renewal keeps its session.
    let old_trust = weft::tls::client_config(&weft::tls::ClientTls {
        ca: Some(pki.dir.join("server-ca.pem")),
        ..Default::default()
    })
    .unwrap();
    let mut open = crate::common::run::TlsClient::connect(addr, &old_trust);
    assert_eq!(open.exchange(&a01("OPEN1", "1")), "AA");

    // Renew: the new files are renamed into place, as a deployment would.
    for f in ["server.pem", "server.key"] {
        let tmp = live.join(format!("{f}.tmp"));
        std::fs::copy(next.dir.join(f), &tmp).unwrap();
        std::fs::rename(&tmp, live.join(f)).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = String::new();
    while Instant::now() < deadline {
        got = python_send_trusting(addr, &new_ca, &pki, false, &a01("NEW1", "2"));
        if got.contains("MSA|AA|NEW1") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        got.contains("MSA|AA|NEW1"),
        "{got}\n{}",
        receiver.log_text()
    );
    let got = python_send_trusting(addr, &old_ca, &pki, false, &a01("OLD2", "3"));
    assert!(!got.contains("MSA|"), "{got}");
    // Renewed in place: the open connection was not closed, and still
    // sends on the session it started with.
    assert_eq!(open.exchange(&a01("OPEN2", "4")), "AA");
    assert!(
        receiver.log_text().contains("certificate renewed"),
        "{}",
        receiver.log_text()
    );
    assert!(
        !receiver.log_text().contains("restarted"),
        "{}",
        receiver.log_text()
    );
    // The same listener, not a new process: the earlier messages are there.
    assert_eq!(wait_for_files(&receiver, 4).len(), 4);
}
