//! Plugin manifests against the real binary: `weft plugin inspect` on the
//! shipped (signed) plugins and on test plugins without a manifest or built
//! for another contract; a signature covering the manifest; the site's
//! grants held against it (warnings, and refusal under `strict_grants` at
//! start and on hot reload, the old version serving); the declared version
//! in each message's provenance.

use std::path::Path;
use std::time::Duration;

use crate::common::fhir_server::free_addr;
use crate::common::run::{Weft, a01};
use crate::common::{admin, live_sha};
use crate::reload::{config, sha256_of, wait_until, weft_cli};

/// `weft` with `args`, which must exit with `code`: stdout and stderr.
fn weft(dir: &Path, args: &[&str], code: i32) -> String {
    let (got, out, err) = weft_cli(dir, args);
    assert_eq!(got, code, "weft {args:?}: {out}{err}");
    format!("{out}{err}")
}

#[test]
fn inspect_shows_manifest_signer_contract_and_imports() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let trust = weft_test_artifacts::project_trust_list()
        .display()
        .to_string();
    for name in weft_test_artifacts::SHIPPED {
        let signed = weft_test_artifacts::signed(name).unwrap();
        let p = signed.display().to_string();
        let out = weft(d, &["plugin", "inspect", &p, "--trust", &trust], 0);
        for expected in [
            format!("manifest    {name} 0.1.0 (built with contract 0.2.0)"),
            "signature   signed by weft-project (key ".to_string(),
            "contract    weft:plugin@0.2.0 (this runtime links weft:plugin@0.2.x, weft:plugin@0.1.x: compatible)"
                .to_string(),
            format!("sha256      {}", sha256_of(signed)),
            "    weft:plugin/host@0.2.0".to_string(),
            "  exports     1\n    weft:plugin/transform@0.2.0".to_string(),
        ] {
            assert!(out.contains(&expected), "{name}: no {expected:?} in\n{out}");
        }
        let json: serde_json::Value =
            serde_json::from_str(&weft(d, &["plugin", "inspect", &p, "--json"], 0)).unwrap();
        assert_eq!(json["manifest"]["name"], *name);
        assert_eq!(json["links"], true);
        assert!(json["signature"].as_str().unwrap().contains("weft-project"));
    }
    let adt = weft(
        d,
        &[
            "plugin",
            "inspect",
            &weft_test_artifacts::signed("adt-to-fhir")
                .unwrap()
                .display()
                .to_string(),
        ],
        0,
    );
    assert!(adt.contains("ADT^A01, ADT^A02"), "{adt}");
    assert!(adt.contains("config           default_utc_offset"), "{adt}");
    assert!(
        adt.contains("limits           memory 32 MiB, deadline 100 ms"),
        "{adt}"
    );

    // A plugin written against the raw ABI declares nothing; one built for
    // a future contract is said not to link.
    let raw = crate::common::wasm("weft-test-raw").display().to_string();
    let out = weft(d, &["plugin", "inspect", &raw], 0);
    assert!(out.contains("manifest    none"), "{out}");
    assert!(out.contains("signature   unsigned"), "{out}");
    let future = crate::common::wasm("weft-test-future-contract")
        .display()
        .to_string();
    let out = weft(d, &["plugin", "inspect", &future], 0);
    assert!(out.contains("NOT compatible"), "{out}");

    // The signature covers the manifest: a version number edited in a
    // signed plugin (same length, so the file still parses) breaks it.
    let signed = std::fs::read(weft_test_artifacts::signed("site-normalize").unwrap()).unwrap();
    let needle = b"\"version\":\"0.1.0\"";
    let at = signed
        .windows(needle.len())
        .rposition(|w| w == needle)
        .expect("the manifest's version");
    let mut edited = signed.clone();
    edited[at + 11] = b'9';
    let path = d.join("edited.wasm");
    std::fs::write(&path, &edited).unwrap();
    let p = path.display().to_string();
    let out = weft(d, &["plugin", "inspect", &p], 0);
    assert!(out.contains("manifest    site-normalize 9.1.0"), "{out}");
    assert!(out.contains("bad signature"), "{out}");
    let out = weft(d, &["plugin", "verify", &p, "--trust", &trust], 1);
    assert!(out.contains("changed after it was signed"), "{out}");
}

/// site-normalize's settings with one key misspelt (`mrn_prefx`).
const MISSPELT: &str = "[plugins.site-normalize.config]\nmrn_prefx = \"EDGE-\"\n";

#[test]
fn grants_are_checked_and_strict_grants_refuses_at_start_and_on_reload() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let plugin = d.join("site_normalize.wasm");
    std::fs::copy(crate::common::wasm("site-normalize"), &plugin).unwrap();
    let admin_addr = free_addr();

    // Not strict: a misspelt setting is a warning, in `weft check`, in
    // `weft plugins` and in GET /plugins; the plugin loads and serves, and
    // each message records the version the plugin declares.
    let loose = d.join("loose.toml");
    std::fs::write(&loose, config(d, &plugin, admin_addr, MISSPELT)).unwrap();
    let out = weft(d, &["check", &loose.display().to_string()], 0);
    assert!(
        out.contains("plugin site-normalize: ok (version 0.1.0; sha256"),
        "{out}"
    );
    assert!(
        out.contains(
            "plugin site-normalize: warning: plugins.site-normalize.config.mrn_prefx is set, but the plugin does not read it"
        ),
        "{out}"
    );
    {
        let weft_run = Weft::start_with(&["--no-watch"], |d| {
            config(d, &plugin, admin_addr, MISSPELT)
        });
        let api = weft_run.api(admin_addr);
        let status = admin(&api, "GET", "/plugins");
        let p = &status["plugins"][0];
        assert_eq!(p["version"], "0.1.0");
        assert!(
            p["grant_warnings"][0]
                .as_str()
                .unwrap()
                .contains("mrn_prefx"),
            "{p}"
        );
        let config_path = weft_run.config_path().display().to_string();
        let out = weft(weft_run.dir(), &["plugins", "--config", &config_path], 0);
        assert!(out.contains("site-normalize 0.1.0  sha256"), "{out}");
        assert!(
            out.contains("    warning   plugins.site-normalize.config.mrn_prefx"),
            "{out}"
        );
        let mut c = weft_run.client();
        assert_eq!(c.exchange(&a01("MAN1", "7")).code, "AA");
        let list = admin(&api, "GET", "/messages");
        let id = list["messages"][0]["id"].as_str().unwrap().to_string();
        // The outcome is journaled as the ACK goes out: wait for it.
        let mut detail = serde_json::Value::Null;
        wait_until("the outcome journaled", Duration::from_secs(10), || {
            detail = admin(&api, "GET", &format!("/messages/{id}"));
            detail["status"] != "received"
        });
        assert_eq!(detail["plugins"][0]["version"], "0.1.0", "{detail}");
        let out = weft(
            weft_run.dir(),
            &["messages", "show", &id, "--config", &config_path],
            0,
        );
        assert!(out.contains("version 0.1.0  unsigned"), "{out}");
    }

    // Strict: the same configuration is refused by check and run, naming
    // what is wrong.
    let strict_extra = format!("{MISSPELT}[trust]\nstrict_grants = true\n");
    let strict = d.join("strict.toml");
    std::fs::write(&strict, config(d, &plugin, admin_addr, &strict_extra)).unwrap();
    let out = weft(d, &["check", &strict.display().to_string()], 1);
    assert!(
        out.contains("refused by [trust] strict_grants") && out.contains("mrn_prefx"),
        "{out}"
    );
    let (code, err) = crate::common::run::run_refused(&strict);
    assert_ne!(code, 0);
    assert!(
        err.contains("strict_grants") && err.contains("mrn_prefx"),
        "{err}"
    );

    // Strict and granted: it serves. Then, on hot reload, a version with no
    // manifest and a config granting less memory than the plugin needs are
    // each refused, the old version serving.
    let good =
        "[plugins.site-normalize.config]\nmrn_prefix = \"EDGE-\"\n[trust]\nstrict_grants = true\n";
    let weft_run = Weft::start_with(&["--no-watch"], |d| config(d, &plugin, admin_addr, good));
    let api = weft_run.api(admin_addr);
    let live = live_sha(&api, "site-normalize");
    let config_path = weft_run.config_path().to_path_buf();
    let reload_refused = |why: &str| {
        crate::reload::reload_refused(&weft_run, &api, "site-normalize", &live, why);
        let mut client = weft_run.client();
        assert_eq!(client.exchange(&a01("MAN2", "8")).code, "AA");
    };
    let mut bytes = std::fs::read(&plugin).unwrap();
    let name = b"weft-manifest";
    let at = bytes
        .windows(name.len())
        .position(|w| w == name)
        .expect("the manifest section");
    bytes[at] = b'x';
    let tmp = d.join("next.wasm");
    std::fs::write(&tmp, &bytes).unwrap();
    let original = std::fs::read(&plugin).unwrap();
    std::fs::rename(&tmp, &plugin).unwrap();
    reload_refused("declares no manifest");
    std::fs::write(&tmp, &original).unwrap();
    std::fs::rename(&tmp, &plugin).unwrap();
    let text = std::fs::read_to_string(&config_path).unwrap();
    let less = text.replace(
        "[plugins.site-normalize.config]",
        "memory_mib = 8\n[plugins.site-normalize.config]",
    );
    std::fs::write(&config_path, less).unwrap();
    reload_refused("it needs 16 MiB of memory, plugins.site-normalize.memory_mib gives 8");
    wait_until("still serving", Duration::from_secs(5), || {
        live_sha(&api, "site-normalize") == live
    });
}
