//! `billing-to-fhir`: HL7 v2 BAR (add, update, end, purge a patient
//! account; diagnoses and procedures) and DFT (post charges) to a FHIR R4
//! `transaction` Bundle: the account (PID-18) as an Account with a
//! Coverage per IN1 and its guarantors (GT1), each charge (FT1) as a
//! ChargeItem, the procedures (PR1) and diagnoses (DG1), the Patient (PID)
//! and the Encounter (PV1); a BAR's NK1, AL1 and OBX as adt-to-fhir maps
//! them. See the crate's README for every field mapped
//! and not.
//!
//! Settings: `default_utc_offset`. Lookup tables (all optional):
//! `assigning_authority`, `gender`, `patient_class`, `coding_system`,
//! `allergen_type`, `allergy_severity`, `observation_status`,
//! `abnormal_flag`.

use weft_sdk::hl7::Segment;
use weft_sdk::{Error, Message, Output, Plugin, Result};
use weft_v2fhir::resources::account::{self, AccountCoverage, AccountRef, Terms};
use weft_v2fhir::resources::charge_item::{self, Posting};
use weft_v2fhir::resources::encounter::{self, EncounterRef};
use weft_v2fhir::resources::observation::{self, Around};
use weft_v2fhir::resources::patient::{self, PatientRef};
use weft_v2fhir::resources::{allergy, condition, coverage, procedure, related_person};
use weft_v2fhir::{Bundle, Context};

pub use weft_v2fhir::bundle_resources as resources;

/// The message types this plugin maps.
const TYPES: &[&str] = &[
    "BAR^P01", "BAR^P02", "BAR^P05", "BAR^P06", "BAR^P12", "DFT^P03", "DFT^P11",
];

/// The plugin.
pub struct BillingToFhir;

impl Plugin for BillingToFhir {
    /// A bad `default_utc_offset` refuses the version at load.
    fn init() -> Result<()> {
        weft_v2fhir::check_settings()
    }

    fn transform(msg: Message) -> Result<Vec<Output>> {
        weft_v2fhir::transaction(&msg, MANIFEST.name, TYPES, |ctx, bundle, patient| {
            let charges = ctx.header.message_code == "DFT";
            let encounter = encounter::optional(ctx, bundle, patient)?;
            condition::map_all(ctx, bundle, patient, encounter.as_ref())?;
            let account = account_of(ctx, bundle, patient, encounter.as_ref(), charges)?;
            if charges {
                post_charges(ctx, bundle, patient, encounter.as_ref(), account.as_ref())
            } else {
                let segments = ctx.hl7.segments();
                procedure::map_all(ctx, bundle, segments, patient, encounter.as_ref())?;
                related_person::map_all(ctx, bundle, patient)?;
                allergy::map_all(ctx, bundle, patient)?;
                let around = Around::message(ctx, patient, encounter.as_ref());
                for (i, obx) in ctx.hl7.segments_named("OBX").enumerate() {
                    observation::map(ctx, bundle, obx, i, &around)?;
                }
                other_accounts(ctx, bundle)
            }
        })
    }
}

/// The account of the message's first patient, with a Coverage per IN1
/// (billed in IN1-22's order) and its GT1 guarantors; the Encounter points
/// at it. A BAR without PID-18 is a reject; a DFT posts its charges
/// without an account.
fn account_of(
    ctx: &Context<'_>,
    bundle: &mut Bundle,
    patient: &PatientRef,
    encounter: Option<&EncounterRef>,
    charges: bool,
) -> Result<Option<AccountRef>> {
    let mut coverages = Vec::new();
    for (n, in1) in ctx.hl7.segments_named("IN1").enumerate() {
        if let Some(url) = coverage::map(ctx, bundle, in1, patient)? {
            let priority = account::coverage_priority(ctx, in1, n + 1);
            coverages.push(AccountCoverage { url, priority });
        }
    }
    coverages.sort_by_key(|c| c.priority);
    let mut guarantors = Vec::new();
    for gt1 in ctx.hl7.segments_named("GT1") {
        guarantors.extend(account::guarantor(ctx, bundle, gt1, patient)?);
    }
    let trigger = &ctx.header.trigger_event;
    let terms = Terms {
        status: account::status_for(trigger),
        coverages,
        guarantors,
        required: !charges,
        defines: !charges && account::defined_by(trigger),
    };
    let Some(pid) = ctx.hl7.segment("PID") else {
        return Ok(None);
    };
    let account = account::map(ctx, bundle, pid, patient, terms)?;
    if let (Some(e), Some(a)) = (encounter, &account) {
        bundle.add_to(&e.url, "account", a.reference());
    }
    Ok(account)
}

/// Each FT1 as a ChargeItem, its service the procedures (PR1) of its
/// group (the segments up to the next FT1). A DFT without an FT1 is a
/// reject.
fn post_charges(
    ctx: &Context<'_>,
    bundle: &mut Bundle,
    patient: &PatientRef,
    encounter: Option<&EncounterRef>,
    account: Option<&AccountRef>,
) -> Result<()> {
    let segments = ctx.hl7.segments();
    let starts: Vec<usize> = segments
        .iter()
        .enumerate()
        .filter(|(_, s)| s.id() == "FT1")
        .map(|(i, _)| i)
        .collect();
    if starts.is_empty() {
        return Err(Error::reject(
            "DFT has no FT1 segment: there is no financial transaction to post",
        ));
    }
    for (k, &at) in starts.iter().enumerate() {
        let end = starts.get(k + 1).copied().unwrap_or(segments.len());
        let group: &[Segment] = segments.get(at + 1..end).unwrap_or_default();
        let procedures = procedure::map_all(ctx, bundle, group, patient, encounter)?;
        let posting = Posting {
            encounter,
            account,
            procedures: &procedures,
        };
        charge_item::map(ctx, bundle, &segments[at], patient, &posting)?;
    }
    Ok(())
}

/// A BAR^P02 purges the accounts of several patients: every PID after the
/// first, with its account, as well.
fn other_accounts(ctx: &Context<'_>, bundle: &mut Bundle) -> Result<()> {
    for pid in ctx.hl7.segments_named("PID").skip(1) {
        let other = patient::map(ctx, bundle, pid)?;
        let trigger = &ctx.header.trigger_event;
        let terms = Terms {
            status: account::status_for(trigger),
            required: true,
            defines: account::defined_by(trigger),
            ..Terms::default()
        };
        account::map(ctx, bundle, pid, &other, terms)?;
    }
    Ok(())
}

weft_sdk::export!(BillingToFhir);
weft_sdk::manifest! {
    maps: &[
        "BAR^P01", "BAR^P02", "BAR^P05", "BAR^P06", "BAR^P12", "DFT^P03", "DFT^P11",
    ],
    optional_tables: &[
        "assigning_authority", "gender", "patient_class", "coding_system", "allergen_type",
        "allergy_severity", "observation_status", "abnormal_flag",
    ],
    config: &["default_utc_offset"],
    memory_mib: 64,
    deadline_ms: 200,
}
