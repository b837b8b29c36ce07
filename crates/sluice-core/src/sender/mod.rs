//! Sender bodies split into row documents: each document becomes one staging row (its stored
//! payload) and is staged by the integration's pointers, like any Import Set API body. No IO:
//! the hook route reads the body, this turns it into documents, the pipeline does the rest.

mod alertmanager;
mod generic_json;
pub mod pagerduty;

use serde_json::{Map, Value};

use crate::integration::SenderFormat;

pub use alertmanager::GROUP_KEYS;

/// The rows of one sender body, in the order they were sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Documents {
    pub rows: Vec<Map<String, Value>>,
    /// Alertmanager's `truncatedAlerts`: alerts the sender left out of the body (`max_alerts`).
    pub truncated_alerts: u64,
}

/// A body that is not what its format says. The message names the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SenderError {
    #[error("{0}")]
    Shape(String),
    #[error("version {found} is not supported: this hook takes Alertmanager's webhook payload version \"4\"")]
    Version { found: String },
    #[error("format {0} is not taken at the sender hook")]
    NotASender(SenderFormat),
}

/// Splits a parsed body by the integration's format.
pub fn split(format: SenderFormat, body: Value) -> Result<Documents, SenderError> {
    match format {
        SenderFormat::Alertmanager => alertmanager::split(body),
        SenderFormat::GenericJson => generic_json::split(body),
        other => Err(SenderError::NotASender(other)),
    }
}
