//! `weft new`: each template makes a crate outside this repository that
//! builds for wasm32-wasip2, passes its own unit tests (through the SDK's
//! test host) and golden cases (through `weft test`, in the sandbox), and
//! loads with `weft check` (its check sample included).

use std::path::Path;
use std::process::Command;

use crate::common::weft_cli_in as weft;

/// Runs `cargo` in `dir`: its exit status and output. The three crates
/// share one target directory, so the SDK's dependencies are built once.
fn cargo(dir: &Path, target_dir: &Path, args: &[&str]) -> (bool, String) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(dir)
        .args(args)
        .env("CARGO_TARGET_DIR", target_dir)
        // The outer build's settings are for this workspace and its host.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_PRIMARY_PACKAGE")
        .output()
        .unwrap();
    (out.status.success(), crate::common::printed(&out))
}

#[test]
fn each_template_builds_passes_its_tests_and_loads() {
    let outside = tempfile::tempdir().unwrap();
    // Shared by the three crates, and kept between runs of this test.
    let target_dir = crate::common::repo().join("target/weft-new");
    for (template, name, settings) in [
        (
            "hl7-rewrite",
            "north-rewrite",
            &["--set", "receiving_application=LAB"][..],
        ),
        (
            "fhir-mapping",
            "north-adt",
            &[
                "--set",
                "default_utc_offset=+00:00",
                "--lookup",
                "assigning_authority=lookups/assigning-authority.csv",
            ][..],
        ),
        ("filter", "north-filter", &[][..]),
    ] {
        let (code, out) = weft(
            outside.path(),
            &["new", name, "--template", template, "--dir", "."],
        );
        assert_eq!(code, 0, "{template}: {out}");
        assert!(out.contains(&format!("[plugins.{name}]")), "{out}");
        let root = outside.path().join(name);
        for file in [
            "Cargo.toml",
            "README.md",
            "weft.toml",
            "src/lib.rs",
            "samples/adt-a01.hl7",
            "cases/admit/input.hl7",
        ] {
            assert!(root.join(file).is_file(), "{template}: no {file}");
        }

        // Formatted as cargo fmt would, whatever the name's length.
        let (ok, out) = cargo(&root, &target_dir, &["fmt", "--check"]);
        assert!(ok, "{template}: not formatted:\n{out}");

        // Its unit tests, natively.
        let (ok, out) = cargo(&root, &target_dir, &["test", "--quiet"]);
        assert!(ok, "{template}: cargo test failed:\n{out}");
        assert!(
            out.contains("test result: ok. 3 passed"),
            "{template}: {out}"
        );

        // The component, and its golden cases in the sandbox.
        let (ok, out) = cargo(
            &root,
            &target_dir,
            &["build", "--release", "--target", "wasm32-wasip2"],
        );
        assert!(ok, "{template}: the wasm build failed:\n{out}");
        let file = format!("{}.wasm", name.replace('-', "_"));
        let built = target_dir.join("wasm32-wasip2/release").join(&file);
        // Deployed where its weft.toml looks.
        let wasm = root.join("plugins").join(&file);
        std::fs::create_dir_all(wasm.parent().unwrap()).unwrap();
        std::fs::copy(&built, &wasm).unwrap();
        let plugin = wasm.display().to_string();
        let mut args = vec!["test", "--plugin", &plugin];
        args.extend_from_slice(settings);
        args.push("cases/");
        let (code, out) = weft(&root, &args);
        assert_eq!(code, 0, "{template}: {out}");
        assert!(
            out.contains("2 cases: 2 passed, 0 failed"),
            "{template}: {out}"
        );

        // Its weft.toml loads it, and its check sample passes.
        let (code, out) = weft(&root, &["check", "--config", "weft.toml"]);
        assert_eq!(code, 0, "{template}: {out}");

        // A change to the plugin shows in its golden cases.
        if template == "hl7-rewrite" {
            let mut args = vec!["test", "--plugin", &plugin, "--set"];
            args.extend_from_slice(&["receiving_application=BILLING", "cases/"]);
            let (code, out) = weft(&root, &args);
            assert_eq!(code, 1, "{out}");
            assert!(out.contains("MSH-5: expected LAB, got BILLING"), "{out}");
        }
    }

    // What it refuses: a name that is not one, a folder that is taken.
    let (code, out) = weft(
        outside.path(),
        &["new", "North_ADT", "--template", "filter"],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not a plugin name"), "{out}");
    // Names are capped at 64 characters: 64 is made, 65 refused.
    let longest = format!("a{}", "-b".repeat(31) + "c");
    assert_eq!(longest.len(), 64);
    let (code, out) = weft(outside.path(), &["new", &longest, "--template", "filter"]);
    assert_eq!(code, 0, "{out}");
    assert!(outside.path().join(&longest).join("src/lib.rs").is_file());
    let (code, out) = weft(
        outside.path(),
        &["new", &format!("{longest}d"), "--template", "filter"],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not a plugin name"), "{out}");
    let (code, out) = weft(
        outside.path(),
        &["new", "north-filter", "--template", "filter"],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("already there and not empty"), "{out}");
}
