//! The Import Set API's answer as typed structs: ServiceNow's `{"import_set", "staging_table",
//! "result": [...]}`. The component schemas `ImportSetResponse` and `ImportResult` of the
//! OpenAPI document (`openapi/schemas.rs`) are checked against bodies serialised from these
//! (`openapi::tests`), field for field.

use serde::Serialize;
use sluice_core::integration::Integration;
use sluice_core::validate::FieldError;
use sluice_store::ImportOutcome;

use crate::wire;

/// `POST /api/now/import/{staging_table}`'s body (and, with a `row`, `GET .../{sys_id}`'s).
#[derive(Debug, Clone, Serialize)]
pub struct ImportSetAnswer {
    /// The import set's number (`ISET0010001`).
    pub import_set: String,
    pub staging_table: String,
    pub result: Vec<ImportResult>,
}

/// One `result[]` element. Field order is ServiceNow's (and the elements' order in XML).
#[derive(Debug, Clone, Serialize)]
pub struct ImportResult {
    pub transform_map: String,
    /// The target table.
    pub table: String,
    /// The target's display field, its value and link: only when the row has a target record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_link: Option<String>,
    /// The row's state: `inserted`, `updated`, `ignored`, `skipped`, `error` (or `pending`).
    pub status: &'static str,
    /// The target record's sys_id, or the staging row's when there is none.
    pub sys_id: String,
    pub staging_sys_id: String,
    /// Every problem, `field: problem; field: problem`, when there are any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// The row's comment or a script's message; `failure` for a row with errors and neither.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
}

impl ImportResult {
    pub fn new(integration: &Integration, o: &ImportOutcome, base: &str) -> Self {
        let target = &integration.target;
        let linked = o.target_sys_id.as_deref();
        let failed = !o.errors.is_empty();
        Self {
            transform_map: integration.definition.transform.name.clone(),
            table: target.name.clone(),
            display_name: linked.map(|_| target.display_field.clone()),
            display_value: linked.map(|_| o.display_value.clone().unwrap_or_default()),
            record_link: linked.map(|sys_id| wire::record_link(base, &target.name, sys_id)),
            status: o.state.as_str(),
            sys_id: o.target_sys_id.clone().unwrap_or_else(|| o.staging_sys_id.to_string()),
            staging_sys_id: o.staging_sys_id.to_string(),
            error_message: failed.then(|| sluice_core::validate::summary(&o.errors)),
            errors: o.errors.clone(),
            status_message: o.status_message.clone().or_else(|| failed.then(|| "failure".to_owned())),
        }
    }
}
