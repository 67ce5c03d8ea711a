//! What site-normalize does to a message, apart from the component glue,
//! so that a test plugin can build the same behaviour into another
//! component (`tests/plugins/site-normalize-b`).

use weft_sdk::hl7::Path;
use weft_sdk::{Error, Message, Result, config, log, lookup};

/// Checks the settings once, at load: a bad `translate` pair or a
/// standard segment in `drop_segments` refuses the version.
pub fn init() -> Result<()> {
    if let Some(spec) = config("translate") {
        for (path, _) in translations(&spec)? {
            Path::parse(path).map_err(|e| {
                Error::failed(format!(
                    "config translate: {path:?} is not an HL7 path: {e}"
                ))
            })?;
        }
    }
    if let Some(spec) = config("drop_segments") {
        droppable(&spec)?;
    }
    Ok(())
}

/// Normalizes one message: the MRN prefix, the translations and the
/// dropped Z-segments, in that order.
pub fn normalize(msg: &Message) -> Result<weft_sdk::hl7::Message> {
    let mut hl7 = msg.hl7()?;
    if let Some(prefix) = config("mrn_prefix").filter(|p| !p.is_empty()) {
        let mrn_type = config("mrn_type").unwrap_or_else(|| "MR".to_string());
        prefix_mrns(&mut hl7, &prefix, &mrn_type)?;
    }
    if let Some(spec) = config("translate") {
        for (path, table) in translations(&spec)? {
            translate(&mut hl7, path, table)?;
        }
    }
    if let Some(spec) = config("drop_segments") {
        let ids = droppable(&spec)?;
        let n = hl7.remove_segments(|s| ids.contains(&s.id()));
        log::debug!("dropped {n} segments");
    }
    Ok(hl7)
}

fn list(spec: &str) -> impl Iterator<Item = &str> {
    spec.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// The `translate` setting's `PATH:table` pairs.
fn translations(spec: &str) -> Result<Vec<(&str, &str)>> {
    list(spec)
        .map(|pair| {
            pair.split_once(':')
                .map(|(path, table)| (path.trim(), table.trim()))
                .ok_or_else(|| {
                    Error::failed(format!("config translate: {pair:?} is not PATH:table"))
                })
        })
        .collect()
}

/// The `drop_segments` setting's segment ids, each a Z-segment.
fn droppable(spec: &str) -> Result<Vec<&str>> {
    let ids: Vec<&str> = list(spec).collect();
    if let Some(bad) = ids.iter().find(|id| !id.starts_with('Z')) {
        return Err(Error::failed(format!(
            "config drop_segments: {bad} is not a Z-segment; only Z-segments may be dropped"
        )));
    }
    Ok(ids)
}

fn prefix_mrns(hl7: &mut weft_sdk::hl7::Message, prefix: &str, mrn_type: &str) -> Result<()> {
    let Some(pid) = hl7.segment("PID") else {
        return Ok(());
    };
    let reps: Vec<(usize, String)> = hl7
        .field(pid, 3)
        .repetitions()
        .enumerate()
        .filter(|(_, r)| r.component(5).value() == mrn_type)
        .map(|(i, r)| (i + 1, r.component(1).value().into_owned()))
        .filter(|(_, id)| !id.is_empty() && !id.starts_with(prefix))
        .collect();
    for (rep, id) in reps {
        hl7.set(&format!("PID-3({rep}).1"), &format!("{prefix}{id}"))?;
    }
    Ok(())
}

fn translate(hl7: &mut weft_sdk::hl7::Message, path: &str, table: &str) -> Result<()> {
    let parsed = Path::parse(path)?;
    let Some(code) = hl7
        .element_at(&parsed)
        .and_then(|e| e.non_empty())
        .map(|v| v.into_owned())
    else {
        return Ok(());
    };
    match lookup(table, &code) {
        Some(mapped) => hl7.set(path, &mapped)?,
        None => {
            // The code is patient data: only its absence is worth a warning.
            log::warn!("{path}: code has no entry in lookup table {table}; kept as is");
            log::debug!("{path}: unmapped code {code:?}");
        }
    }
    Ok(())
}
