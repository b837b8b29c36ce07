//! The answers kept under idempotency keys, encoded once for every backend: a retry on any node
//! of any backend reads what the first request was answered.

use serde_json::{Value, json};
use sluice_core::SysId;
use sluice_core::staging::RowState;
use sluice_core::validate::FieldError;

use crate::{ImportOutcome, StagedSet};

pub fn encode(o: &ImportOutcome) -> String {
    json!({
        "import_set": o.import_set,
        "staging_sys_id": o.staging_sys_id.as_str(),
        "state": o.state.as_str(),
        "target_sys_id": o.target_sys_id,
        "display_value": o.display_value,
        "status_message": o.status_message,
        "errors": o.errors,
    })
    .to_string()
}

pub fn decode(text: &str) -> Option<ImportOutcome> {
    let v: Value = serde_json::from_str(text).ok()?;
    let state: RowState = v["state"].as_str()?.parse().ok()?;
    let text = |k: &str| v[k].as_str().map(str::to_owned);
    Some(ImportOutcome {
        import_set: text("import_set")?,
        staging_sys_id: SysId::parse(v["staging_sys_id"].as_str()?).ok()?,
        state,
        target_sys_id: text("target_sys_id"),
        display_value: text("display_value"),
        status_message: text("status_message"),
        errors: serde_json::from_value::<Vec<FieldError>>(v["errors"].clone()).ok()?,
        replayed: true,
    })
}

pub fn encode_set(s: &StagedSet) -> String {
    json!({"insert_multiple": {"import_set": s.import_set, "number": s.number, "multi_import_set": s.multi_import_set}})
        .to_string()
}

pub fn decode_set(text: &str) -> Option<StagedSet> {
    let v: Value = serde_json::from_str(text).ok()?;
    let set = &v["insert_multiple"];
    let text = |k: &str| set[k].as_str().map(str::to_owned);
    Some(StagedSet {
        import_set: text("import_set")?,
        number: text("number")?,
        multi_import_set: text("multi_import_set")?,
        replayed: true,
        outcomes: Vec::new(),
    })
}
