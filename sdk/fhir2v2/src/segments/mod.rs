//! One builder per v2 segment (or segment group), each from the FHIR
//! resource it is the inverse mapping of.

pub mod msh;
pub mod order;
pub mod pharmacy;
pub mod pid;
pub mod pv1;
