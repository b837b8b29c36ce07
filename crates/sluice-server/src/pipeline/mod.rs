//! The intake pipeline, once. Every way a row enters sluice goes through [`Pipeline`]: the
//! Import Set API and the Table API's staging-table POST ([`Pipeline::import_one`]),
//! `insertMultiple` ([`Pipeline::import_many`]), the bulk worker ([`process::spawn_worker`]),
//! replays of stored rows ([`Pipeline::replay`], also `sluice replay`) and dry runs
//! ([`Pipeline::dry_run`]). Handlers only read the request and write the answer.
//!
//! A row's way, in order: receive the request line and headers ([`crate::receive`]) →
//! authenticate the caller and check its rights on the integration ([`crate::authenticate`],
//! `routes::import::integration_for`) → read the body (only now: a caller without rights never
//! has its body read) → stage it ([`sluice_core::staging`]) → check the contract and validate
//! ([`sluice_core::contract`], [`sluice_core::validate`]) → transform into a plan
//! ([`sluice_core::transform`]) → `on_before` ([`crate::row_scripts`]) → commit: references,
//! coalesce, business rules, number, record and history, with the staging row, in one durable
//! transaction ([`sluice_store::settle`]) → `on_after` → respond (the route).

pub mod dry_run;
pub mod import;
pub mod process;
pub mod replay;

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;
use sluice_core::integration::Integration;
use sluice_core::rules::Actor;
use sluice_core::staging::{self, StagedRow};
use sluice_core::tables::Catalog;
use sluice_core::{Record, SysId, contract, transform, validate};
use sluice_script::ScriptEngine;
use sluice_store::{Accounts, Store, StoreError, StoredRow};

use crate::row_scripts::{RowScripts, Verdict};

/// What the pipeline runs on: the store, the script engine and the tables (built-in ones and
/// every integration's staging table). The server's ([`Pipeline::of`]) or one of its own, for
/// the command line.
#[derive(Clone, Copy)]
pub struct Pipeline<'a> {
    pub store: &'a dyn Store,
    pub engine: &'a ScriptEngine,
    pub catalog: &'a Catalog,
}

impl<'a> Pipeline<'a> {
    /// The server's store and script engine, with the tables of `registry`.
    pub fn of(state: &'a crate::AppState, registry: &'a crate::Registry) -> Self {
        Self { store: state.store.as_ref(), engine: &state.scripts, catalog: &registry.catalog }
    }

    /// Judges a staged row before its commit, the same way on every path: the payload schema
    /// (when the payload is at hand) and the typed validation, the field map
    /// ([`contract::verdict_of`]), then the `on_before` script ([`RowScripts::before`]).
    pub async fn judge(
        self,
        integration: &Integration,
        sys_id: SysId,
        payload: Option<&Value>,
        staged: StagedRow,
        actor: Actor,
    ) -> Result<RowWork, StoreError> {
        let mut verdict = match payload {
            Some(payload) => contract::verdict_of(integration, payload, &staged),
            None => validate::validate(integration, &staged).and_then(|row| transform::plan(integration, &row)),
        };
        let scripts = RowScripts::new(self, integration, &sys_id, &staged.columns);
        let note = scripts.before(&mut verdict).await?;
        Ok(RowWork { sys_id, columns: staged.columns, verdict, note, actor })
    }

    /// Runs `on_after` on a committed row's outcome. The row is committed whatever happens
    /// here: a failed read only costs the answer what `on_after` would have said.
    pub async fn after(self, integration: &Integration, work: &RowWork, outcome: &mut sluice_store::ImportOutcome) {
        let scripts = RowScripts::new(self, integration, &work.sys_id, &work.columns);
        if let Err(e) = scripts.after(work.note.clone(), outcome).await {
            tracing::warn!(error = %e, staging_sys_id = %work.sys_id, "on_after could not run");
        }
    }
}

/// One staged row judged: its sys_id, its columns as staged under the current definition, the
/// verdict on them (after `on_before`), the script's note for `on_after`, and who it is for.
pub struct RowWork {
    pub sys_id: SysId,
    pub columns: BTreeMap<String, String>,
    pub verdict: Verdict,
    pub note: Option<String>,
    pub actor: Actor,
}

/// A stored row staged again from its raw payload with the integration's current definition
/// (with that payload); when the payload cannot be read, from the columns it holds.
pub fn restage(integration: &Integration, record: &Record) -> (StagedRow, Option<Value>) {
    let payload = record.get("sys_payload").map(String::as_str).unwrap_or_default();
    match serde_json::from_str::<Value>(payload) {
        Ok(Value::Object(object)) => (staging::stage(integration, &object), Some(Value::Object(object))),
        _ => (
            StagedRow {
                columns: integration
                    .definition
                    .fields
                    .iter()
                    .filter_map(|f| Some((f.name.clone(), record.get(&f.name).filter(|v| !v.is_empty())?.clone())))
                    .collect(),
                ..StagedRow::default()
            },
            None,
        ),
    }
}

/// The accounts stored rows are processed for (the ones that posted them), looked up once.
#[derive(Default)]
pub struct Actors(HashMap<String, Actor>);

impl Actors {
    pub async fn get(&mut self, store: &dyn Accounts, user_name: &str) -> Result<Actor, StoreError> {
        if let Some(actor) = self.0.get(user_name) {
            return Ok(actor.clone());
        }
        let actor = match store.account(user_name.to_owned()).await? {
            Some(account) => Actor { user_name: account.user_name, sys_id: account.sys_id },
            // Not an account (any more): the name still shows who sent the row.
            None => Actor { user_name: user_name.to_owned(), sys_id: SysId::generate() },
        };
        self.0.insert(user_name.to_owned(), actor.clone());
        Ok(actor)
    }

    /// The work for stored rows, each judged for the account that staged it.
    pub async fn work(
        &mut self,
        pipeline: Pipeline<'_>,
        integration: &Integration,
        rows: &[StoredRow],
    ) -> Result<Vec<RowWork>, StoreError> {
        let mut work = Vec::with_capacity(rows.len());
        for row in rows {
            let record = &row.record;
            let Ok(sys_id) = SysId::parse(record.get("sys_id").map(String::as_str).unwrap_or_default()) else {
                continue;
            };
            let created_by = record.get("sys_created_by").map(String::as_str).unwrap_or_default();
            let actor = self.get(pipeline.store, created_by).await?;
            let (staged, payload) = restage(integration, record);
            work.push(pipeline.judge(integration, sys_id, payload.as_ref(), staged, actor).await?);
        }
        Ok(work)
    }
}
