//! The staging row both backends write for a received record, and its outcome columns: the same
//! fields whatever the database.

use std::collections::BTreeMap;

use sluice_core::rules::{self, Actor};
use sluice_core::schema::TableSchema;
use sluice_core::validate::summary;
use sluice_core::{DateTime, Record, SysId};

use crate::ImportOutcome;

/// A new staging row: the system fields, the integration's columns the schema has, and `system`.
pub fn staging_row(
    staging: &TableSchema,
    sys_id: &SysId,
    columns: &BTreeMap<String, String>,
    system: &[(&str, &str)],
    actor: &Actor,
    now: DateTime,
) -> Record {
    let mut row = rules::insert_simple(staging, &[], actor, now);
    row.insert("sys_id".into(), sys_id.to_string());
    for (k, v) in columns {
        if staging.field(k).is_some() {
            row.insert(k.clone(), v.clone());
        }
    }
    for (k, v) in system {
        row.insert((*k).into(), (*v).into());
    }
    row
}

/// A row's outcome as staging-row columns (state, comment, target, errors).
pub fn outcome_fields(outcome: &ImportOutcome) -> Vec<(&'static str, String)> {
    let errors_json = if outcome.errors.is_empty() {
        String::new()
    } else {
        serde_json::to_string(&outcome.errors).unwrap_or_default()
    };
    vec![
        ("sys_import_state", outcome.state.as_str().to_owned()),
        ("sys_import_state_comment", outcome.status_message.clone().unwrap_or_default()),
        ("sys_target_sys_id", outcome.target_sys_id.clone().unwrap_or_default()),
        ("sys_row_error", summary(&outcome.errors)),
        ("sys_row_errors", errors_json),
    ]
}
