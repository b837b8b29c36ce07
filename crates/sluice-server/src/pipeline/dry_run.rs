//! Dry run: what posting a payload would do, computed without writing anything. The row is
//! judged as a post is ([`Pipeline::judge`], scripts included) and settled by the store's own
//! commit step in a transaction that only reads ([`sluice_store::Imports::dry_run`]): nothing is
//! staged, locked, created or numbered. Like any read, the answer can differ from a later post if
//! data changes in between.

use serde_json::{Map, Value};
use sluice_core::integration::Integration;
use sluice_core::rules::Actor;
use sluice_core::transform::Lookup;
use sluice_core::{DateTime, SysId, contract, staging};
use sluice_store::settle::Settled;
use sluice_store::{DryRun, StoreError};

use super::Pipeline;

/// A dry run's answer: the settled row and the plan's lookups (what each reference was).
pub struct DryRunAnswer {
    pub settled: Settled,
    /// The plan's lookups, in the order of [`Settled::references`]; empty without a plan.
    pub lookups: Vec<Lookup>,
}

impl Pipeline<'_> {
    pub async fn dry_run(
        self,
        integration: &Integration,
        actor: Actor,
        payload: Map<String, Value>,
    ) -> Result<DryRunAnswer, StoreError> {
        let staged = staging::stage(integration, &payload);
        let payload = Value::Object(payload);
        let work = self.judge(integration, SysId::generate(), Some(&payload), staged, actor).await?;
        let lookups = work.verdict.as_ref().map(|plan| plan.lookups.clone()).unwrap_or_default();
        let job = DryRun {
            staging: integration.staging.clone(),
            target: integration.target.clone(),
            verdict: work.verdict,
            actor: work.actor,
            now: DateTime::now(),
        };
        let mut settled = self.store.dry_run(job).await?;
        contract::add_paths(integration, &mut settled.outcome.errors);
        Ok(DryRunAnswer { settled, lookups })
    }
}
