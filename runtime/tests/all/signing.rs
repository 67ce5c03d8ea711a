//! Signed plugins against the real binary: `weft plugin keygen|sign|verify`,
//! and a site that requires signatures refusing unsigned, tampered,
//! foreign and revoked plugins at start and on hot reload while the old
//! version keeps serving.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::fhir_server::free_addr;
use crate::common::run::{Weft, a01};
use crate::common::{admin, live_sha};
use crate::reload::{config, sha256_of, wait_until, weft_cli};

/// `weft` with `args` in `dir`, which must succeed: its stdout.
fn ok(dir: &Path, args: &[&str]) -> String {
    let (code, out, err) = weft_cli(dir, args);
    assert_eq!(code, 0, "weft {args:?}: {out}{err}");
    out
}

/// `weft` with `args` in `dir`, which must fail: its stdout and stderr.
fn refused(dir: &Path, args: &[&str]) -> String {
    let (code, out, err) = weft_cli(dir, args);
    assert_ne!(code, 0, "weft {args:?} should fail: {out}{err}");
    format!("{out}{err}")
}

/// `weft plugin verify plugin --trust trust`, which must fail saying `why`.
fn verify_fails(dir: &Path, plugin: &Path, trust: &Path, why: &str) {
    let said = refused(
        dir,
        &[
            "plugin",
            "verify",
            &plugin.display().to_string(),
            "--trust",
            &trust.display().to_string(),
        ],
    );
    assert!(said.contains(why), "{}: {said}", plugin.display());
}

/// Makes a signing key `name` in `dir`: its `.key` and `.pub` paths.
fn keygen(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let d = dir.display().to_string();
    ok(dir, &["plugin", "keygen", name, "--dir", &d]);
    (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.pub")),
    )
}

/// `site-normalize` signed with `key`, written to `to`.
fn signed_copy(dir: &Path, key: &Path, from: &Path, to: &Path) {
    let (k, f, t) = (key.display(), from.display(), to.display());
    ok(
        dir,
        &[
            "plugin",
            "sign",
            "--key",
            &k.to_string(),
            &f.to_string(),
            "--out",
            &t.to_string(),
        ],
    );
}

#[test]
fn keys_signatures_and_verification_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A name that would write outside --dir, or a hidden file, is refused.
    for bad in ["../escape", "a/b", ".hidden", "", "sp ace"] {
        let said = refused(
            d,
            &["plugin", "keygen", bad, "--dir", &d.display().to_string()],
        );
        assert!(said.contains("a key name is letters"), "{bad:?}: {said}");
    }
    assert!(!d.parent().unwrap().join("escape.key").exists());
    let (key, public) = keygen(d, "site-team");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the secret key is its owner's alone");
    assert!(
        refused(
            d,
            &[
                "plugin",
                "keygen",
                "site-team",
                "--dir",
                &d.display().to_string()
            ]
        )
        .contains("not overwritten")
    );
    let trust = d.join("trust.toml");
    std::fs::copy(&public, &trust).unwrap();

    let original = crate::common::wasm("site-normalize");
    let plugin = d.join("p.wasm");
    signed_copy(d, &key, &original, &plugin);
    let p = plugin.display().to_string();
    let t = trust.display().to_string();
    let out = ok(d, &["plugin", "verify", &p, "--trust", &t]);
    assert!(out.contains("signed by site-team (key "), "{out}");
    assert!(out.contains(&sha256_of(&plugin)), "{out}");
    assert!(
        refused(
            d,
            &["plugin", "verify", &p, "--trust", &t, "--signer", "lab"]
        )
        .contains("its signer must be lab")
    );
    // One byte of the code flipped.
    let mut bytes = std::fs::read(&plugin).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    let tampered = d.join("tampered.wasm");
    std::fs::write(&tampered, &bytes).unwrap();
    verify_fails(d, &tampered, &trust, "changed after it was signed");
    // Unsigned.
    verify_fails(d, &original, &trust, "unsigned");
    // Signed by a key the trust list does not have.
    let (vendor, vendor_pub) = keygen(d, "vendor");
    let foreign = d.join("foreign.wasm");
    signed_copy(d, &vendor, &original, &foreign);
    verify_fails(d, &foreign, &trust, "does not have");
    // The same key, revoked.
    let revoked = format!(
        "{}revoked = true\n",
        std::fs::read_to_string(&vendor_pub).unwrap()
    );
    std::fs::write(&trust, revoked).unwrap();
    verify_fails(d, &foreign, &trust, "revoked in");
    // Signing again replaces the signature: the file verifies as the new
    // signer's, and it still loads and runs in the sandbox.
    signed_copy(d, &key, &foreign, &foreign);
    std::fs::copy(&public, &trust).unwrap();
    assert!(
        ok(
            d,
            &[
                "plugin",
                "verify",
                &foreign.display().to_string(),
                "--trust",
                &t
            ]
        )
        .contains("signed by site-team")
    );
    let sample = d.join("a01.hl7");
    std::fs::write(&sample, a01("SIGNED1", "1")).unwrap();
    let out = ok(
        d,
        &[
            "transform",
            "--plugin",
            &foreign.display().to_string(),
            &sample.display().to_string(),
        ],
    );
    assert!(out.contains("SIGNED1"), "{out}");
}

/// `weft run` on `config`, which must refuse to start: its stderr.
fn run_refused(config: &Path) -> String {
    let (code, err) = crate::common::run::run_refused(config);
    assert_ne!(code, 0, "{err}");
    err
}

#[test]
fn a_site_that_requires_signatures_refuses_the_rest_at_start_and_on_reload() {
    let keys = tempfile::tempdir().unwrap();
    let k = keys.path();
    let (team, team_pub) = keygen(k, "site-team");
    let (vendor, _) = keygen(k, "vendor");
    let trust = k.join("trust.toml");
    std::fs::copy(&team_pub, &trust).unwrap();
    let original = crate::common::wasm("site-normalize");
    let plugin = k.join("site_normalize.wasm");
    std::fs::copy(&original, &plugin).unwrap();
    let admin_addr = free_addr();
    let trust_section = format!(
        "signer = \"site-team\"\n[trust]\nkeys = \"{}\"\nrequire_signed = true\n",
        trust.display()
    );

    // Unsigned: weft check and weft run both refuse it, saying why.
    let unsigned = k.join("unsigned.toml");
    std::fs::write(&unsigned, config(k, &plugin, admin_addr, &trust_section)).unwrap();
    let why = refused(k, &["check", &unsigned.display().to_string()]);
    assert!(
        why.contains("plugins.site-normalize") && why.contains("unsigned"),
        "{why}"
    );
    let why = run_refused(&unsigned);
    assert!(why.contains("unsigned"), "{why}");

    // Signed by the site's key: it starts, and says who signed what runs.
    signed_copy(k, &team, &original, &plugin);
    let mut weft = Weft::start_with(&["--no-watch"], |d| {
        config(d, &plugin, admin_addr, &trust_section)
    });
    let api = weft.api(admin_addr);
    let signature = |api: &crate::common::Api| {
        admin(api, "GET", "/plugins")["plugins"][0]["signature"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        signature(&api).starts_with("signed by site-team (key "),
        "{}",
        signature(&api)
    );
    let live = sha256_of(&plugin);
    let served = |weft: &Weft, id: &str| {
        let mut c = weft.client();
        assert_eq!(c.exchange(&a01(id, "7")).code, "AA");
    };
    served(&weft, "S1");
    let config_path = weft.config_path().display().to_string();
    let reload_refused =
        |why: &str| crate::reload::reload_refused(&weft, &api, "site-normalize", &live, why);

    // Each bad version in turn, put in place in one rename as a deployment
    // would: refused on reload, and the signed one keeps serving.
    let put = |bytes: &[u8]| {
        let tmp = k.join("next.wasm");
        std::fs::write(&tmp, bytes).unwrap();
        std::fs::rename(&tmp, &plugin).unwrap();
    };
    let signed_bytes = std::fs::read(&plugin).unwrap();
    let mut tampered = signed_bytes.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x01;
    put(&tampered);
    reload_refused("changed after it was signed");
    served(&weft, "S2");
    put(&std::fs::read(&original).unwrap());
    reload_refused("unsigned");
    let foreign = k.join("foreign.wasm");
    signed_copy(k, &vendor, &original, &foreign);
    put(&std::fs::read(&foreign).unwrap());
    reload_refused("does not have");
    served(&weft, "S3");

    // A new version, signed by the site's key, goes live by hot reload.
    let variant = k.join("variant.wasm");
    signed_copy(k, &team, &crate::common::site_normalize_variant(), &variant);
    put(&std::fs::read(&variant).unwrap());
    let (code, out, err) = weft_cli(
        weft.dir(),
        &["plugins", "--reload", "--config", &config_path],
    );
    assert_eq!(code, 0, "{out}{err}");
    let next = sha256_of(&plugin);
    wait_until("the signed variant live", Duration::from_secs(10), || {
        live_sha(&api, "site-normalize") == next
    });
    served(&weft, "S4");
    wait_until("S4 delivered", Duration::from_secs(10), || {
        weft.out.join("S4.hl7").is_file()
    });
    assert!(
        std::fs::read_to_string(weft.out.join("S4.hl7"))
            .unwrap()
            .contains("ZWV|B"),
        "made by the new version"
    );
    // Provenance: the journal names the version and its signer for each
    // message, in the admin API and in `weft messages show`.
    let listed = admin(&api, "GET", "/messages?control_id=S4");
    let id = listed["messages"][0]["id"].as_str().unwrap().to_string();
    let detail = admin(&api, "GET", &format!("/messages/{id}"));
    assert_eq!(detail["plugins"][0]["signer"], "site-team", "{detail}");
    assert_eq!(detail["plugins"][0]["sha256"], next.as_str());
    assert_eq!(
        detail["plugin_versions"][0],
        format!("site-normalize@{next}").as_str()
    );
    let shown = ok(
        weft.dir(),
        &["messages", "show", &id, "--config", &config_path],
    );
    assert!(
        shown.contains(&format!(
            "site-normalize@{next}  version 0.1.0  signed by site-team (key "
        )),
        "{shown}"
    );
    // Revoking the site's key in the trust list: the next reload refuses
    // every version it signed (what serves keeps serving until a restart).
    let revoked = format!(
        "{}revoked = true\n",
        std::fs::read_to_string(&team_pub).unwrap()
    );
    std::fs::write(&trust, revoked).unwrap();
    let (code, out, _) = weft_cli(
        weft.dir(),
        &["plugins", "--reload", "--config", &config_path],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("revoked in"), "{out}");
    assert_eq!(weft.stop(), 0);
    let why = run_refused(weft.config_path());
    assert!(why.contains("revoked in"), "{why}");
}
