//! HL7 v2 to FHIR R4, in pieces a plugin puts together.
//!
//! Weft's shipped mapping plugins (`adt-to-fhir`, `oru-to-fhir`,
//! `order-to-fhir`, `siu-to-fhir`, `vxu-to-fhir`, `pharmacy-to-fhir`, `mdm-to-fhir`,
//! `billing-to-fhir`) are a
//! few dozen lines each on top of this crate, and a site's own mapping plugin can reuse the
//! same pieces:
//!
//! - [`Context`]: the message, its header, the site's time zone, field
//!   names for reject reasons;
//! - [`datatypes`]: CX, EI, XPN, XCN, XAD, XTN, CWE, NM to FHIR types;
//! - [`codes`]: coding-system names to URIs and the v2 tables FHIR
//!   requires codes from, each overridable by a site lookup table;
//! - [`Bundle`]: a `transaction` Bundle of conditional requests with
//!   deterministic `urn:uuid:` fullUrls;
//! - [`resources`]: one mapper per FHIR resource;
//! - `testing` (native builds only): run a mapping in `cargo test` and
//!   look inside the Bundle it makes.
//!
//! Rules every mapper keeps: a message that cannot be mapped faithfully
//! (no PID-3, an impossible date, a required code with no mapping) is
//! rejected with a reason naming segment and field, never the value (it
//! may be patient data); an unknown optional code is left out or kept as
//! sent, with a warning in the log.

pub mod bundle;
pub mod codes;
pub mod context;
pub mod datatypes;
pub mod groups;
pub mod ids;
pub mod resources;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
pub mod time;

pub use bundle::{Bundle, Identity, resources as bundle_resources};
pub use context::{Context, check_settings};

use resources::patient::{self, PatientRef};
use weft_sdk::{Message, Output, Result};

/// The frame of a mapping plugin: parses `msg`, checks MSH-9 against the
/// `types` the plugin maps (`CODE^TRIGGER`; any other is a reject naming
/// `plugin`), maps PID to the Patient (a reject when it cannot), runs
/// `body` for the rest, and returns the transaction Bundle as the one
/// output. Pass the plugin's own name from its crate metadata:
/// `MANIFEST.name`, which [`weft_sdk::manifest!`] defines.
///
/// ```no_run
/// # use weft_sdk::{Message, Output, Result};
/// # use weft_v2fhir::resources::condition;
/// weft_sdk::manifest! { maps: &["ADT^A08"] }
///
/// fn transform(msg: Message) -> Result<Vec<Output>> {
///     weft_v2fhir::transaction(&msg, MANIFEST.name, &["ADT^A08"], |ctx, bundle, patient| {
///         condition::map_all(ctx, bundle, patient, None)?;
///         Ok(())
///     })
/// }
/// ```
pub fn transaction(
    msg: &Message,
    plugin: &str,
    types: &[&str],
    body: impl FnOnce(&Context<'_>, &mut Bundle, &PatientRef) -> Result<()>,
) -> Result<Vec<Output>> {
    transaction_with(msg, plugin, types, patient::required, body)
}

/// [`transaction`] with the Patient mapped by `patient_of` instead of
/// [`patient::required`] (an A47 matches the Patient on MRG-1's prior
/// identifier, say).
pub fn transaction_with(
    msg: &Message,
    plugin: &str,
    types: &[&str],
    patient_of: impl FnOnce(&Context<'_>, &mut Bundle) -> Result<PatientRef>,
    body: impl FnOnce(&Context<'_>, &mut Bundle, &PatientRef) -> Result<()>,
) -> Result<Vec<Output>> {
    let hl7 = msg.hl7()?;
    let ctx = Context::new(&hl7)?;
    ctx.require_type(plugin, types)?;
    let mut bundle = Bundle::new();
    let patient = patient_of(&ctx, &mut bundle)?;
    body(&ctx, &mut bundle, &patient)?;
    Ok(vec![bundle.into_output()])
}
