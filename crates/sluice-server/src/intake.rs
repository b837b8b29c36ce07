//! The intake pipeline for one inbound row, in order:
//! receive ([`crate::receive`]) → authenticate ([`crate::authenticate`]) → stage
//! ([`sluice_core::staging`]) → validate ([`sluice_core::validate`]) → transform
//! ([`sluice_core::transform`]) → business rules ([`sluice_core::rules`]) and commit (the store,
//! in one durable transaction) → respond ([`crate::routes::import`]).

use std::sync::Arc;

use sluice_core::integration::Integration;
use sluice_core::rules::Actor;
use sluice_core::staging::StagedRow;
use sluice_core::transform::Plan;
use sluice_core::validate::FieldError;
use sluice_core::{DateTime, SysId, staging, transform, validate};
use sluice_store::{Idempotency, ImportJob, ImportOutcome};

use crate::AppState;
use crate::error::ApiResult;
use crate::receive::JsonObject;

pub async fn import_row(
    state: &AppState,
    integration: &Arc<Integration>,
    actor: Actor,
    body: JsonObject,
    idempotency: Option<Idempotency>,
) -> ApiResult<ImportOutcome> {
    let staged = staging::stage(integration, &body.object);
    let verdict = verdict(integration, &staged);
    let definition = &integration.definition;
    let job = ImportJob {
        staging: integration.staging.clone(),
        target: integration.target.clone(),
        transform_map: definition.transform.name.clone(),
        integration_version: definition.version.clone(),
        staging_sys_id: SysId::generate(),
        payload: body.raw.to_vec(),
        columns: staged.columns,
        verdict,
        actor,
        now: DateTime::now(),
        idempotency,
    };
    Ok(state.store.import(job).await?)
}

/// The verdict on a staged row's columns: validated against the integration's fields, then the
/// field map applied. Single rows, bulk rows and replays of stored rows all pass through here.
pub fn verdict(integration: &Integration, staged: &StagedRow) -> Result<Plan, Vec<FieldError>> {
    validate::validate(integration, staged).and_then(|row| transform::plan(integration, &row))
}
