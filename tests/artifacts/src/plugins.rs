/// The plugins Weft ships (crate names), each a component of the embedded
/// default `weft.toml`.
pub const SHIPPED: &[&str] = &[
    "site-normalize",
    "adt-to-fhir",
    "oru-to-fhir",
    "order-to-fhir",
    "siu-to-fhir",
    "vxu-to-fhir",
    "pharmacy-to-fhir",
    "mdm-to-fhir",
    "billing-to-fhir",
    "fhir-to-v2",
];

/// Plugins that exist only for the tests: a hostile one (SDK), one built
/// against a future contract, one written against the raw ABI, and a
/// second version of site-normalize.
pub const TEST_ONLY: &[&str] = &[
    "weft-test-hostile",
    "weft-test-future-contract",
    "weft-test-raw",
    "weft-test-site-normalize-b",
];
