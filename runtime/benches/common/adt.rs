//! The synthetic ADT^A01 message the journal benches fill their journals
//! with.

use weft::journal::NewMessage;

/// Message `n` as the journal holds it: ADT^A01 for patient `n % patients`
/// (two PID-3 identifiers), received 100 ms after message `n - 1`.
pub fn message(n: usize, patients: usize) -> NewMessage {
    let patient = n % patients;
    let control_id = format!("BENCH-{n}");
    let body = format!(
        "MSH|^~\\&|EPIC|EDGE|WEFT|EDGE|20240102030405||ADT^A01^ADT_A01|{control_id}|P|2.5.1\r\
         EVN|A01|20240102030405\r\
         PID|1||MRN{patient:07}^^^EDGE^MR~E{patient:09}^^^HIE^PI||Doe^Jane^Q||19800101|F|||1 Main St^^Springfield^IL^62701\r\
         PV1|1|I|W1^101^1^EDGE||||1234^Smith^John|||MED||||1|||1234^Smith^John|IN|V{n:08}\r"
    );
    NewMessage {
        id: format!("{:08x}-0000-7000-8000-{n:012x}", n / 1000),
        source: "in".into(),
        remote: Some("127.0.0.1:4000".into()),
        peer_subject: None,
        // One message every 100 ms, ending now.
        received_at: 1_764_000_000_000 + n as i64 * 100,
        content_type: "application/hl7-v2".into(),
        body: body.into_bytes(),
        message_type: "ADT^A01".into(),
        control_id,
        sending_application: "EPIC".into(),
        sending_facility: "EDGE".into(),
        route: "adt".into(),
        ordering_keys: Vec::new(),
        patient_ids: vec![format!("MRN{patient:07}"), format!("E{patient:09}")],
        dedup_since: None,
    }
}
