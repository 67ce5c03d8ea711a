//! Patient data encrypted at rest (`[runtime] encryption_key`): the real
//! `weft` with a key made by `weft key generate` takes the corpus's ADT
//! messages, and no patient name or identifier of them is in the journal's
//! files (the database and its write-ahead log), while the same run
//! without a key leaves them there; a wrong key is refused at start naming
//! the key file; a command without the key says the body is encrypted;
//! `weft key rotate` under MLLP load seals everything again with the new
//! key and loses nothing.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::fhir_server::free_addr;
use crate::common::run::{
    Client, Weft, a01, adt_config, relay_config, run_refused, run_refused_env,
};
use crate::common::{corpus_files, weft_cli, weft_cli_env};

/// `weft key generate PATH`.
fn generate(path: &Path) {
    let (code, out) = weft_cli(&["key", "generate", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
}

fn key_line(key: &Path) -> String {
    format!("[runtime]\nencryption_key = \"{}\"\n", key.display())
}

/// The corpus's ADT messages, each with the patient's family name and
/// first identifier (PID-5.1, PID-3.1) where they are 5 bytes or more (a
/// shorter one could turn up in ciphertext by chance).
fn adt_corpus() -> Vec<(Vec<u8>, Vec<String>)> {
    corpus_files("hl7v2/fhir-converter")
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("ADT"))
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            let text = String::from_utf8_lossy(&bytes).replace('\n', "\r");
            // A value also in MSH (a control id) is metadata, kept as it is.
            let msh = text.split('\r').next().unwrap_or("").to_string();
            let mut secrets = Vec::new();
            for seg in text.split('\r').filter(|s| s.starts_with("PID|")) {
                let f: Vec<&str> = seg.split('|').collect();
                for field in [f.get(3), f.get(5)].into_iter().flatten() {
                    let first = field.split('~').next().unwrap_or("");
                    let value = first.split('^').next().unwrap_or("");
                    if value.len() >= 5 && !msh.contains(value) {
                        secrets.push(value.to_string());
                    }
                }
            }
            (text.into_bytes(), secrets)
        })
        .filter(|(_, s)| !s.is_empty())
        .collect()
}

/// Where `value` is in `bytes` as itself: not inside a run of 32 hex
/// digits or more, which is a digest the runtime wrote (the audit chain's
/// first `prev` is 64 zeros, and a hash after it may start with a 1: an
/// MRN `0000000001` is "in" it).
fn occurrences(bytes: &[u8], value: &str) -> Vec<usize> {
    let hex = |b: &&u8| b.is_ascii_hexdigit();
    bytes
        .windows(value.len())
        .enumerate()
        .filter(|(_, w)| *w == value.as_bytes())
        .map(|(at, _)| at)
        .filter(|&at| {
            let before = bytes[..at].iter().rev().take_while(hex).count();
            let inside = bytes[at..].iter().take_while(hex).count();
            before + inside < 32
        })
        .collect()
}

/// The values of `secrets` found in the journal's files of `data`.
fn on_disk(data: &Path, secrets: &[String]) -> Vec<String> {
    let files: Vec<Vec<u8>> = ["journal.db", "journal.db-wal"]
        .iter()
        .filter_map(|f| std::fs::read(data.join(f)).ok())
        .collect();
    assert!(!files.is_empty(), "no journal in {}", data.display());
    secrets
        .iter()
        .filter(|s| files.iter().any(|b| !occurrences(b, s).is_empty()))
        .cloned()
        .collect()
}

/// Where each of `found` is in the journal of `data`: the live rows'
/// table and column, or, in none, freed pages (for a failure's message).
fn where_found(data: &Path, found: &[String]) -> String {
    let c = rusqlite::Connection::open(data.join("journal.db")).unwrap();
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut out = Vec::new();
    for value in found {
        let mut places = Vec::new();
        for t in &tables {
            let columns: Vec<String> = c
                .prepare(&format!("SELECT name FROM pragma_table_info('{t}')"))
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            for col in columns {
                let n: i64 = c
                    .query_row(
                        &format!("SELECT COUNT(*) FROM \"{t}\" WHERE instr(CAST(\"{col}\" AS BLOB), ?1) > 0"),
                        [value.as_bytes()],
                        |r| r.get(0),
                    )
                    .unwrap_or(0);
                if n > 0 {
                    places.push(format!("{t}.{col} ({n} rows)"));
                }
            }
        }
        if places.is_empty() {
            // The bytes around it say which kind of record held it.
            let file = std::fs::read(data.join("journal.db")).unwrap_or_default();
            let at = occurrences(&file, value).first().copied().unwrap_or(0);
            let around: String = file[at.saturating_sub(120)..(at + 120).min(file.len())]
                .iter()
                .map(|&b| if b.is_ascii_graphic() { b as char } else { '.' })
                .collect();
            places.push(format!(
                "no live row: freed space at byte {at} (page {}), amid `{around}`",
                at / 4096 + 1
            ));
        }
        out.push(format!("{value}: {}", places.join(", ")));
    }
    out.join("; ")
}

/// Sends every corpus message to `weft`; the control ids answered.
fn send_corpus(weft: &Weft, corpus: &[(Vec<u8>, Vec<String>)]) -> usize {
    let mut c = weft.client();
    corpus
        .iter()
        .filter(|(m, _)| !c.exchange(m).code.is_empty())
        .count()
}

#[test]
fn with_a_key_no_patient_of_the_corpus_is_in_the_journal_files() {
    let corpus = adt_corpus();
    assert!(
        corpus.len() >= 5,
        "ADT messages with names: {}",
        corpus.len()
    );
    let secrets: Vec<String> = corpus.iter().flat_map(|(_, s)| s.clone()).collect();

    // Without a key: the names are there (the check can fail).
    let mut plain = Weft::start(|d| adt_config(d, "after-commit", ""));
    assert_eq!(send_corpus(&plain, &corpus), corpus.len());
    let found = on_disk(&plain.dir().join("data"), &secrets);
    assert!(!found.is_empty(), "without a key the journal holds them");
    assert_eq!(plain.stop(), 0);

    // With a key: none, in the database or its write-ahead log, while
    // running and once stopped.
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("journal.key");
    generate(&key);
    let mut weft = Weft::start(|d| adt_config(d, "after-commit", &key_line(&key)));
    assert_eq!(send_corpus(&weft, &corpus), corpus.len());
    let data = weft.dir().join("data");
    let found = on_disk(&data, &secrets);
    assert!(found.is_empty(), "while running: {found:?}");
    let config = weft.config_path().display().to_string();

    // With the key, an operator reads the body and finds the patient.
    let (code, list) = weft_cli(&["messages", "list", "-c", &config]);
    assert_eq!(code, 0, "{list}");
    let id = &first_id(&list);
    let (code, shown) = weft_cli(&["messages", "show", id, "--body", "-c", &config]);
    assert_eq!(code, 0, "{shown}");
    assert!(
        secrets.iter().any(|s| shown.contains(s.as_str())),
        "the body opens with the key: {shown}"
    );
    let mrn = corpus[0].1[0].clone();
    let (code, by_patient) = weft_cli(&["messages", "list", "--patient", &mrn, "-c", &config]);
    assert_eq!(code, 0, "{by_patient}");
    assert!(
        by_patient.lines().count() >= 2,
        "search by patient: {by_patient}"
    );
    assert_eq!(weft.stop(), 0);
    let found = on_disk(&data, &secrets);
    assert!(
        found.is_empty(),
        "after stop: {}",
        where_found(&data, &found)
    );

    // Without the key a command lists, and says the body is encrypted.
    let dir = weft.dir().to_path_buf();
    let keyless = dir.join("keyless.toml");
    std::fs::write(
        &keyless,
        std::fs::read_to_string(weft.config_path())
            .unwrap()
            .replace(
                &key_line(&key),
                &format!("[runtime]\ndata_dir = \"{}\"\n", data.display()),
            ),
    )
    .unwrap();
    let keyless = keyless.display().to_string();
    let (code, list) = weft_cli(&["messages", "list", "-c", &keyless]);
    assert_eq!(code, 0, "{list}");
    let (code, out) = weft_cli(&["messages", "show", id, "--body", "-c", &keyless]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("the body is encrypted"), "{out}");
    assert!(secrets.iter().all(|s| !out.contains(s.as_str())));

    // `weft run` without it, or with another key, is refused naming it.
    let (code, out) = run_refused(Path::new(&keyless));
    assert_ne!(code, 0);
    assert!(
        out.contains("encrypted with key") && out.contains("encryption_key"),
        "{out}"
    );
    let other = keys.path().join("other.key");
    generate(&other);
    let wrong = dir.join("wrong.toml");
    std::fs::write(
        &wrong,
        std::fs::read_to_string(weft.config_path())
            .unwrap()
            .replace(&key.display().to_string(), &other.display().to_string()),
    )
    .unwrap();
    let (code, out) = run_refused(&wrong);
    assert_ne!(code, 0);
    assert!(
        out.contains(&other.display().to_string()) && out.contains("wrong key"),
        "{out}"
    );

    // A key file others may read is refused too, naming it.
    let loose = keys.path().join("loose.key");
    generate(&loose);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(
        &wrong,
        std::fs::read_to_string(weft.config_path())
            .unwrap()
            .replace(&key.display().to_string(), &loose.display().to_string()),
    )
    .unwrap();
    let (_, out) = run_refused(&wrong);
    assert!(
        out.contains("loose.key") && out.contains("chmod 600"),
        "{out}"
    );
}

/// Every ADT message to the MLLP destination `lis`, unchanged, sealed
/// with `key`, with an admin API on `admin`.
fn rotating_config(lis: std::net::SocketAddr, key: &Path, admin: std::net::SocketAddr) -> String {
    format!(
        "{}\n[admin]\nlisten = \"{admin}\"\n",
        relay_config(lis, &key_line(key))
    )
}

/// The key id `weft key rotate` printed.
fn rotated_to(out: &str) -> String {
    out.split("seals with key ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no key id: {out}"))
        .to_string()
}

/// Waits (two minutes at most) for `weft`'s log to say every value is
/// sealed with key `id`.
fn wait_all_sealed(weft: &Weft, id: &str) {
    let done = |log: &str| {
        log.lines()
            .any(|l| l.contains("every value in the journal is sealed") && l.contains(id))
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done(&weft.log_text()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(done(&weft.log_text()), "{}", weft.log_text());
}

/// The id of the first message a `weft messages list` printed.
fn first_id(list: &str) -> String {
    list.lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no message listed: {list}"))
        .to_string()
}

#[test]
fn a_key_rotation_under_load_loses_nothing_and_the_old_key_can_go() {
    let receiver = Weft::receiver();
    let keys = tempfile::tempdir().unwrap();
    let (old, new) = (keys.path().join("old.key"), keys.path().join("new.key"));
    generate(&old);
    generate(&new);
    let admin = free_addr();
    let lis = receiver.addr;
    let mut weft = Weft::start(|_| rotating_config(lis, &old, admin));
    let config = weft.config_path().to_path_buf();

    // A sender runs throughout.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (acked, stop, addr) = (acked.clone(), stop.clone(), weft.addr);
        std::thread::spawn(move || {
            let mut c = Client::connect(addr);
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let id = format!("ROT-{i:05}");
                assert_eq!(c.exchange(&a01(&id, &format!("MRN{i:05}"))).code, "AA");
                acked.lock().unwrap().push(id);
                i += 1;
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < 500 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    // The endpoint's checks, tried from outside: a read token is refused,
    // a body without a path, a key file others may read, a file that is
    // not a key; none changes the key.
    let json = [("content-type", "application/json")];
    let reader = weft.add_token(admin, "reader", "read");
    let (code, _) = reader.call("POST", "/journal/key", &json, "{}");
    assert_eq!(code, 403);
    let operator = weft.api(admin);
    let (code, answer) = operator.call("POST", "/journal/key", &json, "{}");
    assert_eq!(code, 400, "{answer}");
    let loose = keys.path().join("loose.key");
    generate(&loose);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o640)).unwrap();
    let body = serde_json::json!({ "path": loose }).to_string();
    let (code, answer) = operator.call("POST", "/journal/key", &json, &body);
    assert_eq!(code, 400, "{answer}");
    assert!(answer.to_string().contains("chmod 600"), "{answer}");
    let body = serde_json::json!({ "path": config }).to_string();
    let (code, answer) = operator.call("POST", "/journal/key", &json, &body);
    assert_eq!(code, 400, "{answer}");

    let started = Instant::now();
    let (code, out) = weft_cli(&[
        "key",
        "rotate",
        new.to_str().unwrap(),
        "-c",
        config.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    let new_id = rotated_to(&out);
    assert!(out.contains("previous_encryption_keys"), "{out}");
    // The pass ends while the sender goes on.
    wait_all_sealed(&weft, &new_id);
    let took = started.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    let acked: Vec<String> = acked.lock().unwrap().clone();
    println!(
        "rotation under load: {} messages acknowledged, pass done in {:.0} ms",
        acked.len(),
        took.as_secs_f64() * 1000.0
    );
    assert_eq!(
        receiver.missing(&acked, Duration::from_secs(60)),
        Vec::<String>::new(),
        "every acknowledged message delivered"
    );
    assert_eq!(weft.stop(), 0);

    // Everything opens with the new key alone: the old one can go.
    let c = config.to_str().unwrap();
    let (code, out) = weft_cli(&["messages", "list", "-c", c]);
    assert_ne!(code, 0, "the config still names the old key: {out}");
    assert!(
        out.contains("wrong key") && out.contains("old.key"),
        "{out}"
    );
    std::fs::remove_file(&old).unwrap();
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace(&old.display().to_string(), &new.display().to_string());
    std::fs::write(&config, text).unwrap();
    // The rotation is on the audit trail.
    let (code, trail) = weft_cli(&["audit", "list", "-c", c]);
    assert_eq!(code, 0, "{trail}");
    assert!(trail.contains("journal.key-rotate"), "{trail}");
    let (code, list) = weft_cli(&["messages", "list", "--control-id", "ROT-00000", "-c", c]);
    assert_eq!(code, 0, "{list}");
    let oldest = &first_id(&list);
    let (code, shown) = weft_cli(&["messages", "show", oldest, "--body", "-c", c]);
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("PID|1||MRN"), "{shown}");
    let (code, _) = weft_cli(&["messages", "list", "--patient", "MRN00000", "-c", c]);
    assert_eq!(code, 0);
    // `weft doctor` says the journal is whole under the new key.
    let (_, doctor) = weft_cli(&["doctor", "--no-plugins", "-c", c]);
    assert!(
        doctor.lines().any(|l| l.contains("encryption")
            && l.contains("ok")
            && l.contains(&format!("every value sealed with key {new_id}"))),
        "{doctor}"
    );
}

/// Node `node` of the PostgreSQL journal at `url`, sealing with `key`
/// (and able to open what `previous` sealed), relaying to `lis`; `more`
/// TOML tables after the journal's.
fn pg_node(
    lis: std::net::SocketAddr,
    url: &str,
    node: &str,
    key: &Path,
    previous: Option<&Path>,
    more: &str,
) -> String {
    let previous = previous.map_or(String::new(), |p| {
        format!("previous_encryption_keys = [\"{}\"]\n", p.display())
    });
    relay_config(
        lis,
        &format!(
            "{}shutdown_grace_s = 1\n{previous}\
             [journal]\nengine = \"postgres\"\nurl = \"{url}\"\nnode = \"{node}\"\n{more}",
            key_line(key)
        ),
    )
}

/// Sends `n` synthetic messages `{prefix}-{i}` to `weft`; their control
/// ids, each acknowledged.
fn send_acked(weft: &Weft, prefix: &str, n: usize) -> Vec<String> {
    let mut c = weft.client();
    (0..n)
        .map(|i| {
            let id = format!("{prefix}-{i:03}");
            assert_eq!(
                c.exchange(&a01(&id, &format!("MRN{prefix}{i:03}"))).code,
                "AA"
            );
            id
        })
        .collect()
}

#[test]
fn two_nodes_on_postgres_rotate_the_key_one_at_a_time_and_lose_nothing() {
    let cluster = weft_test_postgres::Cluster::start(false).unwrap();
    let url = cluster.database().unwrap();
    let receiver = Weft::receiver();
    let keys = tempfile::tempdir().unwrap();
    let (old, new) = (keys.path().join("old.key"), keys.path().join("new.key"));
    generate(&old);
    generate(&new);
    let admin = free_addr();
    let lis = receiver.addr;
    let admin_table = format!("[admin]\nlisten = \"{admin}\"\n");
    let mut a = Weft::start(|_| pg_node(lis, &url, "edge-a", &old, None, &admin_table));
    let mut b = Weft::start(|_| pg_node(lis, &url, "edge-b", &old, None, ""));
    let mut acked = send_acked(&a, "A1", 40);
    acked.extend(send_acked(&b, "B1", 40));
    let config = a.config_path().to_str().unwrap().to_string();
    let rotate = || weft_cli(&["key", "rotate", new.to_str().unwrap(), "-c", &config]);

    // Refused while node b serves: it would go on sealing with the old key.
    let (code, out) = rotate();
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("other nodes") && out.contains("edge-b"),
        "{out}"
    );
    // b stopped: a rotates while serving; b comes back with the new key
    // first and the old among the previous, as the command says.
    assert_eq!(b.stop(), 0);
    let (code, out) = rotate();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("each node's configuration"), "{out}");
    let new_id = rotated_to(&out);
    acked.extend(send_acked(&a, "A2", 40));
    let mut b = Weft::start(|_| pg_node(lis, &url, "edge-b", &new, Some(&old), ""));
    acked.extend(send_acked(&b, "B2", 40));
    wait_all_sealed(&a, &new_id);
    assert_eq!(
        receiver.missing(&acked, Duration::from_secs(60)),
        Vec::<String>::new(),
        "every acknowledged message delivered"
    );

    // Nothing of the patients in the clear in any live row; the journal
    // names the new key.
    let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let clear: i64 = db
        .query_one(
            "SELECT (SELECT count(*) FROM messages WHERE position('Test^Pat'::BYTEA IN body) > 0)
                  + (SELECT count(*) FROM deliveries WHERE position('Test^Pat'::BYTEA IN body) > 0)
                  + (SELECT count(*) FROM patient_ids WHERE id LIKE 'MRN%')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(clear, 0, "patient data in the clear");
    let sealed: i64 = db
        .query_one("SELECT count(*) FROM patient_ids WHERE id LIKE 'k1:%'", &[])
        .unwrap()
        .get(0);
    assert_eq!(sealed, 160);
    let key_id: String = db
        .query_one(
            "SELECT value FROM weft_meta WHERE key = 'encryption.key_id'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(key_id, new_id);
    // With the new key alone, the first message of the old key opens.
    assert_eq!(b.stop(), 0);
    assert_eq!(a.stop(), 0);
    let alone = keys.path().join("alone.toml");
    std::fs::write(&alone, pg_node(lis, &url, "edge-a", &new, None, "")).unwrap();
    let alone = alone.to_str().unwrap();
    let (code, list) = weft_cli(&["messages", "list", "--control-id", "B1-000", "-c", alone]);
    assert_eq!(code, 0, "{list}");
    let (code, shown) = weft_cli(&["messages", "show", &first_id(&list), "--body", "-c", alone]);
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("MRNB1000"), "{shown}");
}

#[test]
fn a_key_handed_over_as_a_systemd_credential_is_taken_and_commands_beside_work_without_it() {
    use std::os::unix::fs::PermissionsExt;
    // What systemd makes of `LoadCredentialEncrypted=journal.key:…`: the
    // key in $CREDENTIALS_DIRECTORY, readable by the service's user through
    // an ACL, which shows in the group bits (0440).
    let creds = tempfile::tempdir().unwrap();
    let key = creds.path().join("journal.key");
    generate(&key);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o440)).unwrap();
    let dir = creds.path().to_str().unwrap();
    let env = [("CREDENTIALS_DIRECTORY", dir)];
    let mut weft = Weft::start_env(&[], &env, |d| {
        adt_config(d, "after-commit", &key_line(&key))
    });
    assert_eq!(
        weft.client().exchange(&a01("CRED-1", "MRN778899")).code,
        "AA"
    );
    assert_eq!(weft.stop(), 0);
    let data = weft.dir().join("data");
    assert!(on_disk(&data, &["MRN778899".to_string()]).is_empty());
    let config = weft.config_path().to_str().unwrap().to_string();

    // The same file outside a credentials directory is a loose key.
    let (code, out) = run_refused(weft.config_path());
    assert_ne!(code, 0);
    assert!(out.contains("chmod 600"), "{out}");

    // Once the service stops, systemd takes the credential away: a command
    // beside it checks the config, lists, and says the body is encrypted;
    // `weft run` without it is refused, saying where it comes from.
    std::fs::remove_file(&key).unwrap();
    let here = weft.dir();
    let (code, out) = weft_cli_env(here, &env, &["check", "-c", &config]);
    assert_eq!(code, 0, "{out}");
    let (code, list) = weft_cli_env(here, &env, &["messages", "list", "-c", &config]);
    assert_eq!(code, 0, "{list}");
    let id = first_id(&list);
    let (code, out) = weft_cli_env(
        here,
        &env,
        &["messages", "show", &id, "--body", "-c", &config],
    );
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("the body is encrypted"), "{out}");
    let (_, doctor) = weft_cli_env(here, &env, &["doctor", "--no-plugins", "-c", &config]);
    assert!(
        doctor
            .lines()
            .any(|l| l.contains("encryption") && l.contains("a systemd credential")),
        "{doctor}"
    );
    let (code, out) = run_refused_env(weft.config_path(), &env);
    assert_ne!(code, 0);
    assert!(out.contains("LoadCredentialEncrypted"), "{out}");
    // Without $CREDENTIALS_DIRECTORY, the missing file is a config error.
    let (code, out) = weft_cli(&["check", "-c", &config]);
    assert_ne!(code, 0);
    assert!(out.contains("does not exist"), "{out}");
}
