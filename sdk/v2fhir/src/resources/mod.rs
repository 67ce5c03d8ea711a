//! One mapper per FHIR resource, each from the segment the V2-to-FHIR IG
//! maps it from. Each adds its resource to the [`crate::Bundle`] and
//! returns what other resources need to reference it.

pub mod account;
pub mod allergy;
pub mod appointment;
pub mod charge_item;
pub mod condition;
pub mod coverage;
pub mod diagnostic_report;
pub mod document_reference;
pub mod dosage;
pub mod encounter;
pub mod immunization;
pub mod location;
pub mod medication;
pub mod medication_administration;
pub mod medication_dispense;
pub mod medication_request;
pub mod observation;
pub mod patient;
pub mod practitioner;
pub mod procedure;
pub mod referral;
pub mod related_person;
pub mod service_request;
pub mod specimen;
pub mod us_core;
