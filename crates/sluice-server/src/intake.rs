//! The intake pipeline for one inbound row, in order:
//! receive ([`crate::receive`]) → authenticate ([`crate::authenticate`]) → stage
//! ([`sluice_core::staging`]) → validate ([`sluice_core::validate`]) → transform
//! ([`sluice_core::transform`]) → business rules ([`sluice_core::rules`]) and commit (the store,
//! in one durable transaction) → respond ([`crate::routes::import`]).

use std::sync::Arc;

use sluice_core::integration::Integration;
use sluice_core::rules::Actor;
use sluice_core::{DateTime, SysId, contract, staging};
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
    // The payload schema and the typed validation, then the field map ([`contract::verdict`]).
    let verdict = contract::verdict(integration, &body.object, &staged);
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
    let mut outcome = state.store.import(job).await?;
    contract::add_paths(integration, &mut outcome.errors);
    Ok(outcome)
}
