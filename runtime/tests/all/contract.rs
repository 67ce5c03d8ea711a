//! Contract versions against the real binary: a plugin built against
//! `weft:plugin@0.1.0` (the raw test plugin, no `init`) and one built
//! against 0.2.0 (site-normalize, with `init`) in one route on one runtime;
//! and `init` refusing a bad setting in `weft check`, `weft transform`,
//! `weft run`, and on hot reload with the old version serving.

use std::path::Path;
use std::time::Duration;

use crate::common::fhir_server::free_addr;
use crate::common::run::{Weft, a01};
use crate::common::{admin, live_sha, wasm};
use crate::reload::{wait_until, weft_cli};

/// A route through raw (0.1.0, echoing) then site-normalize (0.2.0) with
/// `drop_segments`, writing HL7 files; the admin API on `admin_addr`.
fn config(dir: &Path, admin_addr: std::net::SocketAddr, drop_segments: &str) -> String {
    format!(
        r#"
[sources.in]
kind = "mllp"
listen = "127.0.0.1:0"
ack = "after-transform"

[plugins.raw]
path = "{raw}"
[plugins.raw.config]
mode = "echo"

[plugins.site-normalize]
path = "{sn}"
[plugins.site-normalize.config]
mrn_prefix = "EDGE-"
drop_segments = "{drop_segments}"

[destinations.files]
kind = "file"
dir = "{out}"
filename = "{{control_id}}.hl7"

[routes.adt]
plugins = ["raw", "site-normalize"]
destinations = ["files"]
match = ["ADT^*"]

[admin]
listen = "{admin_addr}"
"#,
        raw = wasm("weft-test-raw").display(),
        sn = wasm("site-normalize").display(),
        out = dir.join("out").display(),
    )
}

/// An A01 with a Z-segment site-normalize may drop.
fn a01_with_z(control_id: &str) -> Vec<u8> {
    let mut m = a01(control_id, "42");
    m.extend_from_slice(b"ZPI|1|private\r");
    m
}

/// The output file of `control_id`, once written.
fn output(weft: &Weft, control_id: &str) -> String {
    let path = weft.dir().join("out").join(format!("{control_id}.hl7"));
    wait_until(
        &format!("{control_id} written"),
        Duration::from_secs(10),
        || path.is_file(),
    );
    std::fs::read_to_string(&path).unwrap()
}

#[test]
fn a_0_1_plugin_and_a_0_2_plugin_serve_one_route() {
    let dir = tempfile::tempdir().unwrap();
    let raw = wasm("weft-test-raw").display().to_string();
    let (code, out, err) = weft_cli(dir.path(), &["plugin", "inspect", &raw]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(
            "contract    weft:plugin@0.1.0 (this runtime links weft:plugin@0.2.x, weft:plugin@0.1.x: compatible)"
        ),
        "{out}"
    );
    let admin_addr = free_addr();
    let weft = Weft::start_with(&["--no-watch"], |d| config(d, admin_addr, "ZPI"));
    let mut client = weft.client();
    assert_eq!(client.exchange(&a01_with_z("MIX1")).code, "AA");
    let hl7 = output(&weft, "MIX1");
    assert!(
        hl7.contains("|EDGE-42^"),
        "site-normalize ran after raw: {hl7}"
    );
    assert!(!hl7.contains("ZPI"), "{hl7}");
    let api = weft.api(admin_addr);
    for plugin in ["raw", "site-normalize"] {
        assert!(!live_sha(&api, plugin).is_empty(), "{plugin} is live");
    }
}

#[test]
fn init_refuses_bad_settings_at_load_and_the_old_version_serves_on_reload() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let admin_addr = free_addr();
    let bad = d.join("bad.toml");
    std::fs::write(&bad, config(d, admin_addr, "ZPI,PV1")).unwrap();
    let why = "plugin site-normalize refused its settings in init: config drop_segments: PV1 is not a Z-segment";

    // weft check and weft run refuse it, with the plugin's reason.
    let (code, out, err) = weft_cli(d, &["check", &bad.display().to_string()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(format!("{out}{err}").contains(why), "{out}{err}");
    let (code, err) = crate::common::run::run_refused(&bad);
    assert_ne!(code, 0);
    assert!(err.contains(why), "{err}");

    // So does weft transform, before any message.
    let sample = d.join("a01.hl7");
    std::fs::write(&sample, a01_with_z("T1")).unwrap();
    let sn = wasm("site-normalize").display().to_string();
    let (code, out, err) = weft_cli(
        d,
        &[
            "transform",
            "--plugin",
            &sn,
            "--set",
            "drop_segments=PV1",
            &sample.display().to_string(),
        ],
    );
    assert_eq!(code, 1, "{out}{err}");
    // Named after its file here: there is no configuration.
    assert!(
        err.contains(
            "plugin site_normalize refused its settings in init: config drop_segments: PV1"
        ),
        "{err}"
    );

    // Running with good settings, a reload to the bad ones is refused and
    // the running version keeps serving with its settings.
    let weft = Weft::start_with(&["--no-watch"], |d| config(d, admin_addr, "ZPI"));
    let api = weft.api(admin_addr);
    let live = live_sha(&api, "site-normalize");
    let text = std::fs::read_to_string(weft.config_path()).unwrap();
    std::fs::write(
        weft.config_path(),
        text.replace("drop_segments = \"ZPI\"", "drop_segments = \"ZPI,PV1\""),
    )
    .unwrap();
    crate::reload::reload_refused(&weft, &api, "site-normalize", &live, why);
    let status = admin(&api, "GET", "/plugins");
    let sn = status["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "site-normalize")
        .unwrap();
    assert!(
        sn["last_refusal"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("PV1 is not a Z-segment"),
        "{sn}"
    );
    let mut client = weft.client();
    assert_eq!(client.exchange(&a01_with_z("OLD1")).code, "AA");
    let hl7 = output(&weft, "OLD1");
    assert!(hl7.contains("PV1|") && !hl7.contains("ZPI"), "{hl7}");
}
