//! The staging row both backends write for a received record, and its outcome columns: the same
//! fields whatever the database.

use std::collections::BTreeMap;

use sluice_core::rules::{self, Actor};
use sluice_core::schema::TableSchema;
use sluice_core::validate::summary;
use sluice_core::{DateTime, Record, SysId};

use crate::{ImportOutcome, ProcessJob, StageBatch};

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

/// A staged row's outcome read back from the columns [`outcome_fields`] wrote, as part of import
/// set `import_set`, with the target's display value (the row does not keep it). A state
/// that is none of the known ones counts as `pending`: the row is not done.
pub fn outcome_of(row: &Record, import_set: &str, display_value: Option<String>) -> crate::Result<ImportOutcome> {
    let field = |name: &str| row.get(name).map(String::as_str).unwrap_or_default();
    let target = field("sys_target_sys_id");
    let staging_sys_id = SysId::parse(field("sys_id")).map_err(|e| crate::StoreError::Corrupt(e.to_string()))?;
    Ok(ImportOutcome {
        import_set: import_set.to_owned(),
        staging_sys_id,
        state: field("sys_import_state").parse().unwrap_or(sluice_core::staging::RowState::Pending),
        target_sys_id: (!target.is_empty()).then(|| target.to_owned()),
        display_value,
        status_message: Some(field("sys_import_state_comment")).filter(|m| !m.is_empty()).map(str::to_owned),
        errors: serde_json::from_str::<Vec<sluice_core::validate::FieldError>>(field("sys_row_errors"))
            .unwrap_or_default(),
        replayed: false,
    })
}

/// Today's import set of staging table `table` for single imports (ServiceNow's web-service
/// import sets): `synchronous`, `loading` until the first import of a new day closes it.
pub fn synchronous_import_set(schema: &TableSchema, number: &str, table: &str, actor: &Actor, now: DateTime) -> Record {
    let fields = [("number", number), ("table_name", table), ("mode", "synchronous"), ("state", "loading")];
    rules::insert_simple(schema, &fields, actor, now)
}

/// The import set of one `insertMultiple` request, in multi import set `multi`: `asynchronous`,
/// `processed` at once when every row is settled as it is staged, else `loaded` until the
/// worker has done its rows.
pub fn asynchronous_import_set(schema: &TableSchema, number: &str, multi: &str, batch: &StageBatch) -> Record {
    let all_judged = !batch.rows.is_empty() && batch.rows.iter().all(|r| r.verdict.is_some());
    let fields = [
        ("number", number),
        ("table_name", batch.staging.name.as_str()),
        ("mode", "asynchronous"),
        ("state", if all_judged { "processed" } else { "loaded" }),
        ("multi_import_set", multi),
        ("request_body", batch.request_body.as_deref().unwrap_or_default()),
    ];
    rules::insert_simple(schema, &fields, &batch.actor, batch.now)
}

/// The columns a staged row is updated with when it is processed (again): what the current
/// definition staged from its payload, its outcome, the definition that processed it, and who
/// and when (`mod_count`: its count before).
pub fn processed_fields<'a>(job: &'a ProcessJob, outcome: &ImportOutcome, mod_count: i64) -> Vec<(&'a str, String)> {
    let mut set: Vec<(&str, String)> = job
        .staging
        .stored_fields()
        .filter(|f| !f.name.starts_with("sys_"))
        .map(|f| (f.name.as_str(), job.columns.get(&f.name).cloned().unwrap_or_default()))
        .collect();
    set.extend(outcome_fields(outcome));
    set.extend([
        ("sys_integration_version", job.integration_version.clone()),
        ("sys_transform_map", job.transform_map.clone()),
        ("sys_target_table", job.target.name.clone()),
        ("sys_updated_on", job.now.to_string()),
        ("sys_updated_by", job.actor.user_name.clone()),
        ("sys_mod_count", (mod_count + 1).to_string()),
    ]);
    set
}
