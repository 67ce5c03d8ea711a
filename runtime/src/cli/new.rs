//! `weft new NAME --template hl7-rewrite|fhir-mapping|filter`: a plugin
//! crate that builds for `wasm32-wasip2` and passes its own tests at once:
//! the plugin with a working example and its unit tests, golden cases, a
//! sample message, a `weft.toml` that runs it alone, and a README. The
//! templates live in `runtime/templates/`, compiled into the binary.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};

/// Arguments of `weft new`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The plugin's name: lowercase letters, digits and dashes
    /// (`north-adt`); also the crate's and the folder's.
    name: String,
    /// What the example plugin does.
    #[arg(long, short = 't', value_enum)]
    template: Template,
    /// The folder to make the crate in (as DIR/NAME).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// The Weft SDK the crate depends on (a checkout's `sdk/` folder);
    /// default: the SDK this weft was built from, when it is still there.
    #[arg(long, value_name = "DIR")]
    sdk: Option<PathBuf>,
}

/// The templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Template {
    /// Rewrites HL7 v2 for a downstream system (a header field from a
    /// setting, Z-segments removed, a reject).
    Hl7Rewrite,
    /// Maps HL7 v2 ADT to a FHIR R4 transaction Bundle with weft-v2fhir.
    FhirMapping,
    /// Lets through only the message types it is set to.
    Filter,
}

/// One file of a template: its path in the crate, its text (with
/// `{{placeholders}}`).
type File = (&'static str, &'static str);

macro_rules! files {
    ($($path:literal => $file:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/", $file)))),*]
    };
}

/// What every template has.
const COMMON: &[File] = files! {
    "Cargo.toml" => "common/Cargo.toml",
    ".gitignore" => "common/gitignore",
    "README.md" => "common/README.md",
    "weft.toml" => "common/weft.toml",
    "samples/adt-a01.hl7" => "common/samples/adt-a01.hl7",
    "cases/admit/input.hl7" => "common/samples/adt-a01.hl7",
};

const HL7_REWRITE: &[File] = files! {
    "src/lib.rs" => "hl7-rewrite/src/lib.rs",
    "cases/admit/expected/01.hl7" => "hl7-rewrite/cases/admit/expected/01.hl7",
    "cases/no-patient-id/input.hl7" => "hl7-rewrite/cases/no-patient-id/input.hl7",
    "cases/no-patient-id/reject.txt" => "hl7-rewrite/cases/no-patient-id/reject.txt",
};

const FHIR_MAPPING: &[File] = files! {
    "src/lib.rs" => "fhir-mapping/src/lib.rs",
    "lookups/assigning-authority.csv" => "fhir-mapping/lookups/assigning-authority.csv",
    "cases/admit/expected/01.json" => "fhir-mapping/cases/admit/expected/01.json",
    "cases/discharge/input.hl7" => "fhir-mapping/cases/discharge/input.hl7",
    "cases/discharge/reject.txt" => "fhir-mapping/cases/discharge/reject.txt",
};

const FILTER: &[File] = files! {
    "src/lib.rs" => "filter/src/lib.rs",
    "cases/admit/expected/01.hl7" => "filter/cases/admit/expected/01.hl7",
    "cases/test-message/input.hl7" => "filter/cases/test-message/input.hl7",
    "cases/test-message/expected/.gitkeep" => "filter/cases/test-message/expected/gitkeep",
};

/// The values a template's placeholders take, besides the name's.
struct Values {
    files: &'static [File],
    summary: &'static str,
    dependencies: &'static str,
    /// The plugin's tables in a `weft.toml` (with `{{name}}`).
    settings: &'static str,
    /// `weft test`'s flags for the same settings.
    test_settings: &'static str,
    route_match: &'static str,
}

impl Template {
    fn name(self) -> &'static str {
        match self {
            Template::Hl7Rewrite => "hl7-rewrite",
            Template::FhirMapping => "fhir-mapping",
            Template::Filter => "filter",
        }
    }

    fn values(self) -> Values {
        match self {
            Template::Hl7Rewrite => Values {
                files: HL7_REWRITE,
                summary: "rewrites HL7 v2 for a downstream system (the receiving application \
                          from a setting, Z-segments removed, a message without a patient \
                          identifier rejected)",
                dependencies: SDK,
                settings: "\n[plugins.{{name}}.config]\nreceiving_application = \"LAB\"\n",
                test_settings: "--set receiving_application=LAB ",
                route_match: "\"ADT^*\"",
            },
            Template::FhirMapping => Values {
                files: FHIR_MAPPING,
                summary: "maps HL7 v2 ADT^A01, A04 and A08 to a FHIR R4 transaction Bundle \
                          (Patient and Encounter)",
                dependencies: SDK_V2FHIR,
                settings: "\n[plugins.{{name}}.config]\ndefault_utc_offset = \"+00:00\"\n\n\
                           [plugins.{{name}}.lookups]\n\
                           assigning_authority = \"lookups/assigning-authority.csv\"\n",
                test_settings: "--set default_utc_offset=+00:00 \\\n    \
                                --lookup assigning_authority=lookups/assigning-authority.csv ",
                route_match: "\"ADT^A01\", \"ADT^A04\", \"ADT^A08\"",
            },
            Template::Filter => Values {
                files: FILTER,
                summary: "lets through only the message types it is set to, and no test \
                          messages",
                dependencies: SDK,
                settings: "\n[plugins.{{name}}.config]\ntypes = \"ADT^A01,ADT^A04,ADT^A08\"\n",
                test_settings: "",
                route_match: "\"ADT^*\"",
            },
        }
    }
}

const SDK: &str = "weft-sdk = { path = \"{{sdk}}\" }\n";
const SDK_V2FHIR: &str =
    "weft-sdk = { path = \"{{sdk}}\" }\nweft-v2fhir = { path = \"{{sdk}}/v2fhir\" }\n";

/// The longest name taken.
const MAX_NAME: usize = 64;

/// Checks a plugin name: what cargo takes as a package name and Weft as a
/// plugin's, and what makes a Rust type name.
fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && !name.contains("--")
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        bail!(
            "{name:?} is not a plugin name: lowercase letters, digits and single dashes, \
             starting with a letter, at most {MAX_NAME} characters (north-adt)"
        );
    }
    Ok(())
}

/// `north-adt` → `NorthAdt`.
fn type_name(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut c = part.chars();
            c.next()
                .map(|first| first.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The SDK this binary was built from, when it is still there.
fn default_sdk() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
    dir.join("Cargo.toml")
        .is_file()
        .then(|| dir.canonicalize().ok())
        .flatten()
}

/// Replaces each `{{key}}` of `text`.
fn fill(text: &str, values: &[(&str, &str)]) -> String {
    let mut out = text.to_string();
    for (key, value) in values {
        out = out.replace(&format!("{{{{{key}}}}}"), value);
    }
    out
}

/// What the new plugin is called, and where its SDK is.
struct Names<'a> {
    name: &'a str,
    crate_name: &'a str,
    type_name: &'a str,
    sdk: &'a str,
}

/// A template's text with every placeholder filled: the template's
/// values first (they hold `{{name}}` and `{{sdk}}`), then the names.
fn render(text: &str, template: Template, n: &Names<'_>) -> String {
    let v = template.values();
    let values = [
        ("template", template.name()),
        ("summary", v.summary),
        ("dependencies", v.dependencies),
        ("plugin_settings", v.settings),
        ("test_settings", v.test_settings),
        ("route_match", v.route_match),
        ("sample", "samples/adt-a01.hl7"),
        ("sample_expect", "transformed"),
    ];
    let names = [
        ("name", n.name),
        ("crate", n.crate_name),
        ("Type", n.type_name),
        ("sdk", n.sdk),
    ];
    fill(&fill(text, &values), &names)
}

/// Makes the crate.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    check_name(&args.name)?;
    let sdk = match &args.sdk {
        Some(dir) => dir
            .canonicalize()
            .with_context(|| format!("--sdk {}", dir.display()))?,
        None => default_sdk().context(
            "this weft was built away from its sources: name a Weft checkout's SDK \
             with --sdk DIR (the checkout's sdk/ folder)",
        )?,
    };
    if !sdk.join("Cargo.toml").is_file() || !sdk.join("v2fhir/Cargo.toml").is_file() {
        bail!(
            "{}: not the Weft SDK (no Cargo.toml, or no v2fhir/ beside it)",
            sdk.display()
        );
    }
    let sdk_text = sdk
        .to_str()
        .context("the SDK's path is not UTF-8")?
        .replace('\\', "/");
    let root = args.dir.join(&args.name);
    if root.exists()
        && std::fs::read_dir(&root)
            .with_context(|| format!("reading {}", root.display()))?
            .next()
            .is_some()
    {
        bail!("{}: already there and not empty", root.display());
    }

    let template = args.template;
    let v = template.values();
    let crate_name = args.name.replace('-', "_");
    let names = Names {
        name: &args.name,
        crate_name: &crate_name,
        type_name: &type_name(&args.name),
        sdk: &sdk_text,
    };
    let mut written = Vec::new();
    for (path, text) in COMMON.iter().chain(v.files) {
        let text = render(text, template, &names);
        let file = root.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
        written.push(*path);
    }

    // The name's length decides where lines break: format the source as
    // `cargo fmt` would, when rustfmt is there.
    let lib = root.join("src/lib.rs");
    let formatted = std::process::Command::new("rustfmt")
        .args(["--edition", "2024"])
        .arg(&lib)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !formatted {
        eprintln!("note: rustfmt did not run on src/lib.rs; `cargo fmt` formats it");
    }

    let dir = root.display();
    println!(
        "made {dir}: the plugin {} ({}), {} files",
        args.name,
        template.name(),
        written.len()
    );
    println!("  src/lib.rs                 the plugin and its unit tests");
    println!("  cases/                     golden cases (weft test)");
    println!("  samples/adt-a01.hl7        a sample message");
    println!("  weft.toml                  a configuration that runs it alone");
    println!("  README.md                  how to build, test and deploy it");
    println!();
    println!("next:");
    println!("  cd {dir}");
    println!("  cargo test");
    println!("  cargo build --release --target wasm32-wasip2");
    println!(
        "  weft test --plugin target/wasm32-wasip2/release/{crate_name}.wasm {}cases/",
        v.test_settings.replace("\\\n    ", "")
    );
    println!("  mkdir -p plugins && cp target/wasm32-wasip2/release/{crate_name}.wasm plugins/");
    println!("  weft check --config weft.toml");
    println!();
    println!("the lines for a site's weft.toml (a path relative to it):");
    println!();
    let lines = "[plugins.{{name}}]\npath = \"plugins/{{crate}}.wasm\"\n{{plugin_settings}}\n\
                 [routes.{{name}}]\nmatch = [{{route_match}}]\nplugins = [\"{{name}}\"]\n\
                 destinations = [\"...\"]";
    println!("{}", render(lines, template, &names));
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["north-adt", "a", "lab2-results"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        let long = "a".repeat(MAX_NAME + 1);
        for bad in [
            "", "North", "2lab", "-x", "x-", "a--b", "a_b", "a b", "../x", "é", &long,
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn type_names_are_camel_case() {
        assert_eq!(type_name("north-adt"), "NorthAdt");
        assert_eq!(type_name("lab2-results"), "Lab2Results");
        assert_eq!(type_name("x"), "X");
    }

    #[test]
    fn every_placeholder_is_filled() {
        let names = Names {
            name: "n",
            crate_name: "n",
            type_name: "N",
            sdk: "/s",
        };
        for t in [
            Template::Hl7Rewrite,
            Template::FhirMapping,
            Template::Filter,
        ] {
            for (path, text) in COMMON.iter().chain(t.values().files) {
                let out = render(text, t, &names);
                assert!(!out.contains("{{"), "{path} of {}: {out}", t.name());
            }
        }
    }
}
