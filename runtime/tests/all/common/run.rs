//! A real `weft run` process on loopback, and a small MLLP client.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use weft::mllp::{Decoder, Frame};

/// A running `weft run`.
pub struct Weft {
    child: Option<Child>,
    /// The address of the source named `in`, read from the log.
    pub addr: SocketAddr,
    /// Every source's address, by name.
    pub addrs: std::collections::HashMap<String, SocketAddr>,
    /// Where the test's file destination writes.
    pub out: PathBuf,
    /// Every log line so far.
    pub log: Arc<Mutex<Vec<String>>>,
    config: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    _dir: tempfile::TempDir,
}

/// The ADT route of the default configuration, with absolute paths, a file
/// destination under the temporary directory, and `extra` appended.
pub fn adt_config(dir: &Path, ack: &str, extra: &str) -> String {
    let repo = super::repo();
    format!(
        r#"
[sources.in]
kind = "mllp"
listen = "127.0.0.1:0"
ack = "{ack}"
idle_timeout_s = 5

[plugins.site-normalize]
path = "{sn}"
[plugins.site-normalize.config]
mrn_prefix = "EDGE-"
drop_segments = "ZPI"

[plugins.adt-to-fhir]
path = "{adt}"
[plugins.adt-to-fhir.config]
default_utc_offset = "+00:00"
[plugins.adt-to-fhir.lookups]
gender = "{repo}/lookups/gender.csv"
assigning_authority = "{repo}/lookups/assigning-authority.csv"

[destinations.files]
kind = "file"
dir = "{out}"
filename = "{{type}}/{{control_id}}-{{n}}.{{ext}}"

[routes.adt]
plugins = ["site-normalize", "adt-to-fhir"]
destinations = ["files"]
match = ["ADT^*"]
{extra}
"#,
        sn = super::wasm("site-normalize").display(),
        adt = super::wasm("adt-to-fhir").display(),
        repo = repo.display(),
        out = dir.join("out").display(),
    )
}

impl Weft {
    /// Starts `weft run` on a config made by `make(dir)`.
    pub fn start(make: impl FnOnce(&Path) -> String) -> Weft {
        Self::start_with(&[], make)
    }

    /// Starts `weft run` with extra arguments on a config made by `make(dir)`.
    pub fn start_with(args: &[&str], make: impl FnOnce(&Path) -> String) -> Weft {
        Self::start_env(args, &[], make)
    }

    /// Starts `weft run` with extra arguments and environment variables on
    /// a config made by `make(dir)`.
    pub fn start_env(
        args: &[&str],
        env: &[(&str, &str)],
        make: impl FnOnce(&Path) -> String,
    ) -> Weft {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("weft.toml");
        std::fs::write(&config, make(dir.path())).unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let (child, addrs) = spawn(&config, dir.path(), &log, &args, &env);
        let addr = addrs
            .get("in")
            .copied()
            .unwrap_or_else(|| "127.0.0.1:9".parse().unwrap());
        Weft {
            child: Some(child),
            addr,
            addrs,
            out: dir.path().join("out"),
            log,
            config,
            args,
            env,
            _dir: dir,
        }
    }

    /// A receiving Weft: every message its MLLP source `in` gets is written,
    /// unchanged, to `out/<control id>.hl7`; ACK after delivery.
    pub fn receiver() -> Weft {
        Weft::receiving(
            r#"[sources.in]
kind = "mllp"
listen = "127.0.0.1:0"
ack = "after-delivery""#,
        )
    }

    /// A Weft with the sources in `sources` (TOML) whose every message is
    /// written, unchanged, to `out/<control id>.hl7`.
    pub fn receiving(sources: &str) -> Weft {
        Weft::start(|d| {
            format!(
                r#"
{sources}
[destinations.files]
kind = "file"
dir = "{}"
filename = "{{control_id}}.{{ext}}"
[routes.copy]
match = ["*"]
destinations = ["files"]
"#,
                d.join("out").display()
            )
        })
    }

    /// Its admin API on `addr` (the config's `[admin] listen`), with the
    /// token its first run made.
    pub fn api(&self, addr: SocketAddr) -> super::Api {
        super::Api::new(addr, &self.dir().join("data"))
    }

    /// `weft admin token add NAME --role ROLE` on its configuration: the
    /// API on `addr` with the new token.
    pub fn add_token(&self, addr: SocketAddr, name: &str, role: &str) -> super::Api {
        let config = self.config_path().display().to_string();
        let (code, text) =
            super::weft_cli(&["admin", "token", "add", name, "--role", role, "-c", &config]);
        assert_eq!(code, 0, "{text}");
        let token = text
            .lines()
            .find(|l| l.starts_with("weft_"))
            .expect("the token is printed")
            .to_string();
        super::Api { addr, token }
    }

    /// Starts it again on the same configuration and data (after `stop` or
    /// `kill`); the sources get new ports.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop or kill it first");
        let (child, addrs) = spawn(
            &self.config,
            self._dir.path(),
            &self.log,
            &self.args,
            &self.env,
        );
        self.addr = addrs.get("in").copied().unwrap_or(self.addr);
        self.addrs = addrs;
        self.child = Some(child);
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// One memory field of its `/proc/PID/status` (`VmRSS`, `VmHWM`,
    /// `RssAnon`, ...), in KiB; 0 where there is no such file.
    pub fn status_kib(&self, field: &str) -> u64 {
        status_kib(self.pid(), field)
    }

    /// The temporary directory it runs in (data, output, config).
    pub fn dir(&self) -> &Path {
        self._dir.path()
    }

    /// The configuration file it runs on.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// Sends a signal (`HUP`, `TERM`, ...) by name.
    pub fn signal(&self, name: &str) {
        let pid = self.pid().to_string();
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(pid)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{name}");
    }

    /// Kills it with SIGKILL: no shutdown at all.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg(child.id().to_string())
            .status();
        let _ = child.wait();
    }

    /// A connected client.
    pub fn client(&self) -> Client {
        Client::connect(self.addr)
    }

    /// Sends SIGTERM and waits for the exit code. The output directory
    /// stays until the `Weft` is dropped.
    pub fn stop(&mut self) -> i32 {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("weft did not stop within 60 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until a log line contains `needle`; false after `timeout`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log_text().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// The log so far, as one string.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Every file the file destination wrote, recursively.
    pub fn out_files(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, acc: &mut Vec<PathBuf>) {
            if let Ok(rd) = std::fs::read_dir(dir) {
                for e in rd.flatten() {
                    let p = e.path();
                    if p.is_dir() {
                        walk(&p, acc);
                    } else if !e.file_name().to_string_lossy().starts_with(".weft-") {
                        // Not a file still being written (a temporary
                        // name until its rename).
                        acc.push(p);
                    }
                }
            }
        }
        let mut acc = Vec::new();
        walk(&self.out, &mut acc);
        acc.sort();
        acc
    }

    /// For a [`Weft::receiver`]: waits up to `timeout` until it has
    /// received every message of `control_ids`; those it has not.
    pub fn missing(&self, control_ids: &[String], timeout: Duration) -> Vec<String> {
        let absent = |id: &&String| !self.out.join(format!("{id}.hl7")).exists();
        let deadline = Instant::now() + timeout;
        while control_ids.iter().any(|id| absent(&id)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        control_ids.iter().filter(absent).cloned().collect()
    }
}

/// One memory field of a process's `/proc/PID/status`, in KiB; 0 where
/// there is no such file or field.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn spawn(
    config: &Path,
    dir: &Path,
    log: &Arc<Mutex<Vec<String>>>,
    args: &[String],
    env: &[(String, String)],
) -> (Child, std::collections::HashMap<String, SocketAddr>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["run", "--config"])
        .arg(config)
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "info")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("weft starts");
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let sink = log.clone();
    std::thread::spawn(move || {
        let mut addrs = std::collections::HashMap::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            // "MLLP source NAME listening on ADDR (...)"
            if let Some((head, rest)) = line.split_once(" listening on ") {
                let name = head.rsplit(' ').next().unwrap_or_default().to_string();
                let addr = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                addrs.insert(name, addr);
            }
            if line.contains("weft running") {
                let _ = tx.send(addrs.clone());
            }
            sink.lock().unwrap().push(line);
        }
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(a) => (
            child,
            a.into_iter()
                .map(|(k, v)| (k, v.parse().unwrap()))
                .collect(),
        ),
        Err(_) => {
            let _ = child.kill();
            panic!("weft did not start:\n{}", log.lock().unwrap().join("\n"));
        }
    }
}

impl Drop for Weft {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A blocking MLLP client.
pub struct Client {
    pub stream: TcpStream,
    decoder: Decoder,
    buf: BytesMut,
}

/// The parts of an ACK tests look at.
#[derive(Debug, Clone)]
pub struct Ack {
    pub code: String,
    pub control_id: String,
    pub error_code: String,
    pub text: String,
    pub raw: String,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            decoder: Decoder::new(16 << 20),
            buf: BytesMut::new(),
        }
    }

    /// A second handle on the same connection, for reading while another
    /// thread writes (pipelining).
    pub fn reader(&self) -> Client {
        Client {
            stream: self.stream.try_clone().unwrap(),
            decoder: Decoder::new(16 << 20),
            buf: BytesMut::new(),
        }
    }

    /// Writes raw bytes.
    pub fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Sends one message in a frame, as it is: a test may send framing
    /// bytes inside it on purpose (a peer is not bound by Weft's checks).
    pub fn send(&mut self, message: &[u8]) {
        self.write(
            &[
                &[weft::mllp::SB][..],
                message,
                &[weft::mllp::EB, weft::mllp::CR],
            ]
            .concat(),
        );
    }

    /// Reads the next ACK; `None` when the connection closes first.
    pub fn read_ack(&mut self) -> Option<Ack> {
        loop {
            if let Some(Frame::Message(m)) = self.decoder.decode(&mut self.buf) {
                let m = weft_hl7::Message::parse(&m).expect("ACK parses");
                let get = |p: &str| m.get(p).unwrap().unwrap_or_default();
                return Some(Ack {
                    code: get("MSA-1"),
                    control_id: get("MSA-2"),
                    error_code: get("ERR-3.1"),
                    text: get("ERR-8"),
                    raw: m.to_text(),
                });
            }
            let mut chunk = [0u8; 8192];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Sends a message and reads its ACK.
    pub fn exchange(&mut self, message: &[u8]) -> Ack {
        self.send(message);
        self.read_ack().expect("an ACK")
    }
}

/// A blocking MLLP client over TLS (rustls), trusting what `config` trusts;
/// the server is checked against the name `localhost`.
pub struct TlsClient {
    stream: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    decoder: Decoder,
    buf: BytesMut,
}

impl TlsClient {
    /// Connects and completes the handshake.
    pub fn connect(addr: SocketAddr, config: &Arc<rustls::ClientConfig>) -> TlsClient {
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_nodelay(true).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(config.clone(), name).unwrap();
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock).unwrap();
        }
        TlsClient {
            stream,
            decoder: Decoder::new(1 << 20),
            buf: BytesMut::new(),
        }
    }

    /// Sends a message and reads its ACK: MSA-1.
    pub fn exchange(&mut self, message: &[u8]) -> String {
        let frame = weft::mllp::framed(message).unwrap();
        self.stream.write_all(&frame).unwrap();
        loop {
            if let Some(Frame::Message(m)) = self.decoder.decode(&mut self.buf) {
                let m = weft_hl7::Message::parse(&m).unwrap();
                return m.get("MSA-1").unwrap().unwrap_or_default();
            }
            let mut chunk = [0u8; 8192];
            let n = self.stream.read(&mut chunk).unwrap();
            assert!(n > 0, "connection closed");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Every ADT message from the MLLP source `in` (ACK after commit) to the
/// MLLP destination `lis` at `lis`, unchanged, no plugins; `head` (TOML,
/// such as a `[runtime]` table) first.
pub fn relay_config(lis: SocketAddr, head: &str) -> String {
    format!(
        r#"{head}
[sources.in]
kind = "mllp"
listen = "127.0.0.1:0"
ack = "after-commit"

[destinations.lis]
kind = "mllp"
address = "{lis}"
timeout_s = 5

[routes.all]
match = ["ADT^*"]
destinations = ["lis"]
"#
    )
}

/// A synthetic ADT^A01 with the given control id and MRN (no real patient).
pub fn a01(control_id: &str, mrn: &str) -> Vec<u8> {
    format!(
        "MSH|^~\\&|EPIC|EDGE|WEFT|EDGE|20240102030405||ADT^A01^ADT_A01|{control_id}|P|2.5.1\r\
         PID|1||{mrn}^^^EDGE^MR||Test^Pat||19800101|F\r\
         PV1|1|I|W1^1^1\r"
    )
    .into_bytes()
}

/// `weft run` on `config`, which must stop by itself within a minute (a
/// start it refuses): its exit code and stderr.
pub fn run_refused(config: &Path) -> (i32, String) {
    run_refused_env(config, &[])
}

/// [`run_refused`] with these environment variables set.
pub fn run_refused_env(config: &Path, env: &[(&str, &str)]) -> (i32, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["run", "--config"])
        .arg(config)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "weft started on {} instead of refusing it",
                config.display()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The fix of the reprocessing tests: site-normalize corrects one sender's
/// impossible birth date through a table. Applied by a hot reload.
pub fn fix_birth_dates(weft: &Weft, api: &super::Api) {
    let dir = weft.dir().to_path_buf();
    std::fs::write(dir.join("birth-dates.csv"), "19801399,19801231\n").unwrap();
    let text = std::fs::read_to_string(weft.config_path()).unwrap();
    let fixed = text.replace(
        "drop_segments = \"ZPI\"",
        "drop_segments = \"ZPI\"\ntranslate = \"PID-7:birth_dates\"",
    ) + &format!(
        "\n[plugins.site-normalize.lookups]\nbirth_dates = \"{}\"\n",
        dir.join("birth-dates.csv").display()
    );
    std::fs::write(weft.config_path(), fixed).unwrap();
    let (code, r) = api.call("POST", "/reload", &[], "");
    assert_eq!(
        (code, r["config_applied"].as_bool()),
        (200, Some(true)),
        "{r}"
    );
}

/// The shipped `weft.toml`, with repository paths made absolute and every
/// listener on a free port.
pub fn shipped_config() -> String {
    let repo = super::repo();
    let repo = repo.canonicalize().unwrap();
    let text = std::fs::read_to_string(repo.join("weft.toml")).unwrap();
    text.replace("\"target/", &format!("\"{}/target/", repo.display()))
        .replace("\"lookups/", &format!("\"{}/lookups/", repo.display()))
        .replace("\"samples/", &format!("\"{}/samples/", repo.display()))
        .replace("127.0.0.1:2575", "127.0.0.1:0")
        .replace("127.0.0.1:8080", "127.0.0.1:0")
        .replace("127.0.0.1:8081", "127.0.0.1:0")
}
