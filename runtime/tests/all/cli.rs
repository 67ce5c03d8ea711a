//! The real `weft` binary: `transform` and `check`.

use std::path::Path;
use std::process::{Command, Output};

fn weft(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(args)
        .current_dir(cwd)
        .env("RUST_LOG", "info")
        .output()
        .expect("weft runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn transform_runs_the_default_adt_route() {
    crate::common::wasm("adt-to-fhir");
    crate::common::wasm("site-normalize");
    let out = weft(
        &["transform", "--route", "adt", "samples/adt-a01.hl7"],
        &crate::common::repo(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let bundle: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(bundle["resourceType"], "Bundle");
    let patient = &bundle["entry"][0]["resource"];
    // site-normalize prefixed the MRN and mapped the local sex code;
    // adt-to-fhir turned it into FHIR.
    assert_eq!(patient["identifier"][0]["value"], "EDGE-123456");
    assert_eq!(patient["gender"], "female");
    assert!(
        bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["resource"]["resourceType"] == "Encounter")
    );
    let err = text(&out.stderr);
    assert!(
        err.contains("output 1: destination=* content-type=application/fhir+json"),
        "{err}"
    );
}

#[test]
fn transform_reads_stdin_and_settings() {
    let wasm = crate::common::wasm("site-normalize");
    let mut child = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["transform", "--plugin"])
        .arg(&wasm)
        .args(["--set", "mrn_prefix=X-", "--set", "drop_segments=ZPI", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"MSH|^~\\&|A|B|C|D|2024||ADT^A08|9|P|2.5\rPID|1||77^^^H^MR\rZPI|x\r")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "MSH|^~\\&|A|B|C|D|2024||ADT^A08|9|P|2.5\rPID|1||X-77^^^H^MR\r\n"
    );
}

#[test]
fn exit_codes_tell_reject_failure_and_limits_apart() {
    let repo = crate::common::repo();
    let adt = crate::common::wasm("adt-to-fhir");
    let hostile = crate::common::wasm("weft-test-hostile");
    let oru = repo.join("tests/corpus/hl7v2/fhir-converter/ORU-R01-01.hl7");
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (
            vec![
                "--plugin".into(),
                adt.display().to_string(),
                oru.display().to_string(),
            ],
            3,
            "rejected the message: MSH-9 ORU^R01 is not mapped by adt-to-fhir",
        ),
        (
            vec![
                "--plugin".into(),
                hostile.display().to_string(),
                "--set".into(),
                "mode=panic".into(),
                "samples/adt-a01.hl7".into(),
            ],
            5,
            "crashed",
        ),
        (
            vec![
                "--plugin".into(),
                hostile.display().to_string(),
                "--set".into(),
                "mode=loop".into(),
                "--deadline-ms".into(),
                "40".into(),
                "samples/adt-a01.hl7".into(),
            ],
            6,
            "deadline of 40 ms exceeded",
        ),
        (
            vec![
                "--plugin".into(),
                hostile.display().to_string(),
                "--set".into(),
                "mode=alloc".into(),
                "--memory-mib".into(),
                "8".into(),
                "samples/adt-a01.hl7".into(),
            ],
            6,
            "memory cap of 8 MiB",
        ),
        (
            vec![
                "--plugin".into(),
                hostile.display().to_string(),
                "--set".into(),
                "mode=bogus".into(),
                "samples/adt-a01.hl7".into(),
            ],
            5,
            "unknown mode",
        ),
    ];
    for (args, code, needle) in cases {
        let mut all = vec!["transform".to_string()];
        all.extend(args);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        let out = weft(&refs, &repo);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{refs:?}: {err}");
        assert!(err.contains(needle), "{refs:?}: {err}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn check_accepts_the_default_config() {
    let out = weft(&["check"], &crate::common::repo());
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("plugin adt-to-fhir: ok (version 0.1.0; sha256 "),
        "{stdout}"
    );
    // The shipped plugins' manifests agree with what the default grants.
    assert!(!stdout.contains("warning"), "{stdout}");
    assert!(
        stdout.contains("route adt: site-normalize -> adt-to-fhir"),
        "{stdout}"
    );
}

#[test]
fn check_names_file_line_and_key_for_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let future = crate::common::wasm("weft-test-future-contract");
    let config = format!(
        r#"[plugins.ok]
path = "{}"
memory_mib = 0

[plugins.future]
path = "{}"

[plugins.gone]
path = "nowhere.wasm"
colour = "blue"

[routes.r]
plugins = ["ok", "nobody"]
"#,
        crate::common::wasm("site-normalize").display(),
        future.display()
    );
    let path = dir.path().join("weft.toml");
    std::fs::write(&path, config).unwrap();
    let out = weft(&["check", path.to_str().unwrap()], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let file = path.display().to_string();
    for want in [
        format!("{file}:3:14: plugins.ok.memory_mib: expected a whole number from 1 to 4096"),
        format!("{file}:9:8: plugins.gone.path: file"),
        format!("{file}:10:1: plugins.gone.colour: unknown key"),
        format!("{file}:13:18: routes.r.plugins: no plugin named \"nobody\" is defined"),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
    // With the config fixed, loading refuses the future-contract plugin and
    // says where it is configured.
    let fixed = format!("[plugins.future]\npath = \"{}\"\n", future.display());
    std::fs::write(&path, fixed).unwrap();
    let out = weft(&["check", path.to_str().unwrap()], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains(&format!("{file}:2:8: plugins.future.path: plugin future: built against weft:plugin@1.0.0, but this runtime links weft:plugin@0.2.0")), "{err}");
}

#[test]
fn weft_test_runs_golden_cases_reports_each_difference_and_updates_on_request() {
    let plugin = crate::common::wasm("adt-to-fhir").display().to_string();
    let repo = crate::common::repo();
    let dir = tempfile::tempdir().unwrap();
    let cases = dir.path().join("cases");
    let sample = std::fs::read_to_string(repo.join("samples/adt-a01.hl7")).unwrap();
    for (name, text) in [
        ("a01", sample.clone()),
        ("bad-birth-date", sample.replace("19800229", "19801399")),
    ] {
        std::fs::create_dir_all(cases.join(name)).unwrap();
        std::fs::write(cases.join(name).join("input.hl7"), text).unwrap();
    }
    let cases_arg = cases.display().to_string();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "test",
            "--plugin",
            &plugin,
            "--set",
            "default_utc_offset=+00:00",
        ];
        args.extend_from_slice(extra);
        args.push(&cases_arg);
        let out = weft(&args, &repo);
        (out.status.code(), text(&out.stdout))
    };

    // No expectation yet: both fail and say how to make one.
    let (code, out) = run(&[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("no expectation yet"), "{out}");
    // --update writes what the run made: the Bundle, the reject's reason.
    let (code, out) = run(&["--update"]);
    assert_eq!(code, Some(0), "{out}");
    let expected = cases.join("a01/expected/01.json");
    let bundle: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&expected).unwrap()).unwrap();
    assert_eq!(bundle["resourceType"], "Bundle");
    let reason = std::fs::read_to_string(cases.join("bad-birth-date/reject.txt")).unwrap();
    assert!(reason.starts_with("PID-7"), "{reason}");
    let (code, out) = run(&[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("2 cases: 2 passed, 0 failed"), "{out}");

    // Key order and whitespace do not matter; a changed value does, named
    // by its path with both values; a volatile field does not.
    let mut edited = bundle.clone();
    edited["entry"][0]["resource"]["name"][0]["family"] = "Simple".into();
    edited["entry"][0]["resource"]["meta"] = serde_json::json!({"lastUpdated": "1999-01-01"});
    std::fs::write(&expected, serde_json::to_string(&edited).unwrap()).unwrap();
    let junit = dir.path().join("junit.xml");
    let (code, out) = run(&["--junit", &junit.display().to_string()]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("output 1 (01.json): entry[0].resource.name[0].family: expected \"Simple\", got \"Sample\""),
        "{out}"
    );
    assert!(!out.contains("lastUpdated"), "volatile: {out}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("tests=\"2\" failures=\"1\""), "{xml}");
    assert!(
        xml.contains("<testcase classname=\"adt_to_fhir\" name=\"bad-birth-date\""),
        "{xml}"
    );
    // A reason that no longer holds.
    std::fs::write(cases.join("bad-birth-date/reject.txt"), "PID-8").unwrap();
    let (_, out) = run(&[]);
    assert!(
        out.contains("the reason does not contain \"PID-8\""),
        "{out}"
    );
}
