//! The admin HTTP API of a real `weft run`, driven with curl: what
//! operators do, tokens and roles, the checks against cross-site and
//! rebinding requests, HTTPS.

use std::time::{Duration, Instant};

use crate::common::fhir_server::{FhirServer, free_addr};
use crate::common::pki::Pki;
use crate::common::run::{Weft, a01, adt_config};
use crate::common::{curl, weft_cli};
use serde_json::Value;

fn get(token: &str, url: &str) -> (u16, Value) {
    let (code, body) = curl(&["-H", &format!("Authorization: Bearer {token}"), url]);
    (code, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn post(token: &str, url: &str, body: &str) -> (u16, Value) {
    let (code, text) = curl(&[
        "-X",
        "POST",
        "-H",
        &format!("Authorization: Bearer {token}"),
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        body,
        url,
    ]);
    (code, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[test]
fn operators_list_show_resend_and_purge_over_http() {
    // The FHIR server refuses twice for good (400), then accepts.
    let server = FhirServer::start(&[400, 400]);
    let admin = free_addr();
    let weft = Weft::start(|d| {
        adt_config(
            d,
            "after-commit",
            &format!(
                "[destinations.fhir]\nkind = \"http\"\nurl = \"http://{}/fhir\"\n\
                 [sources.in2]\nkind = \"mllp\"\nlisten = \"127.0.0.1:0\"\nroute = \"adt2\"\n\
                 [routes.adt2]\nplugins = [\"adt-to-fhir\"]\ndestinations = [\"fhir\"]\n\
                 [admin]\nlisten = \"{admin}\"\n",
                server.addr
            ),
        )
    });
    assert!(
        weft.log_text()
            .contains(&format!("admin API listening on {admin}"))
    );
    let base = format!("http://{admin}");
    let t = weft.api(admin).token;
    let mut c = weft.client();
    assert_eq!(c.exchange(&a01("ADM-1", "1")).code, "AA");
    let mut c = crate::common::run::Client::connect(weft.addrs["in2"]);
    let a08 = |id: &str| {
        String::from_utf8(a01(id, "2"))
            .unwrap()
            .replace("ADT^A01", "ADT^A08")
            .replace("EVN|A01", "EVN|A08")
    };
    assert_eq!(c.exchange(a08("ADM-2").as_bytes()).code, "AA");
    assert_eq!(c.exchange(a08("ADM-3").as_bytes()).code, "AA");
    drop(c);

    // Both A08s die at the server (400 is for good).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, v) = get(&t, &format!("{base}/messages?status=dead"));
        assert_eq!(code, 200, "{v}");
        if v["messages"].as_array().map_or(0, Vec::len) == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "{v}");
        std::thread::sleep(Duration::from_millis(100));
    }

    let (code, status) = get(&t, &format!("{base}/status"));
    assert_eq!(code, 200);
    assert_eq!(status["status"], "ok");
    assert_eq!(status["received"], 3);
    assert_eq!(status["delivery_failed"], 2);
    assert!(status["uptime_s"].is_u64() && status["version"].is_string());

    let (_, list) = get(&t, &format!("{base}/messages?limit=2"));
    let rows = list["messages"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(list["more"], true);
    assert_eq!(rows[0]["control_id"], "ADM-3", "newest first");
    let (_, page2) = get(&t, &format!("{base}/messages?limit=2&page=2"));
    assert_eq!(page2["messages"][0]["control_id"], "ADM-1");
    assert_eq!(page2["more"], false);
    let (_, typed) = get(
        &t,
        &format!("{base}/messages?type=ADT%5EA0*&control_id=ADM-2"),
    );
    assert_eq!(typed["messages"].as_array().unwrap().len(), 1);

    // One message: outcome, versions, deliveries; no body unless asked.
    let id = rows[0]["id"].as_str().unwrap().to_string();
    let (code, m) = get(&t, &format!("{base}/messages/{id}"));
    assert_eq!(code, 200, "{m}");
    assert_eq!(m["status"], "transformed");
    assert_eq!(m["route"], "adt2");
    assert!(
        m["plugin_versions"][0]
            .as_str()
            .unwrap()
            .starts_with("adt-to-fhir@")
    );
    let d = &m["deliveries"][0];
    assert_eq!(d["destination"], "fhir");
    assert_eq!(d["state"], "dead");
    assert!(d["last_error"].as_str().unwrap().contains("400"), "{d}");
    assert!(m.get("body").is_none() && d.get("body").is_none());
    let (_, with) = get(&t, &format!("{base}/messages/{id}?body=true"));
    assert!(with["body"].as_str().unwrap().starts_with("MSH|"));
    assert!(
        with["deliveries"][0]["body"]
            .as_str()
            .unwrap()
            .contains("\"resourceType\":\"Bundle\"")
    );

    // Resend the dead: the server now accepts.
    let (code, r) = post(&t, &format!("{base}/messages/resend"), r#"{"dead": true}"#);
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["queued"], 2);
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.accepted().len() < 2 {
        assert!(Instant::now() < deadline, "resent deliveries arrive");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, r) = post(
        &t,
        &format!("{base}/messages/resend"),
        &format!(r#"{{"ids": ["{id}", "nope"]}}"#),
    );
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["queued"], 1);
    assert_eq!(r["without_outputs"], serde_json::json!(["nope"]));

    // Errors say what is wrong.
    let (code, e) = get(&t, &format!("{base}/messages?since=yesterday"));
    assert_eq!(code, 400);
    assert!(e["error"].as_str().unwrap().contains("since"), "{e}");
    let (code, _) = get(&t, &format!("{base}/messages?colour=red"));
    assert_eq!(code, 400);
    let (code, _) = get(&t, &format!("{base}/messages/no-such-id"));
    assert_eq!(code, 404);
    let (code, _) = post(&t, &format!("{base}/messages/resend"), "not json");
    assert_eq!(code, 400);
    let too_many: Vec<String> = (0..10_001).map(|i| format!("\"id-{i}\"")).collect();
    let (code, e) = post(
        &t,
        &format!("{base}/messages/resend"),
        &format!(r#"{{"ids": [{}]}}"#, too_many.join(",")),
    );
    assert_eq!(code, 400, "{e}");
    assert!(e["error"].as_str().unwrap().contains("10000"), "{e}");
    let (code, _) = post(&t, &format!("{base}/messages/purge"), r#"{"before": 5}"#);
    assert_eq!(code, 400);
    let (code, _) = curl(&[
        "-X",
        "DELETE",
        "-H",
        &format!("Authorization: Bearer {t}"),
        "-H",
        "Content-Type: application/json",
        &format!("{base}/messages"),
    ]);
    assert_eq!(code, 405);
    let (code, _) = get(&t, &format!("{base}/elsewhere"));
    assert_eq!(code, 404);
    // One node on SQLite: nothing shared, nobody listed.
    let (code, n) = get(&t, &format!("{base}/nodes"));
    assert_eq!(code, 200, "{n}");
    assert_eq!(
        n,
        serde_json::json!({"shared": false, "differing_plugins": [], "nodes": []})
    );
    let (code, _) = post(&t, &format!("{base}/nodes"), "{}");
    assert_eq!(code, 405);
    let (code, e) = get(
        &t,
        &format!("{base}/messages?limit=1000&page=18446744073709551615"),
    );
    assert_eq!(
        code, 400,
        "a page past any page is refused, not an overflow: {e}"
    );

    // Purge: everything is settled once the resends are delivered.
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(&t, &format!("{base}/messages?status=pending")).1["messages"]
        .as_array()
        .map_or(1, Vec::len)
        > 0
    {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, p) = post(
        &t,
        &format!("{base}/messages/purge"),
        r#"{"before": "2999-01-01"}"#,
    );
    assert_eq!(code, 200, "{p}");
    assert_eq!(p["messages"], 3);
    let (_, list) = get(&t, &format!("{base}/messages"));
    assert_eq!(list["messages"].as_array().unwrap().len(), 0);
}

#[test]
fn a_non_loopback_admin_address_needs_tls() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("weft.toml");
    std::fs::write(
        &config,
        adt_config(
            dir.path(),
            "after-commit",
            "[admin]\nlisten = \"0.0.0.0:9591\"\n",
        ),
    )
    .unwrap();
    let (code, err) = weft_cli(&["check", &config.display().to_string()]);
    assert_ne!(code, 0);
    assert!(
        err.contains("admin.listen") && err.contains("admin.tls"),
        "{err}"
    );
}

/// A Weft running the ADT route with the admin API on `admin` and
/// `[admin]` lines `extra`.
fn with_admin(admin: std::net::SocketAddr, extra: &str) -> Weft {
    Weft::start(|d| {
        adt_config(
            d,
            "after-commit",
            &format!("[admin]\nlisten = \"{admin}\"\n{extra}"),
        )
    })
}

#[test]
fn tokens_and_roles_decide_what_a_caller_sees_and_does() {
    let admin = free_addr();
    let weft = with_admin(admin, "");
    let base = format!("http://{admin}");
    let local = weft.api(admin).token;
    assert!(weft.log_text().contains("first run: made a token file"));
    let data = weft.dir().join("data");
    for f in ["admin.token", "admin-tokens.toml", "journal.db"] {
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(data.join(f)).unwrap().permissions(),
        );
        assert_eq!(mode & 0o077, 0, "{f} is {mode:o}");
    }
    let tokens = std::fs::read_to_string(data.join("admin-tokens.toml")).unwrap();
    assert!(!tokens.contains(&local), "only the token's hash is stored");

    // A message whose delivery fails, so it has a reason.
    let mut c = weft.client();
    assert_eq!(c.exchange(&a01("ROLE-1", "1")).code, "AA");
    let (_, list) = get(&local, &format!("{base}/messages"));
    let id = list["messages"][0]["id"].as_str().unwrap().to_string();

    // No token, a wrong one: 401 with a JSON reason and a challenge.
    let (code, text) = curl(&["-i", &format!("{base}/status")]);
    assert_eq!(code, 401);
    assert!(
        text.contains("WWW-Authenticate: Bearer") || text.contains("www-authenticate: Bearer"),
        "{text}"
    );
    assert!(text.contains("\"error\":\"no token"), "{text}");
    let (code, e) = get("weft_0000", &format!("{base}/status"));
    assert_eq!(code, 401);
    assert!(e["error"].as_str().unwrap().contains("not valid"), "{e}");

    // Tokens made while it runs work at once, each within its role.
    let reader = weft.add_token(admin, "dashboard", "read").token;
    let phi = weft.add_token(admin, "nurse-desk", "phi").token;
    let (code, s) = get(&reader, &format!("{base}/status"));
    assert_eq!((code, s["status"].as_str()), (200, Some("ok")));
    let (code, _) = get(&reader, &format!("{base}/plugins"));
    assert_eq!(code, 200);
    let (code, l) = get(&reader, &format!("{base}/messages"));
    assert_eq!(code, 200, "{l}");
    let (code, m) = get(&reader, &format!("{base}/messages/{id}"));
    assert_eq!(code, 200, "{m}");
    assert!(m.get("body").is_none());
    let (code, e) = get(&reader, &format!("{base}/messages/{id}?body=true"));
    assert_eq!(code, 403, "{e}");
    assert!(e["error"].as_str().unwrap().contains("phi role"), "{e}");
    let (code, _) = post(
        &reader,
        &format!("{base}/messages/purge"),
        r#"{"before": "2999-01-01"}"#,
    );
    assert_eq!(code, 403);
    let (code, _) = post(&reader, &format!("{base}/reload"), "");
    assert_eq!(code, 403);

    let (code, m) = get(&phi, &format!("{base}/messages/{id}?body=true"));
    assert_eq!(code, 200, "{m}");
    assert!(m["body"].as_str().unwrap().starts_with("MSH|"));
    let (code, _) = post(
        &phi,
        &format!("{base}/messages/resend"),
        r#"{"dead": true}"#,
    );
    assert_eq!(code, 403);
    let (code, r) = post(
        &local,
        &format!("{base}/messages/resend"),
        r#"{"dead": true}"#,
    );
    assert_eq!(code, 200, "{r}");

    // Listed without their hashes; a revoked token stops working at once.
    let config = weft.config_path().display().to_string();
    let (code, listed) = weft_cli(&["admin", "token", "list", "-c", &config]);
    assert_eq!(code, 0);
    assert!(listed.contains("dashboard") && listed.contains("read") && listed.contains("local"));
    assert!(
        !listed.contains(&reader) && !listed.contains("sha256"),
        "{listed}"
    );
    let (code, text) = weft_cli(&["admin", "token", "revoke", "dashboard", "-c", &config]);
    assert_eq!(code, 0, "{text}");
    let (code, _) = get(&reader, &format!("{base}/status"));
    assert_eq!(code, 401);
    let (code, text) = weft_cli(&[
        "admin",
        "token",
        "add",
        "nurse-desk",
        "--role",
        "read",
        "-c",
        &config,
    ]);
    assert_ne!(code, 0);
    assert!(text.contains("exists"), "{text}");

    // `weft plugins` finds the first run's token by itself.
    let (code, text) = weft_cli(&["plugins", "-c", &config]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("adt-to-fhir"), "{text}");

    // Guessing: after the allowance, even the right token waits.
    // (Two failures above count too: the wrong and the revoked token.)
    for _ in 0..8 {
        assert_eq!(get("weft_guess", &format!("{base}/status")).0, 401);
    }
    let (code, e) = get(&local, &format!("{base}/status"));
    assert_eq!(code, 429, "{e}");
    assert!(weft.log_text().contains("failed authentications"));
    // MLLP traffic is not affected.
    assert_eq!(c.exchange(&a01("ROLE-2", "2")).code, "AA");
}

#[test]
fn cross_site_and_rebinding_requests_are_refused_while_traffic_flows() {
    let admin = free_addr();
    let weft = with_admin(admin, "");
    let base = format!("http://{admin}");
    let t = weft.api(admin).token;
    let mut c = weft.client();
    for i in 0..3 {
        assert_eq!(c.exchange(&a01(&format!("XS-{i}"), "1")).code, "AA");
    }
    let count = |t: &str| {
        get(t, &format!("{base}/messages")).1["messages"]
            .as_array()
            .map_or(0, Vec::len)
    };
    assert_eq!(count(&t), 3);
    let (_, list) = get(&t, &format!("{base}/messages"));
    let id = list["messages"][0]["id"].as_str().unwrap().to_string();

    // A page's form post (text/plain, no preflight, no token): refused.
    let (code, _) = curl(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: text/plain",
        "-H",
        "Origin: http://evil.example",
        "--data-binary",
        r#"{"before": "2999-01-01"}"#,
        &format!("{base}/messages/purge"),
    ]);
    assert_eq!(code, 403);
    // Even with a token: a write must be JSON, and a foreign Origin is refused.
    let auth = format!("Authorization: Bearer {t}");
    let (code, e) = curl(&[
        "-X",
        "POST",
        "-H",
        &auth,
        "-H",
        "Content-Type: text/plain",
        "--data-binary",
        r#"{"before": "2999-01-01"}"#,
        &format!("{base}/messages/purge"),
    ]);
    assert_eq!(code, 415, "{e}");
    let (code, _) = curl(&[
        "-X",
        "POST",
        "-H",
        &auth,
        "-H",
        "Content-Type: application/json",
        "-H",
        "Origin: http://evil.example",
        "--data-binary",
        r#"{"before": "2999-01-01"}"#,
        &format!("{base}/messages/purge"),
    ]);
    assert_eq!(code, 403);
    let (code, _) = curl(&[
        "-H",
        &auth,
        "-H",
        "Sec-Fetch-Site: cross-site",
        &format!("{base}/status"),
    ]);
    assert_eq!(code, 403);
    assert_eq!(count(&t), 3, "nothing was purged");

    // DNS rebinding: a page on evil.example resolved to 127.0.0.1.
    let (code, e) = curl(&[
        "-H",
        &auth,
        "-H",
        &format!("Host: evil.example:{}", admin.port()),
        &format!("{base}/messages/{id}?body=true"),
    ]);
    assert_eq!(code, 421, "{e}");
    assert!(!e.contains("MSH|"), "{e}");
    let (code, _) = curl(&[
        "-H",
        &auth,
        "-H",
        "Origin: http://127.0.0.1",
        &format!("{base}/status"),
    ]);
    assert_eq!(code, 403, "another port is another origin");
    let (code, _) = curl(&[
        "-H",
        &auth,
        "-H",
        &format!("Origin: http://localhost:{}", admin.port()),
        &format!("{base}/status"),
    ]);
    assert_eq!(code, 200, "the API's own origin is fine");

    // Traffic was served all along.
    assert_eq!(c.exchange(&a01("XS-9", "1")).code, "AA");
}

#[test]
fn a_token_file_open_to_other_users_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let admin = free_addr();
    let config = dir.path().join("weft.toml");
    std::fs::write(
        &config,
        adt_config(
            dir.path(),
            "after-commit",
            &format!("[admin]\nlisten = \"{admin}\"\ntokens = \"tokens.toml\"\n"),
        ),
    )
    .unwrap();
    let c = config.display().to_string();
    let (code, text) = weft_cli(&[
        "admin", "token", "add", "ops", "--role", "operate", "-c", &c,
    ]);
    assert_eq!(code, 0, "{text}");
    let tokens = dir.path().join("tokens.toml");
    let mut perms = std::fs::metadata(&tokens).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o644);
    std::fs::set_permissions(&tokens, perms).unwrap();
    let (code, text) = weft_cli(&["check", &c]);
    assert_ne!(code, 0);
    assert!(
        text.contains("admin.tokens") && text.contains("tokens.toml") && text.contains("0644"),
        "{text}"
    );
    let (code, text) = weft_cli(&["run", "-c", &c]);
    assert_ne!(code, 0);
    assert!(
        text.contains("tokens.toml") && text.contains("chmod 600"),
        "{text}"
    );
}

#[test]
fn the_admin_api_over_https_with_a_renewed_certificate() {
    let admin = free_addr();
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&dir.path().join("a"));
    let weft = with_admin(
        admin,
        &format!(
            "tls = {{ cert = \"{}\", key = \"{}\" }}\n",
            pki.path("server.pem"),
            pki.path("server.key")
        ),
    );
    assert!(weft.log_text().contains("(https;"));
    let t = weft.api(admin).token;
    let auth = format!("Authorization: Bearer {t}");
    let url = format!("https://localhost:{}/status", admin.port());
    let (code, body) = curl(&["--cacert", &pki.path("server-ca.pem"), "-H", &auth, &url]);
    assert_eq!(code, 200, "{body}");
    let (code, _) = curl(&["-H", &auth, &format!("http://{admin}/status")]);
    assert_eq!(code, 0, "plain HTTP gets no answer");
    let config = weft.config_path().display().to_string();
    let (code, text) = weft_cli(&[
        "plugins",
        "-c",
        &config,
        "--admin-ca",
        &pki.path("server-ca.pem"),
    ]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("site-normalize"), "{text}");

    // A certificate from another CA renamed over the old one: new
    // connections get it, without a restart.
    let renewed = Pki::new(&dir.path().join("b"));
    for f in ["server.key", "server.pem"] {
        let tmp = pki.dir.join(format!("{f}.new"));
        std::fs::copy(renewed.dir.join(f), &tmp).unwrap();
        std::fs::rename(&tmp, pki.dir.join(f)).unwrap();
    }
    assert!(
        weft.wait_for_log("admin API: renewed certificate", Duration::from_secs(20)),
        "{}",
        weft.log_text()
    );
    let (code, body) = curl(&[
        "--cacert",
        &renewed.path("server-ca.pem"),
        "-H",
        &auth,
        &url,
    ]);
    assert_eq!(code, 200, "{body}");
    let (code, _) = curl(&["--cacert", &pki.path("server-ca.pem"), "-H", &auth, &url]);
    assert_eq!(code, 0, "the old CA no longer verifies it");
    assert!(
        !weft.log_text().contains("needs a restart"),
        "{}",
        weft.log_text()
    );
}

#[test]
fn the_admin_api_caps_its_connections_and_answers_to_its_configured_names() {
    use std::io::Read;
    let admin = free_addr();
    let weft = with_admin(
        admin,
        "max_connections = 2\nhosts = [\"weft.example.org\"]\n",
    );
    let t = weft.api(admin).token;
    // Two idle connections hold both slots; a third is closed unanswered.
    let idle: Vec<std::net::TcpStream> = (0..2)
        .map(|_| std::net::TcpStream::connect(admin).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut third = std::net::TcpStream::connect(admin).unwrap();
    third
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(third.read(&mut buf).unwrap_or(0), 0, "closed");
    assert!(weft.wait_for_log("maximum of open connections", Duration::from_secs(5)));
    drop(idle);
    std::thread::sleep(Duration::from_millis(200));
    // A name given in admin.hosts is answered; others are not.
    let auth = format!("Authorization: Bearer {t}");
    let url = format!("http://{admin}/status");
    let host = |h: &str| {
        curl(&[
            "-H",
            &auth,
            "-H",
            &format!("Host: {h}:{}", admin.port()),
            &url,
        ])
        .0
    };
    assert_eq!(host("weft.example.org"), 200);
    assert_eq!(host("other.example.org"), 421);
}
