//! The web console of a real `weft run`, driven with curl as a browser
//! would (a cookie jar, forms): the login and its cookie, the pages and
//! what each role sees, the CSRF token every change needs, the checks
//! against other origins, a revoked token ending its session, and the
//! actions (reprocess, bulk with a confirmed count) on record.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::fhir_server::free_addr;
use crate::common::run::{Weft, a01, adt_config};
use crate::common::weft_cli;

/// A browser: curl with its own cookie jar.
struct Browser {
    base: String,
    jar: PathBuf,
}

/// What came back: status, headers, body.
struct Page {
    status: u16,
    headers: String,
    body: String,
}

impl Browser {
    fn new(dir: &Path, name: &str, admin: std::net::SocketAddr) -> Browser {
        Browser {
            base: format!("http://{admin}"),
            jar: dir.join(format!("{name}.cookies")),
        }
    }

    fn request(&self, method: &str, path: &str, form: &[(&str, &str)], extra: &[&str]) -> Page {
        let jar = self.jar.display().to_string();
        let mut args: Vec<String> = vec![
            "-s".into(),
            "-D".into(),
            "-".into(),
            "-c".into(),
            jar.clone(),
            "-b".into(),
            jar,
            "-X".into(),
            method.into(),
        ];
        for (k, v) in form {
            args.push("--data-urlencode".into());
            args.push(format!("{k}={v}"));
        }
        for e in extra {
            args.push((*e).into());
        }
        args.push(format!("{}{path}", self.base));
        let out = std::process::Command::new("curl")
            .args(&args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (headers, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = headers
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Page {
            status,
            headers: headers.to_ascii_lowercase(),
            body: body.to_string(),
        }
    }

    fn get(&self, path: &str) -> Page {
        self.request("GET", path, &[], &[])
    }

    fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        self.request("POST", path, form, &[])
    }

    fn login(&self, token: &str) -> Page {
        self.post("/console/login", &[("token", token)])
    }
}

/// The CSRF token in a page's forms.
fn csrf(page: &Page) -> String {
    let at = page
        .body
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token");
    page.body[at + 19..at + 19 + 64].to_string()
}

/// The message id linked from the results row holding `control`.
fn message_link(page: &Page, control: &str) -> String {
    let row = page
        .body
        .split("<tr")
        .find(|r| r.contains(control))
        .unwrap_or_else(|| panic!("no row for {control}: {}", page.body));
    let at = row.find("/console/messages/").unwrap();
    row[at + 18..].split('"').next().unwrap().to_string()
}

#[test]
fn the_console_logs_in_shows_each_role_its_share_and_acts_only_with_its_csrf_token() {
    let admin = free_addr();
    let weft = Weft::start(|d| {
        adt_config(
            d,
            "after-delivery",
            &format!("[admin]\nlisten = \"{admin}\"\n"),
        )
    });
    let dir = weft.dir().to_path_buf();
    let config = weft.config_path().display().to_string();
    let operate = weft.api(admin).token;
    let reader_token = weft.add_token(admin, "viewer", "read").token;
    let mut c = weft.client();
    assert_eq!(c.exchange(&a01("CON-1", "MRN-7731")).code, "AA");
    let quirk = String::from_utf8(a01("CON-2", "MRN-7732"))
        .unwrap()
        .replace("19800101", "19801399");
    assert_eq!(c.exchange(quirk.as_bytes()).code, "AR");

    // Not logged in: to the login page. A wrong token: 401.
    let b = Browser::new(&dir, "operator", admin);
    let p = b.get("/console");
    assert_eq!(p.status, 303);
    assert!(
        p.headers.contains("location: /console/login"),
        "{}",
        p.headers
    );
    assert_eq!(b.login("weft_nope").status, 401);
    // A form past the console's cap (64 KiB) is refused unread.
    assert_eq!(b.login(&"x".repeat(100 * 1024)).status, 413);

    // Logged in: a session cookie the page's scripts cannot read, sent
    // to no other site, only over a secure context.
    let p = b.login(&operate);
    assert_eq!(p.status, 303, "{}", p.body);
    let cookie = p
        .headers
        .lines()
        .find(|l| l.starts_with("set-cookie: weft_session="))
        .unwrap_or_else(|| panic!("{}", p.headers));
    for attribute in ["httponly", "secure", "samesite=strict", "path=/console"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }

    // The overview: every part of the config, live counts, locked down.
    let p = b.get("/console");
    assert_eq!(p.status, 200);
    for part in [
        "Destinations",
        "files",
        "Sources",
        "Routes",
        "adt",
        "site-normalize",
        "adt-to-fhir",
    ] {
        assert!(p.body.contains(part), "{part}: {}", p.body);
    }
    assert!(
        p.headers
            .contains("content-security-policy: default-src 'none'"),
        "{}",
        p.headers
    );
    assert!(p.headers.contains("x-frame-options: deny"));
    assert!(p.headers.contains("cache-control: no-store"));
    assert_eq!(b.get("/console/style.css").status, 200);

    // Search by patient (PID-3, as the sender wrote it; site-normalize's
    // prefix comes after intake).
    let p = b.get("/console/messages?patient=MRN-7731");
    assert_eq!(p.status, 200);
    assert!(
        p.body.contains("CON-1") && !p.body.contains("CON-2"),
        "{}",
        p.body
    );
    let good = message_link(&p, "CON-1");

    // One message, its content on request: PID-5 by name, escapes decoded.
    let p = b.get(&format!("/console/messages/{good}"));
    assert_eq!(p.status, 200);
    assert!(!p.body.contains("Test"), "no patient data until asked for");
    let p = b.get(&format!("/console/messages/{good}?body=1"));
    assert_eq!(p.status, 200);
    assert!(
        p.body.contains("PID-5") && p.body.contains("Patient Name"),
        "{}",
        p.body
    );
    assert!(p.body.contains("Date/Time of Birth"));
    assert!(
        p.body.contains("<summary>Patient</summary>"),
        "the FHIR output folded by resource: {}",
        p.body
    );

    // A change without the session's CSRF token is refused; with it, done.
    let p = b.get("/console/messages?status=rejected");
    let rejected = message_link(&p, "CON-2");
    let token = csrf(&p);
    let act = format!("/console/messages/{rejected}/reprocess");
    assert_eq!(b.post(&act, &[]).status, 403);
    assert_eq!(b.post(&act, &[("csrf", &"0".repeat(64))]).status, 403);
    let p = b.post(&act, &[("csrf", &token)]);
    assert_eq!(p.status, 303, "{}", p.body);
    // (Still rejected: nothing was fixed. It ran a second time.)
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let p = b.get(&format!("/console/messages/{rejected}"));
        if p.body.contains("Earlier runs") && p.body.contains("(run 2)") {
            break;
        }
        assert!(Instant::now() < deadline, "{}", p.body);
        std::thread::sleep(Duration::from_millis(100));
    }

    // Bulk: the count first, then the action with that count.
    let p = b.post(
        "/console/bulk",
        &[
            ("csrf", &token),
            ("action", "resend"),
            ("control_id", "CON-1"),
        ],
    );
    assert_eq!(p.status, 200);
    assert!(p.body.contains("1 messages</strong> match"), "{}", p.body);
    let p = b.post(
        "/console/bulk",
        &[
            ("csrf", &token),
            ("action", "resend"),
            ("control_id", "CON-1"),
            ("expect", "1"),
        ],
    );
    assert_eq!(p.status, 200);
    assert!(p.body.contains("1 deliveries queued again"), "{}", p.body);
    let p = b.post("/console/bulk", &[("csrf", &token), ("action", "resend")]);
    assert_eq!(p.status, 400, "a bulk action never takes every message");

    // Another origin is refused before anything else.
    let p = b.request(
        "POST",
        &act,
        &[("csrf", &token)],
        &["-H", "Origin: http://evil.example"],
    );
    assert_eq!(p.status, 403);
    let p = b.request(
        "GET",
        "/console",
        &[],
        &["-H", "Sec-Fetch-Site: cross-site"],
    );
    assert_eq!(p.status, 403);

    // A read token: no content, no search by patient, no actions.
    let r = Browser::new(&dir, "reader", admin);
    assert_eq!(r.login(&reader_token).status, 303);
    let p = r.get("/console/messages");
    assert_eq!(p.status, 200);
    assert!(
        !p.body.contains("name=\"patient\""),
        "no patient search field"
    );
    assert_eq!(r.get("/console/messages?patient=MRN-7731").status, 403);
    let p = r.get(&format!("/console/messages/{good}"));
    assert_eq!(p.status, 200);
    assert!(!p.body.contains("Reprocess through"), "no actions shown");
    assert_eq!(
        r.get(&format!("/console/messages/{good}?body=1")).status,
        403
    );
    let rt = csrf(&p);
    assert_eq!(r.post(&act, &[("csrf", &rt)]).status, 403);

    // Revoking the token ends its session at the next request.
    let (code, out) = weft_cli(&["admin", "token", "revoke", "viewer", "-c", &config]);
    assert_eq!(code, 0, "{out}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while r.get("/console").status != 401 {
        assert!(
            Instant::now() < deadline,
            "the revoked token's session goes on"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Logging out ends the session.
    let p = b.post("/console/logout", &[("csrf", &token)]);
    assert_eq!(p.status, 303);
    assert_eq!(b.get("/console").status, 303);

    // Everything done in the console is on record.
    let (_, trail) = weft_cli(&["audit", "list", "-c", &config]);
    for (action, result) in [
        ("console.login", "ok"),
        ("messages.search-patient", "ok"),
        ("message.body", "ok"),
        ("messages.reprocess", "queued 1"),
        ("messages.resend", "selected 1 by control_id=CON-1"),
        ("message.body", "refused"),
        ("messages.search-patient", "refused"),
    ] {
        assert!(
            trail
                .lines()
                .any(|l| l.contains("console") && l.contains(action) && l.contains(result)),
            "{action} {result}: {trail}"
        );
    }
}

#[test]
fn in_a_real_browser_an_analyst_finds_a_patient_resends_a_dead_delivery_and_reprocesses_a_reject() {
    use crate::common::browser::Chrome;
    use crate::common::fhir_server::FhirServer;

    // The FHIR server refuses the first delivery for good (400), then
    // takes everything: a dead delivery to resend once it recovers.
    let server = FhirServer::start(&[400]);
    let admin = free_addr();
    let weft = Weft::start(|d| {
        adt_config(
            d,
            "after-commit",
            &format!(
                "[destinations.fhir]\nkind = \"http\"\nurl = \"http://{}/fhir\"\n\
                 [sources.in2]\nkind = \"mllp\"\nlisten = \"127.0.0.1:0\"\nroute = \"adt2\"\n\
                 [routes.adt2]\nplugins = [\"site-normalize\", \"adt-to-fhir\"]\ndestinations = [\"fhir\"]\n\
                 [admin]\nlisten = \"{admin}\"\n",
                server.addr
            ),
        )
    });
    let api = weft.api(admin);
    let reader = weft.add_token(admin, "night-viewer", "read").token;
    let mut c = weft.client();
    assert_eq!(c.exchange(&a01("WEB-1", "MRN-5501")).code, "AA");
    let quirk = String::from_utf8(a01("WEB-2", "MRN-5502"))
        .unwrap()
        .replace("19800101", "19801399");
    assert_eq!(c.exchange(quirk.as_bytes()).code, "AA");
    let mut c2 = crate::common::run::Client::connect(weft.addrs["in2"]);
    assert_eq!(c2.exchange(&a01("WEB-3", "MRN-5503")).code, "AA");
    let base = format!("http://{admin}");
    let shots = crate::common::repo().join("target/console-screenshots");
    let chrome = Chrome::start(&shots);

    // Log in: the session cookie is HttpOnly, Secure and SameSite=Strict.
    chrome.goto(&format!("{base}/console"));
    assert!(chrome.url().ends_with("/console/login"), "{}", chrome.url());
    chrome.screenshot("login");
    chrome.type_into("#token", &api.token);
    chrome.click("button[type=submit]");
    chrome.find("table");
    assert!(chrome.url().ends_with("/console"), "{}", chrome.url());
    let cookies = chrome.cookies();
    let session = cookies
        .iter()
        .find(|c| c["name"] == "weft_session")
        .unwrap_or_else(|| panic!("{cookies:?}"));
    assert_eq!(session["httpOnly"], true, "{session}");
    assert_eq!(session["secure"], true, "{session}");
    assert_eq!(session["sameSite"], "Strict", "{session}");
    assert_eq!(
        chrome.run("return document.cookie"),
        "",
        "the page's scripts cannot read the session"
    );

    // The overview: the dead delivery at fhir stands out, the rejected
    // message shows on its route.
    chrome.wait_for_text("dead deliveries");
    assert!(
        chrome.has("tr.bad"),
        "the destination with a dead delivery stands out"
    );
    chrome.screenshot("overview");
    // The page's weight and time to first paint, for the record (no goal
    // is asserted: figures belong to benchmarks).
    let figures = chrome.run(
        "const n = performance.getEntriesByType('navigation')[0]; \
         const p = performance.getEntriesByName('first-contentful-paint')[0]; \
         const r = performance.getEntriesByType('resource'); \
         return {html_bytes: n.decodedBodySize, css_bytes: r.reduce((a, x) => a + x.decodedBodySize, 0), \
                 first_contentful_paint_ms: p ? p.startTime : null, dom_complete_ms: n.domComplete};",
    );
    std::fs::write(shots.join("figures.json"), figures.to_string()).unwrap();
    println!("console overview: {figures}");

    // Search by the MRN the test sent, open the message, show its content:
    // PID-5 by name.
    chrome.goto(&format!("{base}/console/messages"));
    chrome.type_into("input[name=patient]", "MRN-5501");
    chrome.click("form.search button");
    chrome.find("#results");
    let results = chrome.text("#results");
    assert!(
        results.contains("WEB-1") && !results.contains("WEB-2"),
        "{results}"
    );
    chrome.screenshot("messages");
    chrome.click("#results a");
    chrome.click("#show-body");
    let fields = chrome.text("table.hl7");
    assert!(
        fields.contains("PID-5 Patient Name Test^Pat"),
        "PID-5 shown by name: {fields}"
    );
    assert!(
        fields.contains("PID-7 Date/Time of Birth 19800101"),
        "{fields}"
    );
    chrome.screenshot("message");

    // The dead delivery, resent once the FHIR server is back.
    chrome.goto(&format!("{base}/console/messages?control_id=WEB-3"));
    chrome.click("#results a");
    assert!(
        chrome.text("#deliveries").contains("dead"),
        "{}",
        chrome.text("#deliveries")
    );
    chrome.screenshot("dead-delivery");
    chrome.click("#resend");
    chrome.wait_for_text("Its deliveries are queued again.");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !chrome.text("#deliveries").contains("delivered") {
        assert!(Instant::now() < deadline, "{}", chrome.text("#deliveries"));
        std::thread::sleep(Duration::from_millis(200));
        chrome.goto(&chrome.url());
    }
    assert_eq!(server.accepted().len(), 1);

    // A change without the CSRF token is refused.
    chrome.goto(&format!("{base}/console/messages?control_id=WEB-2"));
    chrome.click("#results a");
    let page = chrome.url();
    assert!(chrome.text("#status").contains("rejected"));
    chrome.run("document.querySelectorAll('input[name=csrf]').forEach(e => e.remove())");
    chrome.click("#reprocess");
    chrome.wait_for_text("CSRF");
    assert!(
        chrome.text("h1").starts_with("403"),
        "{}",
        chrome.text("body")
    );

    // The fix, hot-reloaded; the rejected message reprocessed.
    crate::common::run::fix_birth_dates(&weft, &api);
    chrome.goto(page.split('?').next().unwrap());
    chrome.click("#reprocess");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !chrome.text("#status").contains("transformed") {
        assert!(Instant::now() < deadline, "{}", chrome.text("body"));
        std::thread::sleep(Duration::from_millis(200));
        chrome.goto(page.split('?').next().unwrap());
    }
    assert!(chrome.text("#status").contains("(run 2)"));
    assert!(chrome.text("body").contains("Earlier runs"));
    chrome.screenshot("reprocessed");

    // A read token: no patient data anywhere, no actions.
    chrome.click("header form button");
    chrome.type_into("#token", &reader);
    chrome.click("button[type=submit]");
    chrome.find("table");
    chrome.goto(&format!("{base}/console/messages"));
    assert!(!chrome.has("input[name=patient]"), "no search by patient");
    chrome.click("#results a");
    let text = chrome.text("body");
    assert!(
        !chrome.has("#show-body") && !chrome.has("#reprocess"),
        "{text}"
    );
    for name in ["Test", "Pat^", "MRN-55"] {
        assert!(
            !chrome.source().contains(name),
            "{name} shown to a read token"
        );
    }
    chrome.goto(&format!("{base}/console/messages?patient=MRN-5501"));
    assert!(chrome.text("h1").starts_with("403"));
}
