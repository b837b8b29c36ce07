//! One imported row inside the writer's transaction: stage it, resolve references, find the
//! coalesce target, apply the business rules, write the incident, its audit rows and the row's
//! outcome. Running inside the single writer makes numbering and coalescing race-free.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, params};
use sluice_core::integration::OnUnknown;
use sluice_core::number;
use sluice_core::rules::{self, Actor};
use sluice_core::schema::TableSchema;
use sluice_core::staging::RowState;
use sluice_core::tables::{self, Catalog};
use sluice_core::transform::{Lookup, Plan, TargetSearch};
use sluice_core::validate::{ErrorCode, FieldError};
use sluice_core::{DateTime, Record, SysId};

use crate::{history, import_slot, records, reference_cache};
pub(crate) use sluice_store::staging_row::outcome_fields;
use sluice_store::{ImportJob, ImportOutcome};

pub fn next_number(conn: &Connection, prefix: &str) -> rusqlite::Result<String> {
    super::numbers::next(conn, prefix)
}

/// The staging table's import set in state `loading`, created when there is none today
/// (ServiceNow closes web-service import sets at midnight).
fn current_import_set(
    conn: &Connection,
    catalog: &Catalog,
    table: &str,
    actor: &Actor,
    now: DateTime,
) -> rusqlite::Result<(String, String)> {
    let today = now.to_string()[..10].to_owned();
    let found: Option<(String, String, String)> = conn
        .prepare_cached(
            "SELECT sys_id, number, sys_created_on FROM sys_import_set
             WHERE table_name = ?1 AND state = 'loading' ORDER BY rowid DESC LIMIT 1",
        )?
        .query_row([table], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    if let Some((sys_id, number, created)) = found {
        if created.starts_with(&today) {
            return Ok((sys_id, number));
        }
        conn.prepare_cached("UPDATE sys_import_set SET state = 'processed', sys_updated_on = ?2 WHERE sys_id = ?1")?
            .execute(params![sys_id, now.to_string()])?;
    }
    let number = next_number(conn, number::IMPORT_SET_PREFIX)?;
    let schema = catalog.get(tables::SYS_IMPORT_SET).expect("built-in table");
    let record = rules::insert_simple(
        schema,
        &[("number", &number), ("table_name", table), ("mode", "synchronous"), ("state", "loading")],
        actor,
        now,
    );
    records::insert(conn, schema, &record)?;
    Ok((record["sys_id"].clone(), number))
}

struct Resolved {
    set: BTreeMap<String, String>,
    notes: Vec<String>,
    rejected: Vec<FieldError>,
}

/// Resolves reference values: a sys_id of an existing record, else the first record whose match
/// field equals the value (case-insensitive), else the lookup's `on_unknown` action.
fn resolve(
    conn: &Connection,
    catalog: &Catalog,
    plan: &Plan,
    actor: &Actor,
    now: DateTime,
) -> rusqlite::Result<Resolved> {
    let mut out = Resolved { set: plan.set.clone(), notes: Vec::new(), rejected: Vec::new() };
    for lookup in &plan.lookups {
        let Some(schema) = catalog.get(&lookup.table) else { continue };
        let found = match reference_cache::get(lookup) {
            Some(sys_id) => Some(sys_id),
            None => {
                let found = find_reference(conn, schema, lookup)?;
                if let Some(sys_id) = &found {
                    reference_cache::put(lookup, sys_id);
                }
                found
            }
        };
        match found {
            Some(sys_id) => {
                out.set.insert(lookup.target_field.clone(), sys_id);
            }
            None => match lookup.on_unknown {
                OnUnknown::Create => {
                    let record = new_referenced(schema, &lookup.value, actor, now);
                    records::insert(conn, schema, &record)?;
                    reference_cache::put(lookup, &record["sys_id"]);
                    out.set.insert(lookup.target_field.clone(), record["sys_id"].clone());
                }
                OnUnknown::Ignore => out.notes.push(format!(
                    "{}: no {} matches {:?}; {} left empty",
                    lookup.source_field, lookup.table, lookup.value, lookup.target_field
                )),
                OnUnknown::Reject => out.rejected.push(FieldError {
                    code: ErrorCode::UnknownReference,
                    field: lookup.source_field.clone(),
                    message: format!("no {} matches {:?}", lookup.table, lookup.value),
                    path: None,
                }),
            },
        }
    }
    Ok(out)
}

pub(crate) fn find_reference(
    conn: &Connection,
    schema: &TableSchema,
    lookup: &Lookup,
) -> rusqlite::Result<Option<String>> {
    if SysId::is_valid(&lookup.value) && records::get(conn, schema, &lookup.value)?.is_some() {
        return Ok(Some(lookup.value.clone()));
    }
    for field in &lookup.match_fields {
        let sql =
            format!("SELECT sys_id FROM {} WHERE {field} = ?1 COLLATE NOCASE ORDER BY rowid LIMIT 1", schema.name);
        if let Some(id) = conn.prepare_cached(&sql)?.query_row([&lookup.value], |r| r.get(0)).optional()? {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// A referenced record created because an import named one that does not exist yet.
fn new_referenced(schema: &TableSchema, value: &str, actor: &Actor, now: DateTime) -> Record {
    if schema.name == tables::SYS_USER {
        let email = if value.contains('@') { value } else { "" };
        rules::insert_simple(schema, &[("user_name", value), ("name", value), ("email", email)], actor, now)
    } else {
        rules::insert_simple(schema, &[("name", value)], actor, now)
    }
}

fn find_coalesce_target(conn: &Connection, schema: &TableSchema, plan: &Plan) -> rusqlite::Result<Option<Record>> {
    let mut conditions: Vec<String> = plan
        .coalesce
        .iter()
        .enumerate()
        .map(|(i, (field, _))| format!("{field} = ?{} COLLATE NOCASE", i + 1))
        .collect();
    if plan.coalesce_active_only && schema.field("active").is_some() {
        conditions.push("active = 'true'".into());
    }
    let sql = format!(
        "SELECT {} FROM {} WHERE {} ORDER BY rowid LIMIT 1",
        records::columns(schema),
        schema.name,
        conditions.join(" AND ")
    );
    conn.prepare_cached(&sql)?
        .query_row(rusqlite::params_from_iter(plan.coalesce.iter().map(|(_, v)| v)), |row| {
            records::from_row(schema, row)
        })
        .optional()
}

/// Runs one import job; the caller wraps it in a savepoint of the batch's transaction.
pub fn run(conn: &Connection, catalog: &Catalog, job: &ImportJob) -> rusqlite::Result<ImportOutcome> {
    let staging = &job.staging;
    let now = job.now.to_string();
    let day = &now[..10];
    let (set_id, set_number, row_index) = match import_slot::take(&staging.name, day) {
        Some(slot) => slot,
        None => {
            let (set_id, number) = current_import_set(conn, catalog, &staging.name, &job.actor, job.now)?;
            let row: i64 = conn
                .prepare_cached(&format!(
                    "SELECT COALESCE(MAX(sys_import_row), -1) + 1 FROM {} WHERE sys_import_set = ?1",
                    staging.name
                ))?
                .query_row([&set_id], |r| r.get(0))?;
            import_slot::remember(&staging.name, &set_id, &number, day, row);
            (set_id, number, row)
        }
    };
    let mut outcome = ImportOutcome::unsettled(set_number, job.staging_sys_id.clone());
    let context = RowContext {
        staging,
        target: &job.target,
        staging_sys_id: job.staging_sys_id.as_str(),
        actor: &job.actor,
        now: job.now,
        reason: sluice_store::audit_set::reason(&staging.name, &job.staging_sys_id, None),
    };
    settle(conn, catalog, &context, &job.verdict, None, &mut outcome)?;
    // Written once, with its outcome (nothing in the transaction reads it before): an INSERT
    // then an UPDATE would copy the payload twice.
    let fields = outcome_fields(&outcome);
    let row_number = row_index.to_string();
    let mut set: Vec<(&str, &str)> = fields.iter().map(|(f, v)| (*f, v.as_str())).collect();
    set.extend([
        ("sys_import_set", set_id.as_str()),
        ("sys_target_table", job.target.name.as_str()),
        ("sys_transform_map", job.transform_map.as_str()),
        ("sys_integration_version", job.integration_version.as_str()),
        ("sys_import_row", row_number.as_str()),
    ]);
    let row = records::NewStagingRow {
        sys_id: job.staging_sys_id.as_str(),
        columns: &job.columns,
        payload: &job.payload,
        set: &set,
    };
    let mut insert = conn.prepare_cached(&records::insert_sql(staging))?;
    records::insert_staging_row(&mut insert, staging, &row, &job.actor.user_name, &now)?;
    Ok(outcome)
}

/// Stores a row's outcome on its staging row (state, comment, target, errors), plus `extra`.
pub(crate) fn record_outcome(
    conn: &Connection,
    staging: &TableSchema,
    sys_id: &str,
    outcome: &ImportOutcome,
    extra: &[(&str, &str)],
) -> rusqlite::Result<()> {
    let fields = outcome_fields(outcome);
    let mut set: Vec<(&str, &str)> = fields.iter().map(|(f, v)| (*f, v.as_str())).collect();
    set.extend_from_slice(extra);
    records::update(conn, staging, sys_id, &set)
}

/// Who and what a row's processing is about.
pub(crate) struct RowContext<'a> {
    pub staging: &'a TableSchema,
    pub target: &'a TableSchema,
    pub staging_sys_id: &'a str,
    pub actor: &'a Actor,
    pub now: DateTime,
    /// The `sys_audit` reason of the changes.
    pub reason: String,
}

/// Carries out a row's verdict: the errors, or the plan (references, coalesce, business rules,
/// the target record and its audit rows). `prior_target` is the record an earlier run of the
/// same row produced: it is updated, never a second one created.
pub(crate) fn settle(
    conn: &Connection,
    catalog: &Catalog,
    context: &RowContext<'_>,
    verdict: &Result<Plan, Vec<FieldError>>,
    prior_target: Option<Record>,
    outcome: &mut ImportOutcome,
) -> rusqlite::Result<()> {
    match verdict {
        Err(errors) => {
            outcome.state = RowState::Error;
            outcome.errors = errors.clone();
            Ok(())
        }
        Ok(plan) => transform(conn, catalog, context, plan, prior_target, outcome),
    }
}

fn transform(
    conn: &Connection,
    catalog: &Catalog,
    context: &RowContext<'_>,
    plan: &Plan,
    prior_target: Option<Record>,
    outcome: &mut ImportOutcome,
) -> rusqlite::Result<()> {
    if let Some(message) = &plan.ignore {
        // An on_before script ignored the row: staged, nothing else written.
        outcome.state = RowState::Ignored;
        outcome.status_message = Some(message.clone());
        return Ok(());
    }
    let target = context.target;
    let resolved = resolve(conn, catalog, plan, context.actor, context.now)?;
    if !resolved.notes.is_empty() {
        outcome.status_message = Some(resolved.notes.join("; "));
    }
    if !resolved.rejected.is_empty() {
        outcome.errors = resolved.rejected;
        return Ok(());
    }
    let existing = match (prior_target, plan.target_search()) {
        (Some(prior), _) => Some(prior),
        (None, TargetSearch::Coalesce) => find_coalesce_target(conn, target, plan)?,
        (None, TargetSearch::Create) => None,
        (None, TargetSearch::Skip(message)) => {
            outcome.state = RowState::Skipped;
            outcome.status_message = Some(message.into());
            return Ok(());
        }
    };
    let mut applied =
        match rules::apply_import(target, existing.as_ref(), &resolved.set, &plan.coalesce, context.actor, context.now)
        {
            Ok(applied) => applied,
            Err(errors) => {
                outcome.errors = errors;
                return Ok(());
            }
        };
    if existing.is_none() {
        applied.assign_number(&next_number(conn, number::INCIDENT_PREFIX)?);
    }
    let sys_id = applied.record["sys_id"].clone();
    outcome.target_sys_id = Some(sys_id.clone());
    outcome.display_value = applied.record.get(&target.display_field).cloned();
    match existing {
        None => {
            records::insert(conn, target, &applied.record)?;
            outcome.state = RowState::Inserted;
        }
        Some(_) if applied.changes.is_empty() => {
            outcome.mark_unchanged();
            return Ok(());
        }
        Some(_) => {
            records::update(conn, target, &sys_id, &applied.update_columns())?;
            outcome.state = RowState::Updated;
        }
    }
    if !plan.audit {
        return Ok(());
    }
    let source =
        history::Source { table: &context.staging.name, row: context.staging_sys_id, reason: context.reason.clone() };
    history::audit(conn, catalog, target, &applied, context.actor, context.now, &source)
}
