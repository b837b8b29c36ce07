//! Dry run: what posting a payload would do, computed without writing anything. The same steps as
//! [`crate::intake`] (stage, contract, field map, business rules), but the database is only read:
//! reference lookups and the coalesce search use [`Store::get`] and [`Store::list`] with
//! encoded-query filters, nothing is staged, no referenced record is created and no number is
//! drawn. Like any read, the answer can differ from a later post if data changes in between.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sluice_core::integration::{Integration, OnUnknown};
use sluice_core::query::EncodedQuery;
use sluice_core::rules::{self, Actor, RuleViolation};
use sluice_core::schema::TableSchema;
use sluice_core::transform::{Lookup, Plan};
use sluice_core::validate::{ErrorCode, FieldError};
use sluice_core::{DateTime, Record, SysId, contract, staging};
use sluice_store::{ListQuery, Store};

use crate::AppState;
use crate::error::ApiResult;

/// What one reference lookup would find.
enum Found {
    Record(String),
    Missing,
}

/// The `result` of a dry run.
pub async fn run(
    state: &AppState,
    integration: &Integration,
    actor: &Actor,
    payload: &serde_json::Map<String, Value>,
) -> ApiResult<Value> {
    let staged = staging::stage(integration, payload);
    let plan = match contract::verdict(integration, payload, &staged) {
        Ok(plan) => plan,
        Err(errors) => return Ok(error_result(errors, Vec::new(), None)),
    };
    let store = state.store.as_ref();
    let registry = state.registry();
    let mut set = plan.set.clone();
    let mut references = Vec::new();
    let mut notes = Vec::new();
    let mut rejected = Vec::new();
    for lookup in &plan.lookups {
        let Some(schema) = registry.catalog.get(&lookup.table).cloned() else { continue };
        let found = find_reference(store, schema, lookup).await?;
        let outcome = match (&found, lookup.on_unknown) {
            (Found::Record(sys_id), _) => {
                set.insert(lookup.target_field.clone(), sys_id.clone());
                "found"
            }
            (Found::Missing, OnUnknown::Create) => "would_create",
            (Found::Missing, OnUnknown::Ignore) => {
                notes.push(format!(
                    "{}: no {} matches {:?}; {} left empty",
                    lookup.source_field, lookup.table, lookup.value, lookup.target_field
                ));
                "ignored"
            }
            (Found::Missing, OnUnknown::Reject) => {
                rejected.push(FieldError {
                    code: ErrorCode::UnknownReference,
                    field: lookup.source_field.clone(),
                    message: format!("no {} matches {:?}", lookup.table, lookup.value),
                    path: None,
                });
                "rejected"
            }
        };
        references.push(json!({
            "field": lookup.target_field,
            "source": lookup.source_field,
            "table": lookup.table,
            "value": lookup.value,
            "result": outcome,
            "sys_id": match &found { Found::Record(id) => Some(id), Found::Missing => None },
        }));
    }
    let note = (!notes.is_empty()).then(|| notes.join("; "));
    if !rejected.is_empty() {
        contract::add_paths(integration, &mut rejected);
        return Ok(error_result(rejected, references, note));
    }

    let target = integration.target.clone();
    let existing = if plan.coalesce_given() {
        find_coalesce_target(store, target.clone(), &plan).await?
    } else if !plan.coalesce.is_empty() && !plan.create_on_empty_coalesce {
        return Ok(json!({
            "status": "would_skip",
            "status_message": "Unable to resolve target record, coalesce values not present",
            "target_table": target.name,
            "target_sys_id": null,
            "number": null,
            "values": {},
            "references": references,
            "errors": [],
        }));
    } else {
        None
    };
    let now = DateTime::now();
    let applied = match &existing {
        Some(record) => {
            for (field, _) in &plan.coalesce {
                set.remove(field);
            }
            rules::update_incident(record, &set, actor, now)
        }
        None => rules::insert_incident(&target, &set, actor, now),
    };
    let applied = match applied {
        Ok(applied) => applied,
        Err(RuleViolation::MandatoryFields { fields, .. }) => {
            let message = format!("mandatory when the state is Resolved or Closed (missing: {})", fields.join(", "));
            let errors = fields
                .into_iter()
                .map(|field| FieldError { code: ErrorCode::DataPolicy, field, message: message.clone(), path: None })
                .collect();
            return Ok(error_result(errors, references, note));
        }
    };
    let values: BTreeMap<&String, &String> =
        applied.record.iter().filter(|(k, v)| !v.is_empty() && !k.starts_with("sys_")).collect();
    let changes: Vec<Value> =
        applied.changes.iter().map(|c| json!({"field": c.field, "old": c.old, "new": c.new})).collect();
    let (status, sys_id, number) = match &existing {
        None => ("would_insert", None, None),
        Some(record) => {
            let status = if applied.changes.is_empty() { "would_ignore" } else { "would_update" };
            (status, record.get("sys_id").cloned(), record.get(&target.display_field).cloned())
        }
    };
    let mut result = json!({
        "status": status,
        "target_table": target.name,
        "target_sys_id": sys_id,
        "number": number,
        "values": values,
        "changes": changes,
        "references": references,
        "errors": [],
    });
    if let Some(note) = note {
        result["status_message"] = json!(note);
    }
    Ok(result)
}

fn error_result(errors: Vec<FieldError>, references: Vec<Value>, note: Option<String>) -> Value {
    let mut result = json!({
        "status": "error",
        "target_sys_id": null,
        "number": null,
        "values": {},
        "references": references,
        "error_message": sluice_core::validate::summary(&errors),
        "errors": errors,
    });
    if let Some(note) = note {
        result["status_message"] = json!(note);
    }
    result
}

/// A field a list filter applies to (others are dropped from a query, not refused).
fn queryable(schema: &TableSchema, field: &str) -> bool {
    schema.visible_field(field).is_some_and(|f| f.kind != sluice_core::schema::FieldKind::Journal)
}

fn first_match(filter: EncodedQuery) -> ListQuery {
    ListQuery { filter, limit: 1, offset: 0 }
}

/// As the import resolves a reference: a sys_id of an existing record, else the first record
/// (oldest first) whose match field equals the value, ignoring case.
async fn find_reference(store: &dyn Store, schema: std::sync::Arc<TableSchema>, lookup: &Lookup) -> ApiResult<Found> {
    if SysId::is_valid(&lookup.value) && store.get(schema.clone(), lookup.value.clone()).await?.is_some() {
        return Ok(Found::Record(lookup.value.clone()));
    }
    for field in lookup.match_fields.iter().filter(|f| queryable(&schema, f)) {
        let mut filter = EncodedQuery::default();
        filter.and_equals(field, &lookup.value);
        let page = store.list(schema.clone(), first_match(filter)).await?;
        if let Some(record) = page.records.first() {
            return Ok(Found::Record(record["sys_id"].clone()));
        }
    }
    Ok(Found::Missing)
}

/// As the import finds the record to update: every coalesce value equal (ignoring case), active
/// records only when the map says so, the oldest first.
async fn find_coalesce_target(
    store: &dyn Store,
    schema: std::sync::Arc<TableSchema>,
    plan: &Plan,
) -> ApiResult<Option<Record>> {
    // A condition the store cannot apply would be dropped and match every record.
    if !plan.coalesce.iter().all(|(field, _)| queryable(&schema, field)) {
        return Ok(None);
    }
    let mut filter = EncodedQuery::default();
    for (field, value) in &plan.coalesce {
        filter.and_equals(field, value);
    }
    if plan.coalesce_active_only && schema.field("active").is_some() {
        filter.and_equals("active", "true");
    }
    let page = store.list(schema, first_match(filter)).await?;
    Ok(page.records.into_iter().next())
}
