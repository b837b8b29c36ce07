//! The intake pipeline for one inbound row, in order:
//! receive ([`crate::receive`]) → authenticate ([`crate::authenticate`]) → stage
//! ([`sluice_core::staging`]) → validate ([`sluice_core::validate`]) → transform
//! ([`sluice_core::transform`]) → `on_before` script ([`crate::row_scripts`]) → business rules ([`sluice_core::rules`])
//! and commit (the store, in one durable transaction) → `on_after` script → respond
//! ([`crate::routes::import`]).

use std::sync::Arc;

use serde_json::Value;
use sluice_core::integration::Integration;
use sluice_core::rules::Actor;
use sluice_core::staging::StagedRow;
use sluice_core::{DateTime, SysId, contract, staging, transform, validate};
use sluice_store::{Idempotency, ImportJob, ImportOutcome, StoreError};

use crate::AppState;
use crate::error::ApiResult;
use crate::receive::JsonObject;
use crate::row_scripts::{RowScripts, ScriptHost, Verdict};

pub async fn import_row(
    state: &AppState,
    integration: &Arc<Integration>,
    actor: Actor,
    body: JsonObject,
    idempotency: Option<Idempotency>,
) -> ApiResult<ImportOutcome> {
    let staged = staging::stage(integration, &body.object);
    let staging_sys_id = SysId::generate();
    let registry = state.registry();
    let scripts = RowScripts::new(ScriptHost::of(state, &registry), integration, &staging_sys_id, &staged.columns);
    let payload = Value::Object(body.object);
    let (verdict, note) = judge(&scripts, integration, Some(&payload), &staged).await?;

    let definition = &integration.definition;
    let job = ImportJob {
        staging: integration.staging.clone(),
        target: integration.target.clone(),
        transform_map: definition.transform.name.clone(),
        integration_version: definition.version.clone(),
        staging_sys_id: staging_sys_id.clone(),
        payload: body.raw.to_vec(),
        columns: staged.columns.clone(),
        verdict,
        actor,
        now: DateTime::now(),
        idempotency,
    };
    let mut outcome = state.store.import(job).await?;
    scripts.after(note, &mut outcome).await?;
    contract::add_paths(integration, &mut outcome.errors);
    Ok(outcome)
}

/// A staged row judged before its commit, the same way on every path (single rows, bulk rows in
/// the worker and in sync mode, replays of stored rows): the payload schema (when the payload is
/// at hand) and the typed validation, the field map ([`contract::verdict`]), then the `on_before`
/// script ([`RowScripts::before`]). Also the script's note for [`RowScripts::after`].
pub async fn judge(
    scripts: &RowScripts<'_>,
    integration: &Integration,
    payload: Option<&Value>,
    staged: &StagedRow,
) -> Result<(Verdict, Option<String>), StoreError> {
    let mut verdict = match payload {
        Some(payload) => contract::verdict_of(integration, payload, staged),
        None => validate::validate(integration, staged).and_then(|row| transform::plan(integration, &row)),
    };
    let note = scripts.before(&mut verdict).await?;
    Ok((verdict, note))
}
