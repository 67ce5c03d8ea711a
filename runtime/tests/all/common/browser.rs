//! A real browser for the console's tests: Debian's headless Chromium,
//! driven over WebDriver (W3C) through Debian's chromedriver, spoken to in
//! plain HTTP/1.1 on loopback. The test command installs both
//! (`scripts/lib.sh`, `ensure_chromium`).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

/// The WebDriver key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A Chromium session.
pub struct Chrome {
    driver: Child,
    addr: SocketAddr,
    session: String,
    /// Where screenshots go.
    pub shots: PathBuf,
    _profile: tempfile::TempDir,
}

fn binary(name: &str, candidates: &[&str]) -> PathBuf {
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} is not installed: the test command installs Debian's chromium and \
                 chromium-driver (scripts/lib.sh, ensure_chromium)"
            )
        })
}

impl Chrome {
    /// Starts chromedriver and a headless Chromium with a new, empty
    /// profile; screenshots go to `shots`.
    pub fn start(shots: &Path) -> Chrome {
        let driver_bin = binary("chromedriver", &["/usr/bin/chromedriver"]);
        let chromium = binary("chromium", &["/usr/bin/chromium"]);
        let addr = super::fhir_server::free_addr();
        let driver = Command::new(driver_bin)
            .arg(format!("--port={}", addr.port()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().unwrap();
        let mut me = Chrome {
            driver,
            addr,
            session: String::new(),
            shots: shots.to_path_buf(),
            _profile: profile,
        };
        // The closed network here refuses Chromium's own background
        // connections; these flags keep it from trying.
        let args = [
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--window-size=1280,1400".into(),
            format!("--user-data-dir={}", me._profile.path().display()),
        ];
        let answer = me.call(
            "POST",
            "/session",
            json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": chromium, "args": args},
            }}}),
        );
        me.session = answer["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {answer}"))
            .to_string();
        std::fs::create_dir_all(&me.shots).unwrap();
        me
    }

    /// One WebDriver command: its `value`.
    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let body = if method == "GET" {
            String::new()
        } else {
            body.to_string()
        };
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .unwrap();
        // Read until the answer is whole: chromedriver may keep the
        // connection open whatever the request says.
        let mut bytes = Vec::new();
        let mut chunk = [0u8; 65536];
        let json = loop {
            let n = s.read(&mut chunk).unwrap();
            bytes.extend_from_slice(&chunk[..n]);
            let Some(split) = bytes
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|i| i + 4)
            else {
                assert!(n > 0, "{method} {path}: closed before the headers");
                continue;
            };
            let head = String::from_utf8_lossy(&bytes[..split]).to_ascii_lowercase();
            let body = &bytes[split..];
            if head.contains("transfer-encoding: chunked") {
                if body.ends_with(b"0\r\n\r\n") || n == 0 {
                    break String::from_utf8_lossy(&dechunk(body)).into_owned();
                }
            } else {
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok());
                if length.is_some_and(|l| body.len() >= l) || n == 0 {
                    break String::from_utf8_lossy(body).into_owned();
                }
            }
        };
        let head = "";
        let v: Value = serde_json::from_str(&json)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}: {head}\n{json}"));
        v["value"].clone()
    }

    fn at(&self, tail: &str) -> String {
        format!("/session/{}{tail}", self.session)
    }

    /// Opens `url`.
    pub fn goto(&self, url: &str) {
        self.call("POST", &self.at("/url"), json!({ "url": url }));
    }

    /// The page's URL.
    pub fn url(&self) -> String {
        self.call("GET", &self.at("/url"), Value::Null)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The page's HTML as the browser holds it.
    pub fn source(&self) -> String {
        self.call("GET", &self.at("/source"), Value::Null)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The element `css` selects, waiting up to 10 s for it.
    pub fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let v = self.call(
                "POST",
                &self.at("/element"),
                json!({"using": "css selector", "value": css}),
            );
            if let Some(id) = v[ELEMENT].as_str() {
                return id.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "no {css} on {}: {}",
                self.url(),
                self.source()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether `css` selects anything now.
    pub fn has(&self, css: &str) -> bool {
        let v = self.call(
            "POST",
            &self.at("/elements"),
            json!({"using": "css selector", "value": css}),
        );
        v.as_array().is_some_and(|a| !a.is_empty())
    }

    /// Clicks the element `css` selects.
    pub fn click(&self, css: &str) {
        let id = self.find(css);
        self.call("POST", &self.at(&format!("/element/{id}/click")), json!({}));
    }

    /// Types `text` into the element `css` selects.
    pub fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css);
        self.call("POST", &self.at(&format!("/element/{id}/clear")), json!({}));
        self.call(
            "POST",
            &self.at(&format!("/element/{id}/value")),
            json!({ "text": text }),
        );
    }

    /// The visible text of the element `css` selects.
    pub fn text(&self, css: &str) -> String {
        let id = self.find(css);
        self.call("GET", &self.at(&format!("/element/{id}/text")), Value::Null)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Runs `script` in the page (WebDriver's own channel, not subject to
    /// the page's Content-Security-Policy): its result.
    pub fn run(&self, script: &str) -> Value {
        self.call(
            "POST",
            &self.at("/execute/sync"),
            json!({"script": script, "args": []}),
        )
    }

    /// The browser's cookies for the page.
    pub fn cookies(&self) -> Vec<Value> {
        self.call("GET", &self.at("/cookie"), Value::Null)
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until the page's text holds `needle`, reloading it every
    /// 200 ms (10 s at most).
    pub fn wait_for_text(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self.text("body").contains(needle) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} never appeared on {}: {}",
                self.url(),
                self.text("body")
            );
            std::thread::sleep(Duration::from_millis(200));
            self.call("POST", &self.at("/refresh"), json!({}));
        }
    }

    /// Saves a PNG of the window as `name.png`: its path.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let b64 = self.call("GET", &self.at("/screenshot"), Value::Null);
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap_or_default())
            .expect("a PNG");
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }
}

impl Drop for Chrome {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.call("DELETE", &format!("/session/{}", self.session), Value::Null)
            }));
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// A chunked HTTP body, joined.
fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&rest[..eol]);
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        let tail = &rest[eol + 2..];
        if n == 0 || tail.len() < n {
            break;
        }
        out.extend_from_slice(&tail[..n]);
        rest = tail[n..].strip_prefix(b"\r\n").unwrap_or(&tail[n..]);
    }
    out
}
