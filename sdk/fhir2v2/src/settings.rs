//! The settings every FHIR-to-v2 plugin reads: who sends and receives
//! (MSH-3 to MSH-6), the processing id (MSH-11) and the order message
//! older lab systems need.

use weft_sdk::{Error, Result, config};

use crate::write::Composite;

/// The message an order becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderMessage {
    /// `OML^O21^OML_O21`: laboratory order, with SPM specimens (default).
    Oml,
    /// `ORM^O01^ORM_O01`: general order, for systems older than v2.5.
    Orm,
}

/// The settings, read from the plugin's configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// MSH-3 (HD, `^`-separated components); default `WEFT`.
    pub sending_application: Composite,
    /// MSH-4; default empty.
    pub sending_facility: Composite,
    /// MSH-5; default empty.
    pub receiving_application: Composite,
    /// MSH-6; default empty.
    pub receiving_facility: Composite,
    /// MSH-11: `P` (default), `T` or `D`.
    pub processing_id: String,
    /// `order_message`: `OML^O21` (default) or `ORM^O01`.
    pub order_message: OrderMessage,
}

fn hd(key: &str, default: &str) -> Composite {
    let text = config(key).unwrap_or_else(|| default.to_string());
    let mut c = Composite::new();
    for (i, part) in text.split('^').take(3).enumerate() {
        c.set(i + 1, part.trim());
    }
    c
}

impl Settings {
    /// Reads and checks the settings; a bad value is an error naming the
    /// key (at load, [`weft_sdk::Plugin::init`] refuses the version).
    pub fn read() -> Result<Settings> {
        let processing_id = config("processing_id").unwrap_or_else(|| "P".into());
        if !matches!(processing_id.as_str(), "P" | "T" | "D") {
            return Err(Error::failed(format!(
                "config processing_id {processing_id:?} is not P, T or D"
            )));
        }
        let order_message = match config("order_message").as_deref() {
            None | Some("OML^O21") => OrderMessage::Oml,
            Some("ORM^O01") => OrderMessage::Orm,
            Some(other) => {
                return Err(Error::failed(format!(
                    "config order_message {other:?} is not OML^O21 or ORM^O01"
                )));
            }
        };
        Ok(Settings {
            sending_application: hd("sending_application", "WEFT"),
            sending_facility: hd("sending_facility", ""),
            receiving_application: hd("receiving_application", ""),
            receiving_facility: hd("receiving_facility", ""),
            processing_id,
            order_message,
        })
    }
}
