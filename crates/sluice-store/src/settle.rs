//! The commit step of one staged row, written once for every backend: carry out the row's
//! verdict (its errors, or its plan: references, the target record, the business rules, the
//! record and its history). Each backend implements only [`RowTransaction`], the few reads and
//! writes this step needs inside its own transaction; a dry run is [`ReadOnly`] around a
//! backend's transaction, so its answer is the commit's by construction.
//!
//! The order matters to backends that lock (PostgreSQL): the coalesce key is claimed before
//! anything else, then references are looked up (and created) in [`reference_key`] order, so two
//! rows never wait for each other in a cycle.

use std::collections::BTreeMap;

use sluice_core::integration::OnUnknown;
use sluice_core::number;
use sluice_core::rules::{self, Actor, Applied};
use sluice_core::schema::TableSchema;
use sluice_core::staging::RowState;
use sluice_core::tables;
use sluice_core::transform::{Action, Lookup, Plan, TargetSearch};
use sluice_core::validate::{ErrorCode, FieldError};
use sluice_core::{DateTime, Record, SysId};

use crate::outbox::Queued;
use crate::{DryRun, ImportJob, ImportOutcome, ProcessJob, StageBatch, StagedRecord};

/// Who and what a row's processing is about.
#[derive(Debug, Clone, Copy)]
pub struct RowContext<'a> {
    /// The staging table's name (empty for a Table API write, which has no staging row).
    pub staging_table: &'a str,
    pub target: &'a TableSchema,
    /// The staging row's sys_id (empty for a Table API write).
    pub staging_sys_id: &'a str,
    pub actor: &'a Actor,
    pub now: DateTime,
    /// The `sys_audit` reason of the changes ([`crate::audit_set::reason`]).
    pub reason: &'a str,
}

impl RowContext<'_> {
    /// What caused the changes, as their history records it.
    pub fn source(&self) -> crate::audit_set::Source<'_> {
        crate::audit_set::Source { table: self.staging_table, row: self.staging_sys_id, reason: self.reason }
    }
}

/// The reads and writes of the commit step, inside one transaction of one backend. Every
/// method acts at once unless it says otherwise; a backend that writes behind (PostgreSQL's
/// batch) may defer what [`Settled::written`] carries anyway.
// Implemented for concrete backends only and called with static dispatch; SQLite's futures
// borrow a connection that is not `Sync`, so no `Send` bound can be promised here.
#[allow(async_fn_in_trait)]
pub trait RowTransaction {
    type Error;

    /// A row about to search for its coalesce target claims that search first (PostgreSQL: an
    /// advisory lock, unless the batch took it when it began). Nothing by default.
    async fn claim_coalesce(&mut self, _target: &TableSchema, _plan: &Plan) -> Result<(), Self::Error> {
        Ok(())
    }

    /// The sys_id of an existing record the lookup names: a sys_id of that table, else the first
    /// record (oldest first) whose match field equals the value, ignoring ASCII case.
    async fn find_reference(&mut self, schema: &TableSchema, lookup: &Lookup) -> Result<Option<String>, Self::Error>;

    /// Creates `record`, which the lookup named and [`Self::find_reference`] did not find; its
    /// sys_id, which may be another's if one appeared meanwhile (PostgreSQL searches again under
    /// the value's lock). `None`: nothing was created (a dry run).
    async fn create_reference(
        &mut self,
        schema: &TableSchema,
        lookup: &Lookup,
        record: Record,
    ) -> Result<Option<String>, Self::Error>;

    /// The oldest record matching every coalesce value (ASCII case ignored; active ones only
    /// when the plan says so).
    async fn find_coalesce_target(&mut self, target: &TableSchema, plan: &Plan) -> Result<Option<Record>, Self::Error>;

    /// The next record number of `prefix`; `None` when the record is numbered when it is
    /// written (PostgreSQL's batch draws a batch's numbers in one round trip) or never (dry run).
    async fn next_number(&mut self, prefix: &str) -> Result<Option<String>, Self::Error>;

    /// Writes a new target record.
    async fn insert(&mut self, target: &TableSchema, record: &Record) -> Result<(), Self::Error>;

    /// Writes the changed fields of an existing target record.
    async fn update(&mut self, target: &TableSchema, applied: &Applied) -> Result<(), Self::Error>;

    /// Writes the change set of `applied` to the record's history (nothing when it is empty),
    /// caused by [`RowContext::source`].
    async fn write_history(&mut self, row: &RowContext<'_>, applied: &Applied) -> Result<(), Self::Error>;

    /// Queues the written record for its integration's upstream ([`crate::outbox`]): a new
    /// pending row, or the existing row pending again with its version raised.
    async fn enqueue_delivery(&mut self, queued: &Queued<'_>) -> Result<(), Self::Error>;
}

/// What one reference lookup of the plan came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Found(String),
    Created(String),
    /// Not found; the transaction creates nothing (a dry run).
    WouldCreate,
    /// Not found; the field is left empty (`on_unknown: ignore`).
    Ignored,
    /// Not found; the row fails (`on_unknown: reject`).
    Rejected,
    /// A table the catalog does not have: the lookup is skipped.
    Skipped,
}

/// The target record a settled row wrote: its values after the business rules, its changes.
#[derive(Debug, Clone)]
pub struct Written {
    pub applied: Applied,
    /// A new record (`false`: an existing one updated).
    pub inserted: bool,
    /// Its change set went to the history.
    pub audited: bool,
}

/// A settled row: its outcome, what each lookup found, and the record it wrote.
#[derive(Debug, Clone)]
pub struct Settled {
    pub outcome: ImportOutcome,
    /// Per lookup of the plan, in the plan's order; empty when the plan was not reached.
    pub references: Vec<Reference>,
    pub written: Option<Written>,
}

/// The key a reference lookup is ordered (and, on PostgreSQL, locked) by.
pub fn reference_key(table: &str, value: &str) -> String {
    format!("ref:{table}:{}", value.to_ascii_lowercase())
}

/// Carries out a row's verdict in `tx`. `prior_target` is the record an earlier run of the same
/// row produced (a replay): it is updated, never a second one created. `outcome` comes in
/// unsettled ([`ImportOutcome::unsettled`]).
pub async fn settle<T: RowTransaction>(
    tx: &mut T,
    row: &RowContext<'_>,
    catalog: &tables::Catalog,
    verdict: &Result<Plan, Vec<FieldError>>,
    prior_target: Option<Record>,
    mut outcome: ImportOutcome,
) -> Result<Settled, T::Error> {
    let plan = match verdict {
        Err(errors) => {
            outcome.state = RowState::Error;
            outcome.errors = errors.clone();
            return Ok(Settled { outcome, references: Vec::new(), written: None });
        }
        Ok(plan) => plan,
    };
    let target = row.target;
    // Whether the row searches for the record it coalesces with (a replay updates its own).
    let search = prior_target.is_none() && plan.searches_target();
    if search {
        tx.claim_coalesce(target, plan).await?;
    }
    if let Some(message) = &plan.ignore {
        // An on_before script ignored the row: staged, nothing else written; unless the action
        // it decided on is no longer what the search finds.
        if search
            && let Some(judged) = plan.judged_action
            && action_of(&tx.find_coalesce_target(target, plan).await?) != judged
        {
            return Ok(raced(outcome));
        }
        outcome.state = RowState::Ignored;
        outcome.status_message = Some(message.clone());
        return Ok(Settled { outcome, references: Vec::new(), written: None });
    }
    let existing = match (prior_target, plan.target_search()) {
        (Some(prior), _) => Some(prior),
        (None, TargetSearch::Coalesce) => tx.find_coalesce_target(target, plan).await?,
        (None, TargetSearch::Create) => None,
        (None, TargetSearch::Skip(message)) => {
            outcome.state = RowState::Skipped;
            outcome.status_message = Some(message.into());
            return Ok(Settled { outcome, references: Vec::new(), written: None });
        }
    };
    // Searched before the references, so a raced row creates none.
    if search && plan.judged_action.is_some_and(|judged| judged != action_of(&existing)) {
        return Ok(raced(outcome));
    }
    let resolved = resolve(tx, catalog, plan, row.actor, row.now).await?;
    let mut settled = Settled { outcome, references: resolved.references, written: None };
    let outcome = &mut settled.outcome;
    if !resolved.notes.is_empty() {
        outcome.status_message = Some(resolved.notes.join("; "));
    }
    if !resolved.rejected.is_empty() {
        outcome.errors = resolved.rejected;
        return Ok(settled);
    }
    let mut applied =
        match rules::apply_import(target, existing.as_ref(), &resolved.set, &plan.coalesce, row.actor, row.now) {
            Ok(applied) => applied,
            Err(errors) => {
                outcome.errors = errors;
                return Ok(settled);
            }
        };
    if existing.is_none()
        && let Some(number) = tx.next_number(number::INCIDENT_PREFIX).await?
    {
        applied.assign_number(&number);
    }
    outcome.target_sys_id = Some(applied.record["sys_id"].clone());
    outcome.display_value = applied.record.get(&target.display_field).cloned();
    let inserted = existing.is_none();
    if inserted {
        tx.insert(target, &applied.record).await?;
        outcome.state = RowState::Inserted;
    } else if applied.changes.is_empty() {
        outcome.mark_unchanged();
        return Ok(settled);
    } else {
        tx.update(target, &applied).await?;
        outcome.state = RowState::Updated;
    }
    if plan.audit {
        tx.write_history(row, &applied).await?;
    }
    if let Some(integration) = &plan.forward {
        let record_sys_id = applied.record["sys_id"].as_str();
        let (table, staging_sys_id, now_ms) = (target.name.as_str(), row.staging_sys_id, row.now.unix() * 1000);
        tx.enqueue_delivery(&Queued { integration, table, record_sys_id, staging_sys_id, now_ms }).await?;
    }
    settled.written = Some(Written { applied, inserted, audited: plan.audit });
    Ok(settled)
}

/// What a search for the coalesce target came to.
fn action_of(existing: &Option<Record>) -> Action {
    if existing.is_some() { Action::Update } else { Action::Insert }
}

/// A row whose `on_before` script was told another action than the commit found: nothing is
/// written, the row stays `pending` to be judged again ([`sluice_core::transform::RACED`]).
fn raced(mut outcome: ImportOutcome) -> Settled {
    outcome.state = RowState::Pending;
    outcome.status_message = Some(sluice_core::transform::RACED.into());
    Settled { outcome, references: Vec::new(), written: None }
}

struct Resolved {
    set: BTreeMap<String, String>,
    notes: Vec<String>,
    rejected: Vec<FieldError>,
    references: Vec<Reference>,
}

/// Resolves the plan's reference values in [`reference_key`] order (reported in the plan's):
/// an existing record, else the lookup's `on_unknown` action.
async fn resolve<T: RowTransaction>(
    tx: &mut T,
    catalog: &tables::Catalog,
    plan: &Plan,
    actor: &Actor,
    now: DateTime,
) -> Result<Resolved, T::Error> {
    let mut order: Vec<usize> = (0..plan.lookups.len()).collect();
    if order.len() > 1 {
        let keys: Vec<String> = plan.lookups.iter().map(|l| reference_key(&l.table, &l.value)).collect();
        order.sort_by(|&a, &b| keys[a].cmp(&keys[b]));
    }
    let mut references = vec![Reference::Skipped; plan.lookups.len()];
    for i in order {
        let lookup = &plan.lookups[i];
        let Some(schema) = catalog.get(&lookup.table) else { continue };
        references[i] = match tx.find_reference(schema, lookup).await? {
            Some(sys_id) => Reference::Found(sys_id),
            None => match lookup.on_unknown {
                OnUnknown::Create => {
                    let record = new_referenced(schema, &lookup.value, actor, now);
                    match tx.create_reference(schema, lookup, record).await? {
                        Some(sys_id) => Reference::Created(sys_id),
                        None => Reference::WouldCreate,
                    }
                }
                OnUnknown::Ignore => Reference::Ignored,
                OnUnknown::Reject => Reference::Rejected,
            },
        };
    }
    let mut out = Resolved { set: plan.set.clone(), notes: Vec::new(), rejected: Vec::new(), references };
    for (lookup, reference) in plan.lookups.iter().zip(&out.references) {
        match reference {
            Reference::Found(sys_id) | Reference::Created(sys_id) => {
                out.set.insert(lookup.target_field.clone(), sys_id.clone());
            }
            Reference::WouldCreate | Reference::Skipped => {}
            Reference::Ignored => out.notes.push(format!(
                "{}: no {} matches {:?}; {} left empty",
                lookup.source_field, lookup.table, lookup.value, lookup.target_field
            )),
            Reference::Rejected => out.rejected.push(FieldError {
                code: ErrorCode::UnknownReference,
                field: lookup.source_field.clone(),
                message: format!("no {} matches {:?}", lookup.table, lookup.value),
                path: None,
            }),
        }
    }
    Ok(out)
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

/// A backend's transaction that only reads: nothing is locked, created, numbered or written.
/// Settling a row through it answers what committing it would do (against the data as read).
pub struct ReadOnly<T>(pub T);

impl<T: RowTransaction> RowTransaction for ReadOnly<T> {
    type Error = T::Error;

    async fn find_reference(&mut self, schema: &TableSchema, lookup: &Lookup) -> Result<Option<String>, Self::Error> {
        self.0.find_reference(schema, lookup).await
    }

    async fn create_reference(
        &mut self,
        _: &TableSchema,
        _: &Lookup,
        _: Record,
    ) -> Result<Option<String>, Self::Error> {
        Ok(None)
    }

    async fn find_coalesce_target(&mut self, target: &TableSchema, plan: &Plan) -> Result<Option<Record>, Self::Error> {
        self.0.find_coalesce_target(target, plan).await
    }

    async fn next_number(&mut self, _: &str) -> Result<Option<String>, Self::Error> {
        Ok(None)
    }

    async fn insert(&mut self, _: &TableSchema, _: &Record) -> Result<(), Self::Error> {
        Ok(())
    }

    async fn update(&mut self, _: &TableSchema, _: &Applied) -> Result<(), Self::Error> {
        Ok(())
    }

    async fn write_history(&mut self, _: &RowContext<'_>, _: &Applied) -> Result<(), Self::Error> {
        Ok(())
    }

    async fn enqueue_delivery(&mut self, _: &Queued<'_>) -> Result<(), Self::Error> {
        Ok(())
    }
}

// Who and what each kind of job settles, and the reason its history records.

impl ImportJob {
    pub fn audit_reason(&self) -> String {
        crate::audit_set::reason(&self.staging.name, &self.staging_sys_id, None)
    }

    pub fn row<'a>(&'a self, reason: &'a str) -> RowContext<'a> {
        let (staging_table, target, actor) = (self.staging.name.as_str(), &*self.target, &self.actor);
        RowContext { staging_table, target, staging_sys_id: self.staging_sys_id.as_str(), actor, now: self.now, reason }
    }
}

impl ProcessJob {
    /// Names the replay and who asked for it, if it is one.
    pub fn audit_reason(&self) -> String {
        crate::audit_set::reason(&self.staging.name, &self.staging_sys_id, self.replay.as_deref())
    }

    pub fn row<'a>(&'a self, reason: &'a str) -> RowContext<'a> {
        let (staging_table, target, actor) = (self.staging.name.as_str(), &*self.target, &self.actor);
        RowContext { staging_table, target, staging_sys_id: self.staging_sys_id.as_str(), actor, now: self.now, reason }
    }
}

impl StageBatch {
    pub fn audit_reason(&self, record: &StagedRecord) -> String {
        crate::audit_set::reason(&self.staging.name, &record.sys_id, None)
    }

    pub fn row<'a>(&'a self, record: &'a StagedRecord, reason: &'a str) -> RowContext<'a> {
        let (staging_table, target, actor) = (self.staging.name.as_str(), &*self.target, &self.actor);
        RowContext { staging_table, target, staging_sys_id: record.sys_id.as_str(), actor, now: self.now, reason }
    }
}

impl DryRun {
    /// The row a dry run settles: a new staging sys_id (nothing is staged) and its reason.
    pub fn staging_row(&self) -> (SysId, String) {
        let sys_id = SysId::generate();
        let reason = crate::audit_set::reason(&self.staging.name, &sys_id, None);
        (sys_id, reason)
    }

    pub fn row<'a>(&'a self, staging_sys_id: &'a SysId, reason: &'a str) -> RowContext<'a> {
        let (staging_table, target, actor) = (self.staging.name.as_str(), &*self.target, &self.actor);
        RowContext { staging_table, target, staging_sys_id: staging_sys_id.as_str(), actor, now: self.now, reason }
    }
}
