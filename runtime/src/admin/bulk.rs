//! A bulk action's selection (a resend or reprocessing of a search's
//! result), shared by the API and the console: the search is checked (at
//! least one condition, no paging, a search by patient only for `phi`),
//! at most [`MAX_BULK`] messages, and acted on only when the count the
//! operator confirmed is still the count.

use super::guard::{Caller, Refused};
use super::tokens::Role;
use crate::journal::query::{Filter, MAX_BULK};
use crate::journal::{Journal, JournalError};

/// What a selection came to.
pub enum Selected {
    /// These messages, and what selected them (for the audit trail).
    Ids(Vec<String>, String),
    /// The count to confirm: none was given, or another than now.
    Confirm {
        /// Messages the search finds now.
        matched: usize,
        /// The count given, if any.
        expected: Option<usize>,
        /// What the search is, in words.
        what: String,
    },
    /// A search that cannot be acted on: why.
    Bad(String),
    /// A search by patient from a caller without the `phi` role.
    NeedsPhi(Refused),
}

/// The messages `query` (the parameters of `GET /messages`) selects for
/// `caller`, if `expect` is their count.
pub fn select(
    journal: &dyn Journal,
    caller: &Caller,
    query: &[(String, String)],
    expect: Option<usize>,
) -> Result<Selected, JournalError> {
    if let Some((k, _)) = query.iter().find(|(k, _)| k == "limit" || k == "page") {
        return Ok(Selected::Bad(format!(
            "filter: {k:?} does not apply to a bulk action, which takes every match"
        )));
    }
    let filter: Filter = match super::filter(query) {
        Ok(f) => f,
        Err(e) => return Ok(Selected::Bad(format!("filter: {e}"))),
    };
    if filter.is_everything() {
        return Ok(Selected::Bad(
            "filter: name at least one condition (a bulk action never takes every message)".into(),
        ));
    }
    if filter.patient.is_some()
        && let Err(refused) = caller.needs(Role::Phi, "a selection by patient")
    {
        return Ok(Selected::NeedsPhi(refused));
    }
    let what = filter.describe();
    let ids = journal.select(&filter, MAX_BULK + 1)?;
    if ids.len() > MAX_BULK {
        return Ok(Selected::Bad(format!(
            "more than {MAX_BULK} messages match ({what}); narrow the filter"
        )));
    }
    let n = ids.len();
    if expect != Some(n) {
        return Ok(Selected::Confirm {
            matched: n,
            expected: expect,
            what,
        });
    }
    Ok(Selected::Ids(ids, format!("; selected {n} by {what}")))
}
