//! The drug of a pharmacy order, dispense or administration (RXE-2, RXO-1,
//! RXD-2, RXA-5, with the dosage form and the RXC components): a
//! Medication resource when the drug is coded in NDC or RxNorm or is a
//! compound of components, else a CodeableConcept in the resource itself.

use weft_sdk::hl7::Segment;
use weft_sdk::serde_json::{Map, Value, json};
use weft_sdk::{Error, Result};

use crate::bundle::{Bundle, reference};
use crate::context::Context;
use crate::datatypes::{code_key, codeable, decimal, put, put_list, quantity};

/// The NDC code system.
pub const NDC: &str = "http://hl7.org/fhir/sid/ndc";
/// The RxNorm code system.
pub const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";

/// Where a drug is read from: the segment, its code field and its dosage
/// form field, and the components (RXC) that follow it.
pub struct Drug<'m> {
    /// RXE, RXO, RXD or RXA.
    pub seg: &'m Segment,
    /// The field of the code (RXE-2, RXO-1, RXD-2, RXA-5).
    pub code: usize,
    /// What the code field is called in the standard, for a reject.
    pub code_name: &'static str,
    /// The field of the dosage form (RXE-6, RXO-5, RXD-6, RXA-8), if any.
    pub form: Option<usize>,
    /// The components of a compound.
    pub rxc: &'m [&'m Segment],
}

/// The drug as the resource holds it: `medicationReference` to a
/// Medication in the Bundle, or `medicationCodeableConcept`.
pub struct MedicationRef {
    /// The element's name in the resource.
    pub key: &'static str,
    /// Its value.
    pub value: Value,
    /// What identifies the drug in derived keys: its first code, else its
    /// text.
    pub code_key: String,
}

impl MedicationRef {
    /// Puts the drug into `resource` under its element name.
    pub fn put_into(&self, resource: &mut Map<String, Value>) {
        resource.insert(self.key.into(), self.value.clone());
    }
}

/// Maps the drug of `drug`. A drug with neither code nor text is a reject
/// naming its field: no order, dispense or administration can be recorded
/// without what was given.
pub fn map(ctx: &Context<'_>, bundle: &mut Bundle, drug: &Drug<'_>) -> Result<MedicationRef> {
    let code = codeable(&ctx.field(drug.seg, drug.code).repetition(1), "").ok_or_else(|| {
        Error::reject(format!(
            "{} ({}) is empty: a medication needs a code or a text",
            ctx.name(drug.seg, drug.code),
            drug.code_name
        ))
    })?;
    let key = code_key(&code);
    let standard = code["coding"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| matches!(c["system"].as_str(), Some(NDC | RXNORM)));
    let mut ingredients = Vec::new();
    let mut ingredient_keys = Vec::new();
    for rxc in drug.rxc {
        if let Some((ingredient, k)) = ingredient(ctx, rxc)? {
            ingredients.push(ingredient);
            ingredient_keys.push(k);
        }
    }
    let form = drug
        .form
        .and_then(|f| codeable(&ctx.field(drug.seg, f).repetition(1), ""));
    if !standard && ingredients.is_empty() {
        return Ok(MedicationRef {
            key: "medicationCodeableConcept",
            value: code,
            code_key: key,
        });
    }
    let mut m = Map::new();
    m.insert("resourceType".into(), "Medication".into());
    let system = code["coding"][0]["system"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    m.insert("code".into(), code);
    let form_key = form.as_ref().map(code_key).unwrap_or_default();
    put(&mut m, "form", form);
    put_list(&mut m, "ingredient", ingredients);
    // A Medication is the drug, not the patient's: the same code, form
    // and components are the same resource in every message.
    let identity = format!(
        "medication|{system}|{key}|{form_key}|{}",
        ingredient_keys.join("+")
    );
    let url = bundle.put_derived("Medication", &identity, m);
    Ok(MedicationRef {
        key: "medicationReference",
        value: reference(&url),
        code_key: key,
    })
}

/// One RXC (component type, code, amount, units, strength, strength
/// units) to a Medication ingredient: the component's code, whether it is
/// active (an additive, `A`) or the base it is given in (`B`), and its
/// amount per unit of the medication. `None` when the component has no
/// code or text.
fn ingredient(ctx: &Context<'_>, rxc: &Segment) -> Result<Option<(Value, String)>> {
    let Some(item) = codeable(&ctx.field(rxc, 2).repetition(1), "") else {
        return Ok(None);
    };
    let key = code_key(&item);
    let mut i = Map::new();
    i.insert("itemCodeableConcept".into(), item);
    match ctx.text(rxc, 1).as_str() {
        "A" => {
            i.insert("isActive".into(), Value::Bool(true));
        }
        "B" => {
            i.insert("isActive".into(), Value::Bool(false));
        }
        _ => {}
    }
    // The strength (RXC-5/6) when sent, else the amount (RXC-3/4): a
    // ratio to one unit of the medication.
    let amount = match decimal(&ctx.name(rxc, 5), &ctx.text(rxc, 5))? {
        Some(n) => Some(quantity(n, &ctx.field(rxc, 6).repetition(1))),
        None => decimal(&ctx.name(rxc, 3), &ctx.text(rxc, 3))?
            .map(|n| quantity(n, &ctx.field(rxc, 4).repetition(1))),
    };
    if let Some(numerator) = amount {
        i.insert(
            "strength".into(),
            json!({"numerator": numerator, "denominator": {"value": 1}}),
        );
    }
    Ok(Some((Value::Object(i), key)))
}
