//! The config checker against right and wrong files.

use super::*;

#[test]
fn sources_destinations_and_rules() {
    let text = r#"
[sources.in]
kind = "mllp"
listen = "127.0.0.1:0"
ack = "after-transform"

[sources.bad]
kind = "mllp"
listen = "localhost"
ack = "sometimes"
route = "nope"

[sources.odd]
kind = "carrier-pigeon"

[destinations.files]
kind = "file"
dir = "out"
filename = "{date}/{message_id}.{colour}"

[routes.r]
plugins = []
destinations = ["files", "ghost"]
match = ["ADT^A0*"]
"#;
    let errs = parse(text, "w.toml", Path::new("/tmp")).unwrap_err().0;
    let lines: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    let want = [
        "w.toml:9:10: sources.bad.listen: \"localhost\" is not an address",
        "w.toml:10:7: sources.bad.ack: expected after-commit",
        "w.toml:11:9: sources.bad.route: no route named \"nope\"",
        "w.toml:14:8: sources.odd.kind: unknown source kind \"carrier-pigeon\" (expected mllp or http)",
        "w.toml:19:12: destinations.files.filename: unknown placeholder {colour}",
        "w.toml:23:26: routes.r.destinations: no destination named \"ghost\"",
    ];
    assert_eq!(lines.len(), want.len(), "{lines:#?}");
    for (line, want) in lines.iter().zip(want) {
        assert!(line.starts_with(want), "{line} does not start with {want}");
    }
}

#[test]
fn reports_every_error_with_line_and_key() {
    let text = r#"
[runtime]
cache_dri = "x"
journal_sync = "sometimes"
retain_max_mb = 0
[plugins.a]
path = "does-not-exist.wasm"
deadline_ms = 0
memory_mib = "lots"

[plugins.b]
deadline_ms = 10

[routes.r]
plugins = ["a", "missing"]

[sinks]
"#;
    let errs = parse(text, "weft.toml", Path::new("/nonexistent"))
        .unwrap_err()
        .0;
    let lines: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    let want = [
        "weft.toml:3:1: runtime.cache_dri: unknown key",
        "weft.toml:4:16: runtime.journal_sync: expected \"full\" (fsync every commit) or \"normal\"",
        "weft.toml:5:17: runtime.retain_max_mb: expected a whole number from 1 to",
        "weft.toml:7:8: plugins.a.path: file /nonexistent/does-not-exist.wasm does not exist",
        "weft.toml:8:15: plugins.a.deadline_ms: expected a whole number from 1 to 600000",
        "weft.toml:9:14: plugins.a.memory_mib: expected a whole number",
        "weft.toml:12:1: plugins.b.path: required key is missing",
        "weft.toml:15:17: routes.r.plugins: no plugin named \"missing\" is defined",
        "weft.toml:17:2: sinks: unknown section",
    ];
    assert_eq!(lines.len(), want.len(), "{lines:#?}");
    for (line, want) in lines.iter().zip(want) {
        assert!(line.starts_with(want), "{line} does not start with {want}");
    }
}

#[test]
fn plugin_samples_are_read_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.wasm"), b"").unwrap();
    std::fs::write(dir.path().join("a01.hl7"), b"MSH|").unwrap();
    let text = r#"
[plugins.p]
path = "p.wasm"
[[plugins.p.samples]]
input = "a01.hl7"
contains = ["Patient"]
[[plugins.p.samples]]
input = "a01.hl7"
expect = "rejected"
"#;
    let c = parse(text, "weft.toml", dir.path()).unwrap();
    let samples = &c.plugins["p"].samples;
    assert_eq!(samples.len(), 2);
    assert_eq!(samples[0].expect, Expect::Transformed);
    assert_eq!(samples[0].contains, vec!["Patient".to_string()]);
    assert_eq!(samples[0].input, dir.path().join("a01.hl7"));
    assert_eq!(samples[1].expect, Expect::Rejected);

    let bad = r#"
[plugins.p]
path = "p.wasm"
samples = [{ input = "gone.hl7", expect = "maybe", colour = 1 }, { expect = "filtered" }]
"#;
    let errs: Vec<String> = parse(bad, "weft.toml", dir.path())
        .unwrap_err()
        .0
        .iter()
        .map(|e| e.to_string())
        .collect();
    let want = [
        "weft.toml:4:22: plugins.p.samples[0].input: file ",
        "weft.toml:4:43: plugins.p.samples[0].expect: expected \"transformed\"",
        "weft.toml:4:52: plugins.p.samples[0].colour: unknown key",
        "weft.toml:4:66: plugins.p.samples[1].input: required key is missing",
    ];
    assert_eq!(errs.len(), want.len(), "{errs:#?}");
    for (line, want) in errs.iter().zip(want) {
        assert!(line.starts_with(want), "{line} does not start with {want}");
    }
}

#[test]
fn a_token_sent_in_clear_to_another_host_is_warned_about() {
    let text = |url: &str| {
        format!(
            "[destinations.d]\nkind = \"http\"\nurl = \"{url}\"\n[destinations.d.headers]\nAuthorization = \"Bearer x\"\n"
        )
    };
    let warned = |url: &str| {
        parse(&text(url), "weft.toml", Path::new("."))
            .unwrap()
            .warnings()
    };
    assert_eq!(warned("http://fhir.example.org/fhir").len(), 1);
    assert!(warned("https://fhir.example.org/fhir").is_empty());
    assert!(warned("http://127.0.0.1:8090/fhir").is_empty());
    assert!(warned("http://localhost:8090/fhir").is_empty());
}

#[test]
fn a_file_past_the_cap_is_refused_not_read_whole() {
    // A regular file one byte over, and one that never ends.
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("weft.toml");
    let mut text = EMBEDDED_DEFAULT.to_string();
    text.push_str(&"#".repeat(MAX_CONFIG_FILE as usize + 1 - text.len()));
    std::fs::write(&big, text).unwrap();
    for path in [big.as_path(), Path::new("/dev/zero")] {
        let e = load(path).unwrap_err().to_string();
        assert!(e.contains("larger than a configuration can be"), "{e}");
    }
}

#[test]
fn syntax_error_has_a_line() {
    let errs = parse("[plugins\n", "w.toml", Path::new(".")).unwrap_err().0;
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].location.line, 1);
}

#[test]
fn embedded_default_parses() {
    // Plugin files may not be built yet; only syntax and keys matter here.
    let errs = match parse(EMBEDDED_DEFAULT, "weft.toml", Path::new("..")) {
        Ok(_) => Vec::new(),
        Err(e) => e.0,
    };
    for e in &errs {
        assert!(e.message.contains("does not exist"), "{e}");
    }
}

/// A document with `key = true` where each table of `keys` would read it,
/// and the dotted path of that key; `true` is the wrong type for every key.
fn wrong_types() -> Vec<(String, String)> {
    use super::keys::{Key, accepted};
    let mut docs = Vec::new();
    let mut each =
        |keys: &[Key], kind: &str, doc: &dyn Fn(&str) -> String, path: &dyn Fn(&str) -> String| {
            for k in accepted(keys, kind) {
                if k != "kind" {
                    docs.push((doc(k), path(k)));
                }
            }
        };
    each(
        super::runtime::KEYS,
        "",
        &|k| format!("[runtime]\n{k} = true\n"),
        &|k| format!("runtime.{k}"),
    );
    each(
        super::admin::KEYS,
        "",
        &|k| format!("[admin]\n{k} = true\n"),
        &|k| format!("admin.{k}"),
    );
    each(
        super::journal::KEYS,
        "",
        &|k| format!("[journal]\n{k} = true\n"),
        &|k| format!("journal.{k}"),
    );
    each(
        super::trust::KEYS,
        "",
        // (true is right for require_signed: a number is wrong for both)
        &|k| format!("[trust]\n{k} = 1\n"),
        &|k| format!("trust.{k}"),
    );
    each(
        super::routes::KEYS,
        "",
        &|k| format!("[routes.r]\n{k} = true\n"),
        &|k| format!("routes.r.{k}"),
    );
    each(
        super::plugins::KEYS,
        "",
        &|k| format!("[plugins.p]\n{k} = true\n"),
        &|k| format!("plugins.p.{k}"),
    );
    each(
        super::plugins::SAMPLE_KEYS,
        "",
        &|k| format!("[plugins.p]\npath = \"p.wasm\"\nsamples = [{{ {k} = true }}]\n"),
        &|k| format!("plugins.p.samples[0].{k}"),
    );
    for kind in ["mllp", "http"] {
        each(
            super::sources::KEYS,
            kind,
            &|k| format!("[sources.s]\nkind = \"{kind}\"\n{k} = true\n"),
            &|k| format!("sources.s.{k}"),
        );
    }
    for kind in ["file", "http", "mllp"] {
        each(
            super::destinations::KEYS,
            kind,
            &|k| format!("[destinations.d]\nkind = \"{kind}\"\n{k} = true\n"),
            &|k| format!("destinations.d.{k}"),
        );
    }
    for kind in ["silence", "dead", "pending", "failing", "rejects"] {
        each(
            super::alerts::KEYS,
            kind,
            &|k| format!("[alerts.a]\nkind = \"{kind}\"\n{k} = true\n"),
            &|k| format!("alerts.a.{k}"),
        );
    }
    each(
        super::tls::SERVER_KEYS,
        "",
        &|k| {
            format!(
                "[sources.s]\nkind = \"mllp\"\nlisten = \"127.0.0.1:0\"\ntls = {{ {k} = true }}\n"
            )
        },
        &|k| format!("sources.s.tls.{k}"),
    );
    each(
        super::tls::CLIENT_KEYS,
        "",
        &|k| {
            format!(
                "[destinations.d]\nkind = \"mllp\"\naddress = \"h:1\"\ntls = {{ {k} = true }}\n"
            )
        },
        &|k| format!("destinations.d.tls.{k}"),
    );
    docs
}

#[test]
fn every_key_in_a_table_is_read() {
    // A key the table admits but no arm reads would pass silently: given a
    // value of the wrong type, every key must be refused for its type,
    // never as unknown.
    let docs = wrong_types();
    assert!(docs.len() > 60, "{} keys", docs.len());
    for (doc, path) in docs {
        let errs = parse(&doc, "w.toml", Path::new("/nonexistent"))
            .unwrap_err()
            .0;
        let at_key: Vec<&ConfigError> = errs.iter().filter(|e| e.key == path).collect();
        assert!(
            !at_key.is_empty() && at_key.iter().all(|e| !e.message.starts_with("unknown key")),
            "{path}: {errs:#?}"
        );
    }
}

#[test]
fn an_unknown_key_is_answered_with_what_its_kind_takes() {
    let text = "[sources.s]\nkind = \"http\"\nlisten = \"127.0.0.1:0\"\nidle_timeout_s = 5\n\n\
                [destinations.d]\nkind = \"file\"\ndir = \"out\"\nurl = \"http://x\"\n";
    let errs = parse(text, "w.toml", Path::new("/tmp")).unwrap_err().0;
    let lines: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        lines,
        [
            "w.toml:4:1: sources.s.idle_timeout_s: unknown key (expected kind, listen, ack, route, \
             dedup_window_s, path, max_body_kib, body_timeout_s, max_connections, tls)",
            "w.toml:9:1: destinations.d.url: unknown key (expected kind, dir, filename, file_mode, \
             dir_mode, batch, concurrency, max_attempts, max_age_h, ordering, key)",
        ]
    );
}

#[test]
fn alerts_are_read_and_their_references_checked() {
    let text = "[sources.in]\nkind = \"mllp\"\nlisten = \"127.0.0.1:0\"\n\
                [destinations.pager]\nkind = \"http\"\nurl = \"http://127.0.0.1:9/hook\"\n\
                [routes.adt]\ndestinations = [\"pager\"]\n\
                [alerts.quiet]\nkind = \"silence\"\nsource = \"in\"\nfor_s = 900\nnotify = [\"pager\"]\n\
                [alerts.backlog]\nkind = \"pending\"\nover = 100\nfor_s = 300\n\
                [alerts.bad]\nkind = \"rejects\"\nroute = \"adt\"\nover = 10\n";
    let c = parse(text, "w.toml", Path::new("/tmp")).unwrap();
    assert_eq!(c.alerts.len(), 3);
    let quiet = &c.alerts["quiet"];
    assert_eq!(
        quiet.kind,
        AlertKind::Silence {
            source: "in".into()
        }
    );
    assert_eq!(quiet.for_, std::time::Duration::from_secs(900));
    assert_eq!(quiet.notify, ["pager"]);
    assert_eq!(
        c.alerts["backlog"].kind,
        AlertKind::Pending {
            destination: None,
            over: 100
        }
    );
    assert_eq!(
        c.alerts["bad"].kind,
        AlertKind::Rejects {
            route: Some("adt".into()),
            over: 10,
            within: std::time::Duration::from_secs(300)
        }
    );

    let bad = "[alerts.a]\nkind = \"silence\"\nsource = \"nope\"\nfor_s = 60\nnotify = [\"gone\"]\n\
               [alerts.b]\nkind = \"failing\"\n\
               [alerts.c]\nkind = \"dead\"\nover = 3\n\
               [alerts.d]\nkind = \"loud\"\n";
    let errs = parse(bad, "w.toml", Path::new("/tmp")).unwrap_err().0;
    let lines: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        lines,
        [
            "w.toml:3:10: alerts.a.source: no source named \"nope\" is defined",
            "w.toml:5:11: alerts.a.notify: no destination named \"gone\" is defined",
            "w.toml:6:1: alerts.b.for_s: required key is missing",
            "w.toml:10:1: alerts.c.over: unknown key (expected kind, destination, notify)",
            "w.toml:12:8: alerts.d.kind: unknown alert kind \"loud\" (expected one of: silence, \
             dead, pending, failing, rejects)",
        ]
    );
}

#[test]
fn the_readme_shows_every_key() {
    // The README's configuration reference is read by operators: a key
    // missing from it is a key nobody finds.
    let readme = include_str!("../../../README.md");
    let start = readme
        .find("## Configuration")
        .expect("a Configuration section");
    let end = readme[start..]
        .find("\n## ")
        .map_or(readme.len(), |i| start + 1 + i);
    let section = &readme[start..end];
    let (docs, _): (Vec<String>, Vec<String>) = wrong_types().into_iter().unzip();
    let mut missing = Vec::new();
    for doc in docs {
        let key = doc
            .rsplit_once(" = ")
            .map(|(before, _)| before.rsplit(['\n', '{', ' ']).next().unwrap_or(before))
            .unwrap_or_default()
            .to_string();
        let shown = section.contains(&format!("{key} =")) || section.contains(&format!(".{key}]"));
        if !shown && !missing.contains(&key) {
            missing.push(key);
        }
    }
    assert!(
        missing.is_empty(),
        "keys the README's configuration section does not show: {missing:?}"
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]

    /// The config loader on hostile text: the shipped configuration with
    /// a few bytes inserted, deleted or replaced anywhere (keys, values,
    /// brackets, quotes, UTF-8) is read or refused with errors that name
    /// the file, never a panic. (The fuzz target `config` explores from
    /// any text; this keeps close to a real file on every test run.)
    #[test]
    fn any_edit_of_the_shipped_config_is_an_answer_not_a_panic(
        edits in proptest::collection::vec(
            (proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>(), 0u8..3),
            1..8,
        )
    ) {
        let mut bytes = EMBEDDED_DEFAULT.as_bytes().to_vec();
        for (at, byte, op) in edits {
            let i = at % (bytes.len() + 1);
            match op {
                0 => bytes.insert(i, byte),
                1 if i < bytes.len() => {
                    bytes.remove(i);
                }
                _ if i < bytes.len() => bytes[i] = byte,
                _ => bytes.push(byte),
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        if let Err(errors) = parse(&text, "weft.toml", Path::new("/nonexistent")) {
            for e in errors.0 {
                proptest::prop_assert!(e.to_string().starts_with("weft.toml"), "{e}");
            }
        }
    }
}

#[test]
fn a_candidate_is_a_plugin_of_its_own_with_the_same_settings() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["live.wasm", "new.wasm"] {
        std::fs::write(dir.path().join(f), b"\0asm").unwrap();
    }
    let text = r#"
[plugins.p]
path = "live.wasm"
candidate = "new.wasm"
deadline_ms = 40
[plugins.p.config]
k = "v"
[[plugins.p.samples]]
input = "live.wasm"

[plugins.q]
path = "live.wasm"
candidate = "new.wasm"
candidate_share = 0.05
"#;
    let c = parse(text, "w.toml", dir.path()).unwrap();
    let p = &c.plugins["p"];
    assert_eq!(p.candidate_share, DEFAULT_CANDIDATE_SHARE);
    let candidate = &c.plugins["p@candidate"];
    assert_eq!(candidate.path, dir.path().join("new.wasm"));
    assert_eq!(candidate.candidate_of.as_deref(), Some("p"));
    assert_eq!(candidate.config["k"], "v");
    assert_eq!(candidate.limits.deadline, p.limits.deadline);
    assert!(candidate.samples.is_empty() && candidate.candidate.is_none());
    assert_eq!(c.plugins["q"].candidate_share, 50);

    for (share, ok) in [
        ("0", false),
        ("1.5", false),
        ("\"half\"", false),
        ("1", true),
    ] {
        let text = format!(
            "[plugins.p]\npath = \"live.wasm\"\ncandidate = \"new.wasm\"\ncandidate_share = {share}\n"
        );
        let r = parse(&text, "w.toml", dir.path());
        assert_eq!(r.is_ok(), ok, "{share}");
        if let Err(e) = r {
            assert!(e.to_string().contains("plugins.p.candidate_share"), "{e}");
        }
    }
    let missing = "[plugins.p]\npath = \"live.wasm\"\ncandidate = \"gone.wasm\"\n";
    let e = parse(missing, "w.toml", dir.path())
        .unwrap_err()
        .to_string();
    assert!(e.contains("plugins.p.candidate"), "{e}");
}

#[test]
fn the_journal_engine_is_chosen_and_checked_without_showing_a_password() {
    let ok = "[journal]\nengine = \"postgres\"\nurl = \"postgres://weft:s3cret@db:5432/weft\"\nnode = \"edge-a\"\nlease_s = 20\n";
    let c = parse(ok, "w.toml", Path::new("/tmp")).unwrap();
    let JournalConfig::Postgres(pg) = &c.journal else {
        panic!("{:?}", c.journal)
    };
    assert_eq!(
        (pg.node.as_str(), pg.lease),
        ("edge-a", std::time::Duration::from_secs(20))
    );
    assert!(!format!("{c:?}").contains("s3cret"));
    assert_eq!(pg.tls, None, "plain unless asked");
    let with_tls = ok.replace("lease_s = 20\n", "tls = { server_name = \"db.example\" }\n");
    let c = parse(&with_tls, "w.toml", Path::new("/tmp")).unwrap();
    let JournalConfig::Postgres(pg) = &c.journal else {
        panic!("{:?}", c.journal)
    };
    let tls = pg.tls.as_ref().expect("tls read");
    assert_eq!(tls.server_name.as_deref(), Some("db.example"));
    assert_eq!(tls.ca, None, "the system's CAs");
    let longest = ok.replace("edge-a", &"n".repeat(64));
    assert!(
        parse(&longest, "w.toml", Path::new("/tmp")).is_ok(),
        "64 characters is a name"
    );
    assert_eq!(
        parse("", "w.toml", Path::new("/tmp")).unwrap().journal,
        JournalConfig::Sqlite
    );
    let bad = [
        (
            "[journal]\nengine = \"postgres\"\nnode = \"a\"\n",
            "w.toml:2:10: journal.engine: engine = \"postgres\" needs url and node",
        ),
        (
            "[journal]\nengine = \"mysql\"\n",
            "w.toml:2:10: journal.engine: expected \"sqlite\"",
        ),
        (
            "[journal]\nurl = \"postgres://db/weft\"\n",
            "w.toml:1:2: journal.engine: url, node and tls are for engine = \"postgres\"",
        ),
        (
            "[journal]\nengine = \"postgres\"\nurl = \"postgres://u:s3cret@db/w?sslmode=require\"\nnode = \"a\"\n",
            "w.toml:2:10: journal.url: the URL's sslmode asks for TLS: set journal.tls",
        ),
        (
            "[journal]\nengine = \"postgres\"\nurl = \"postgres://db/w\"\nnode = \"a\"\ntls = { ca = \"/nowhere/ca.pem\" }\n",
            "w.toml:5:14: journal.tls.ca: file /nowhere/ca.pem does not exist",
        ),
        (
            "[journal]\nengine = \"postgres\"\nurl = \"postgres://db/w\"\nnode = \"a\"\ntls = { sni = \"db\" }\n",
            "w.toml:5:9: journal.tls.sni:",
        ),
        (
            "[journal]\nengine = \"postgres\"\nurl = \"mysql://u:s3cret@db\"\nnode = \"a\"\n",
            "w.toml:3:7: journal.url: expected a postgres://",
        ),
        (
            "[journal]\nengine = \"postgres\"\nurl = \"postgres://db/w\"\nnode = \"a b\"\n",
            "w.toml:4:8: journal.node: expected a name",
        ),
        (
            &format!(
                "[journal]\nengine = \"postgres\"\nurl = \"postgres://db/w\"\nnode = \"{}\"\n",
                "n".repeat(65)
            ),
            "w.toml:4:8: journal.node: expected a name",
        ),
        (
            "[journal]\nengine = \"postgres\"\nurl = \"postgres://db/w\"\nnode = \"a\"\nlease_s = 2\n",
            "w.toml:5:11: journal.lease_s:",
        ),
        (
            "[runtime]\nretain_max_mb = 100\n[journal]\nengine = \"postgres\"\nurl = \"postgres://db/w\"\nnode = \"a\"\n",
            "w.toml:3:2: runtime.retain_max_mb: a size cap is the SQLite journal's",
        ),
    ];
    for (text, want) in bad {
        let errs = parse(text, "w.toml", Path::new("/tmp")).unwrap_err().0;
        let all: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert!(all.iter().any(|e| e.starts_with(want)), "{all:?}");
        assert!(!all.iter().any(|e| e.contains("s3cret")), "{all:?}");
    }
}

#[test]
fn a_file_batch_outside_its_bounds_is_refused_with_its_place() {
    for bad in ["0", "1025", "-1"] {
        let text = format!("[destinations.d]\nkind = \"file\"\ndir = \"out\"\nbatch = {bad}\n");
        let errs = parse(&text, "w.toml", Path::new("/tmp")).unwrap_err().0;
        let lines: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            lines,
            ["w.toml:4:9: destinations.d.batch: expected a whole number from 1 to 1024"],
            "batch = {bad}"
        );
    }
    let ok = "[destinations.d]\nkind = \"file\"\ndir = \"out\"\nbatch = 1024\n";
    let config = parse(ok, "w.toml", Path::new("/tmp")).unwrap();
    match &config.destinations["d"].kind {
        DestinationKind::File(f) => {
            assert_eq!(f.batch, 1024);
            assert_eq!(f.filename, DEFAULT_FILENAME);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(config.destinations["d"].concurrency, 4);
}

#[test]
fn a_key_from_systemd_credentials_need_not_exist_beside_the_service() {
    // Only while the service runs is the credential there.
    let text = "[runtime]\nencryption_key = \"/run/credentials/weft.service/journal.key\"\n\
                previous_encryption_keys = [\"/run/credentials/weft.service/old.key\"]\n";
    let c = parse(text, "weft.toml", Path::new("/etc/weft")).unwrap();
    assert_eq!(
        c.runtime.encryption_key.as_deref(),
        Some(Path::new("/run/credentials/weft.service/journal.key"))
    );
    // Any other missing key file is an error naming it.
    let e = parse(
        "[runtime]\nencryption_key = \"/etc/weft/missing.key\"\n",
        "weft.toml",
        Path::new("/etc/weft"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("runtime.encryption_key") && e.contains("missing.key does not exist"),
        "{e}"
    );
    // `..` does not leave the credentials directory by name alone.
    assert!(!systemd_credential(Path::new(
        "/run/credentials/../../etc/weft/k.key"
    )));
    assert!(!systemd_credential(Path::new(
        "run/credentials/weft.service/k.key"
    )));
    assert!(systemd_credential(Path::new(
        "/run/credentials/weft.service/k.key"
    )));
}
