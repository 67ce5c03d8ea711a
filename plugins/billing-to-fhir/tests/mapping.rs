//! billing-to-fhir, run natively through weft_v2fhir::testing.

use billing_to_fhir::BillingToFhir;
use weft_sdk::serde_json::Value;
use weft_v2fhir::testing::{Mapped, Mapping};

const DFT: &str = include_str!("../../../samples/dft-p03.hl7");
const BAR: &str = include_str!("../../../samples/bar-p01.hl7");

fn run(text: &str) -> Mapped {
    Mapping::<BillingToFhir>::new()
        .config("default_utc_offset", "+01:00")
        .bundle(text)
}

fn reason(text: &str) -> String {
    Mapping::<BillingToFhir>::new().reject(text)
}

/// `text` with field `n` of every `seg` segment set to `value`.
fn set(text: &str, seg: &str, n: usize, value: &str) -> String {
    set_nth(text, seg, 0, n, value)
}

/// `text` with field `n` of the `k`th `seg` segment (1 first; 0: every
/// one) set to `value`.
fn set_nth(text: &str, seg: &str, k: usize, n: usize, value: &str) -> String {
    let mut seen = 0;
    text.split('\r')
        .map(|s| {
            if !s.starts_with(&format!("{seg}|")) {
                return s.to_string();
            }
            seen += 1;
            if k != 0 && seen != k {
                return s.to_string();
            }
            let mut f: Vec<String> = s.split('|').map(str::to_string).collect();
            if f.len() <= n {
                f.resize(n + 1, String::new());
            }
            f[n] = value.to_string();
            f.join("|")
        })
        .collect::<Vec<_>>()
        .join("\r")
}

/// `text` without its `seg` segments.
fn without(text: &str, seg: &str) -> String {
    text.split('\r')
        .filter(|s| !s.starts_with(&format!("{seg}|")))
        .collect::<Vec<_>>()
        .join("\r")
}

fn charge<'b>(b: &'b Mapped, transaction: &str) -> &'b Value {
    b.all("ChargeItem")
        .into_iter()
        .find(|c| {
            c["identifier"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["value"] == transaction)
        })
        .unwrap_or_else(|| panic!("no ChargeItem {transaction}"))
}

fn refs(list: &Value) -> Vec<&str> {
    list.as_array()
        .map(|l| {
            l.iter()
                .map(|r| r["reference"].as_str().unwrap_or_default())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn posts_each_charge_with_its_procedure_account_and_visit() {
    let b = run(DFT);
    assert_eq!(b.all("ChargeItem").len(), 2);
    let x_ray = charge(&b, "TX-88001");
    assert_eq!(x_ray["status"], "billable");
    assert_eq!(x_ray["code"]["coding"][0]["code"], "71045");
    assert_eq!(
        x_ray["code"]["coding"][0]["system"],
        "http://www.ama-assn.org/go/cpt"
    );
    assert_eq!(
        x_ray["identifier"][0]["system"],
        "urn:weft:assigning-authority:EDGE"
    );
    assert_eq!(x_ray["subject"]["reference"], b.url_of("Patient"));
    assert_eq!(x_ray["context"]["reference"], b.url_of("Encounter"));
    assert_eq!(refs(&x_ray["account"]), [b.url_of("Account")]);
    assert_eq!(x_ray["occurrenceDateTime"], "2024-03-11T09:30:00+01:00");
    assert_eq!(x_ray["enteredDate"], "2024-03-12T10:15:00+01:00");
    assert_eq!(x_ray["quantity"]["value"], 1);
    assert_eq!(x_ray["priceOverride"]["value"], 85.5);
    assert_eq!(x_ray["priceOverride"]["currency"], "USD");
    assert_eq!(x_ray["reason"][0]["coding"][0]["code"], "R07.9");
    assert_eq!(
        x_ray["reason"][0]["coding"][0]["system"],
        "http://hl7.org/fhir/sid/icd-10"
    );
    assert!(x_ray["performer"][0]["actor"]["reference"].is_string());
    assert_eq!(x_ray["enterer"]["display"], "Billy Clerk");
    // Its service is the PR1 of its group, which has its code.
    let procedure = b.first("Procedure");
    assert_eq!(refs(&x_ray["service"]), [b.url_of("Procedure")]);
    assert_eq!(procedure["status"], "completed");
    assert_eq!(procedure["code"]["coding"][0]["code"], "71045");
    assert_eq!(procedure["category"]["coding"][0]["code"], "D");
    assert_eq!(procedure["performedDateTime"], "2024-03-11T09:30:00+01:00");
    assert_eq!(
        procedure["performer"][0]["function"]["coding"][0]["code"],
        "PRF"
    );
    assert_eq!(procedure["encounter"]["reference"], b.url_of("Encounter"));
    // The second charge's group has no PR1.
    let visit = charge(&b, "TX-88002");
    assert!(visit["service"].is_null());
    assert_eq!(visit["priceOverride"]["value"], 120.0);
    // The account, with its coverage; the visit points at it.
    let account = b.first("Account");
    assert_eq!(account["identifier"][0]["value"], "ACC-7001");
    assert_eq!(account["status"], "active");
    assert_eq!(
        account["coverage"][0]["coverage"]["reference"],
        b.url_of("Coverage")
    );
    assert_eq!(
        refs(&b.first("Encounter")["account"]),
        [b.url_of("Account")]
    );
    assert_eq!(b.first("Condition")["code"]["coding"][0]["code"], "R07.9");
}

#[test]
fn a_charge_without_a_transaction_id_is_keyed_on_the_message_and_its_set_id() {
    let text = set(DFT, "FT1", 2, "");
    let b = run(&text);
    let urls: Vec<String> = b
        .entries()
        .filter(|e| e["resource"]["resourceType"] == "ChargeItem")
        .map(|e| e["fullUrl"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(urls.len(), 2);
    assert_ne!(urls[0], urls[1]);
    // The same message again: the same charges, not new ones.
    let again = run(&text);
    let again: Vec<String> = again
        .entries()
        .filter(|e| e["resource"]["resourceType"] == "ChargeItem")
        .map(|e| e["fullUrl"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(urls, again);
    for c in b.all("ChargeItem") {
        assert_eq!(c["identifier"][0]["system"], "urn:weft:v2fhir:derived");
    }
}

#[test]
fn credits_payments_and_adjustments_are_not_charges() {
    for kind in ["CD", "PY", "AJ", "CO"] {
        let b = run(&set(DFT, "FT1", 6, kind));
        assert!(b.all("ChargeItem").is_empty(), "{kind}");
        // The rest of the message still maps.
        assert_eq!(b.all("Account").len(), 1, "{kind}");
    }
}

#[test]
fn a_charge_needs_a_code_and_takes_the_procedures_when_it_has_no_transaction_code() {
    let no_code = set(set(DFT, "FT1", 7, "").as_str(), "FT1", 25, "");
    let r = reason(&no_code);
    assert!(r.contains("FT1-7 at segment 5"), "{r}");
    assert!(r.contains("FT1-25"), "{r}");
    let b = run(&set_nth(DFT, "FT1", 1, 7, ""));
    let x_ray = charge(&b, "TX-88001");
    assert_eq!(x_ray["code"]["coding"][0]["code"], "71045");
}

#[test]
fn bad_input_is_a_reject_naming_the_field() {
    let r = reason(&set(DFT, "FT1", 11, "lots&USD"));
    assert!(r.contains("FT1-11") && r.contains("not a number"), "{r}");
    let r = reason(&set(DFT, "FT1", 4, "2024-03-11"));
    assert!(r.contains("FT1-4"), "{r}");
    let r = reason(&without(DFT, "FT1"));
    assert!(r.contains("no FT1"), "{r}");
    let r = reason(&set(DFT, "PR1", 3, ""));
    assert!(r.contains("PR1-3"), "{r}");
    let r = reason(&set(BAR, "PID", 18, ""));
    assert!(r.contains("PID-18"), "{r}");
    let r = reason(&set(DFT, "MSH", 8, "ADT^A01^ADT_A01"));
    assert!(r.contains("ADT^A01"), "{r}");
    // Nothing in the reasons is patient data.
    assert!(!r.contains("Sample"));
}

#[test]
fn a_charge_without_an_account_number_is_posted_without_an_account() {
    let b = run(&set(DFT, "PID", 18, ""));
    assert!(b.all("Account").is_empty());
    assert!(charge(&b, "TX-88001")["account"].is_null());
}

#[test]
fn a_charge_over_a_period_has_an_occurrence_period() {
    let b = run(&set(
        DFT,
        "FT1",
        4,
        "20240311093000+0100^20240312120000+0100",
    ));
    let c = charge(&b, "TX-88001");
    assert_eq!(c["occurrencePeriod"]["start"], "2024-03-11T09:30:00+01:00");
    assert_eq!(c["occurrencePeriod"]["end"], "2024-03-12T12:00:00+01:00");
    assert!(c["occurrenceDateTime"].is_null());
}

#[test]
fn an_account_has_its_coverages_in_billing_order_and_its_guarantor() {
    let b = run(BAR);
    let account = b.first("Account");
    assert_eq!(account["status"], "active");
    assert_eq!(account["type"]["coding"][0]["code"], "PBILLACCT");
    assert_eq!(refs(&account["subject"]), [b.url_of("Patient")]);
    let coverages = b
        .entries()
        .filter(|e| e["resource"]["resourceType"] == "Coverage");
    let by_plan: Vec<(String, String)> = coverages
        .map(|e| {
            (
                e["fullUrl"].as_str().unwrap().to_string(),
                e["resource"]["class"][0]["value"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    let listed: Vec<(&str, u64)> = account["coverage"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["coverage"]["reference"].as_str().unwrap(),
                c["priority"].as_u64().unwrap(),
            )
        })
        .collect();
    let plan_of = |url: &str| by_plan.iter().find(|(u, _)| u == url).unwrap().1.clone();
    assert_eq!(listed.len(), 2);
    assert_eq!((plan_of(listed[0].0), listed[0].1), ("PPO-GOLD".into(), 1));
    assert_eq!(
        (plan_of(listed[1].0), listed[1].1),
        ("MEDICARE-B".into(), 2)
    );
    // IN1-22 decides, not the order of the segments.
    let swapped = set_nth(&set_nth(BAR, "IN1", 1, 22, "2"), "IN1", 2, 22, "1");
    let b2 = run(&swapped);
    let first = b2.first("Account")["coverage"][0]["coverage"]["reference"]
        .as_str()
        .unwrap()
        .to_string();
    let plan = b2
        .entries()
        .find(|e| e["fullUrl"] == first.as_str())
        .unwrap()["resource"]["class"][0]["value"]
        .clone();
    assert_eq!(plan, "MEDICARE-B");
    // The guarantor: the spouse, as a RelatedPerson of the patient.
    let guarantor = &account["guarantor"][0]["party"]["reference"];
    let person = b.entries().find(|e| e["fullUrl"] == *guarantor).unwrap()["resource"].clone();
    assert_eq!(person["resourceType"], "RelatedPerson");
    assert_eq!(person["relationship"][0]["coding"][0]["code"], "SPO");
    assert_eq!(person["patient"]["reference"], b.url_of("Patient"));
    assert_eq!(person["name"][0]["family"], "Sample");
    // A patient who is their own guarantor.
    let own = run(&set(BAR, "GT1", 11, "SEL^Self"));
    assert_eq!(
        own.first("Account")["guarantor"][0]["party"]["reference"],
        own.url_of("Patient")
    );
    assert_eq!(
        refs(&b.first("Encounter")["account"]),
        [b.url_of("Account")]
    );
}

#[test]
fn ending_or_purging_an_account_makes_it_inactive() {
    for (event, status) in [
        ("P01", "active"),
        ("P05", "active"),
        ("P06", "inactive"),
        ("P02", "inactive"),
        ("P12", "active"),
    ] {
        let text = set(BAR, "MSH", 8, &format!("BAR^{event}^BAR_{event}"));
        assert_eq!(run(&text).first("Account")["status"], status, "{event}");
    }
    // A purge names several patients, each with their account.
    let second = "PID|2||654321^^^EDGE^MR||Other^Pat||19700101|M||||||||||ACC-7002^^^EDGE^AN";
    let text =
        set(BAR, "MSH", 8, "BAR^P02^BAR_P02").replacen("\rPV1|", &format!("\r{second}\rPV1|"), 1);
    let b = run(&text);
    let accounts = b.all("Account");
    assert_eq!(accounts.len(), 2);
    assert!(accounts.iter().all(|a| a["status"] == "inactive"));
    assert_eq!(b.all("Patient").len(), 2);
}

#[test]
fn a_procedure_with_its_own_identifier_is_keyed_on_it() {
    let b = run(&set(DFT, "PR1", 19, "PROC-1^EDGE"));
    let p = b.first("Procedure");
    assert_eq!(p["identifier"][0]["value"], "PROC-1");
    assert_eq!(p["identifier"].as_array().unwrap().len(), 1);
}

#[test]
fn the_corpus_charges_map() {
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/corpus/hl7v2/fhir-converter");
    for (file, charges) in [("DFT-P03-01.hl7", 2), ("DFT-P11-01.hl7", 2)] {
        let text = std::fs::read_to_string(corpus.join(file)).unwrap();
        let b = run(&text);
        assert_eq!(b.all("ChargeItem").len(), charges, "{file}");
        assert_eq!(b.all("Account").len(), 1, "{file}");
    }
}

/// The request of the Bundle's Account entry.
fn account_request(b: &Mapped) -> Value {
    b.entries()
        .find(|e| e["resource"]["resourceType"] == "Account")
        .unwrap()["request"]
        .clone()
}

#[test]
fn only_an_account_event_replaces_the_account() {
    // BAR^P01/P05/P06/P02 state the account: PUT.
    let put = account_request(&run(BAR));
    assert_eq!(put["method"], "PUT");
    assert_eq!(
        put["url"],
        "Account?identifier=urn:weft:assigning-authority:EDGE|ACC-7001"
    );
    // A charge, or a diagnosis update, only refers to it: created if the
    // server has none, never replaced (its coverages are not wiped).
    for text in [DFT.to_string(), set(BAR, "MSH", 8, "BAR^P12^BAR_P12")] {
        let r = account_request(&run(&text));
        assert_eq!(r["method"], "POST");
        assert_eq!(r["url"], "Account");
        assert_eq!(
            r["ifNoneExist"],
            "identifier=urn:weft:assigning-authority:EDGE|ACC-7001"
        );
    }
}
