//! The transform scripts' steps for one staged row, the same on every path that transforms a
//! staged row ([`crate::pipeline`]): single imports, `insertMultiple` rows (the bulk worker and
//! `sysparm_sluice_sync=true`), replays and dry runs. [`RowScripts::before`]
//! runs `on_before` on the verdict before the commit; [`RowScripts::after`] runs `on_after` on
//! the committed outcome.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};
use sluice_core::SysId;
use sluice_core::integration::{Integration, ON_AFTER_KEY, ON_BEFORE_KEY, OnUnknown};
use sluice_core::schema::FieldKind;
use sluice_core::staging::RowState;
use sluice_core::transform::{Action, Lookup, Plan};
use sluice_core::validate::{ErrorCode, FieldError};
use sluice_script::{ScriptInput, ScriptOutput};
use sluice_store::{ImportOutcome, ListQuery, StoreError};

use crate::pipeline::Pipeline;
use crate::table_input;

/// A staged row's verdict: its transform plan, or every error.
pub type Verdict = Result<Plan, Vec<FieldError>>;

/// One staged row on its way through its integration's scripts.
pub struct RowScripts<'a> {
    pipeline: Pipeline<'a>,
    integration: &'a Integration,
    staging_sys_id: &'a SysId,
    columns: &'a BTreeMap<String, String>,
}

impl<'a> RowScripts<'a> {
    pub fn new(
        pipeline: Pipeline<'a>,
        integration: &'a Integration,
        staging_sys_id: &'a SysId,
        columns: &'a BTreeMap<String, String>,
    ) -> Self {
        Self { pipeline, integration, staging_sys_id, columns }
    }

    /// Before the commit: `on_before`, when the integration has one and the verdict is a plan.
    /// It may change the plan, ignore the row (`plan.ignore`) or turn the verdict into errors.
    /// Returns the script's status message, for [`Self::after`]. `Err`: the store could not be read.
    pub async fn before(&self, verdict: &mut Verdict) -> Result<Option<String>, StoreError> {
        let (Some(script), Ok(plan)) = (&self.integration.on_before, &mut *verdict) else { return Ok(None) };
        match self.on_before(script, plan).await? {
            Ok(note) => Ok(note),
            Err(errors) => {
                *verdict = Err(errors);
                Ok(None)
            }
        }
    }

    /// After the commit: the `on_before` note joins the outcome's status message (unless the row
    /// failed), then `on_after` runs on an inserted or updated row.
    pub async fn after(&self, note: Option<String>, outcome: &mut ImportOutcome) -> Result<(), StoreError> {
        if let Some(note) = note
            && outcome.state != RowState::Error
        {
            outcome.status_message = Some(match outcome.status_message.take() {
                Some(other) => format!("{note}; {other}"),
                None => note,
            });
        }
        if let Some(script) = &self.integration.on_after {
            self.on_after(script, outcome).await?;
        }
        Ok(())
    }

    fn source(&self) -> Map<String, Value> {
        self.columns.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect()
    }

    /// Runs `on_before` on a planned row. `Ok(Ok(note))`: the plan stands, possibly changed or
    /// ignored (`plan.ignore`), with the script's status message; `Ok(Err(errors))`: the row
    /// fails; `Err`: the store could not be read.
    async fn on_before(
        &self,
        script: &Arc<str>,
        plan: &mut Plan,
    ) -> Result<Result<Option<String>, Vec<FieldError>>, StoreError> {
        let action = self.action(plan).await?;
        let coalesce = plan.coalesce.clone();
        let target = planned_values(plan);
        let input = ScriptInput { source: self.source(), target: target.clone(), action: action.as_str().into() };
        let out = match self.pipeline.engine.run(script.clone(), input).await {
            Ok(out) => out,
            Err(e) => return Ok(Err(vec![self.failed(ON_BEFORE_KEY, &e)])),
        };
        self.log(ON_BEFORE_KEY, &out);
        if out.error {
            return Ok(Err(vec![rejected(ON_BEFORE_KEY, out.error_message)]));
        }
        if out.ignore {
            plan.ignore = Some(out.status_message.unwrap_or_else(|| "Ignored by the on_before script".into()));
            plan.judged_action = Some(action);
            return Ok(Ok(None));
        }
        let applied = self.apply(plan, &target, out.target).map(|()| out.status_message);
        // The commit checks the action again, unless the script changed what it coalesces on
        // (then `action` was about other values, and no later judgment could agree with it).
        if plan.coalesce == coalesce {
            plan.judged_action = Some(action);
        }
        Ok(applied)
    }

    /// `"update"` when the coalesce values are all given and an active record (when the map
    /// coalesces on active records only) has them; else `"insert"`. Read before the commit: the
    /// commit checks it again ([`Plan::judged_action`]).
    async fn action(&self, plan: &Plan) -> Result<Action, StoreError> {
        if !plan.coalesce_given() {
            return Ok(Action::Insert);
        }
        let target = &self.integration.target;
        // Case-insensitive, like the commit's own coalesce search.
        let mut filter = sluice_core::query::EncodedQuery::default();
        for (field, value) in &plan.coalesce {
            filter.and_equals(field, value);
        }
        if plan.coalesce_active_only && target.field("active").is_some() {
            filter.and_equals("active", "true");
        }
        if plan.skips_resolved(target) {
            filter.and_not_equals("state", sluice_core::incident::STATE_RESOLVED);
        }
        let page = self
            .pipeline
            .store
            .list(target.clone(), ListQuery { filter, limit: 1, offset: 0, count_up_to: None })
            .await?;
        Ok(if page.total > 0 { Action::Update } else { Action::Insert })
    }

    /// Puts the script's changes to `target` into the plan. Only fields of the target table that
    /// a field map could set are taken (others are logged and ignored); values are checked as
    /// the Table API checks them. A changed reference is looked up again.
    fn apply(
        &self,
        plan: &mut Plan,
        before: &Map<String, Value>,
        after: Map<String, Value>,
    ) -> Result<(), Vec<FieldError>> {
        let schema = &self.integration.target;
        let mut changed = Map::new();
        let mut ignored = Vec::new();
        for (field, value) in after {
            if before.get(&field) == Some(&value) {
                continue;
            }
            match schema.visible_field(&field) {
                Some(f)
                    if !field.starts_with("sys_") && field != schema.display_field && f.kind != FieldKind::Journal =>
                {
                    changed.insert(field, value);
                }
                _ => ignored.push(field),
            }
        }
        if !ignored.is_empty() {
            tracing::info!(
                integration = %self.integration.name(),
                staging_sys_id = %self.staging_sys_id,
                fields = ?ignored,
                "on_before set target fields that cannot be set; ignored"
            );
        }
        let input = table_input::parse(schema, &changed, table_input::Choices::Strict)?;
        for (field, value) in input.values {
            let reference = schema.field(&field).and_then(|f| f.reference_table()).map(str::to_owned);
            let mapped = plan.lookups.iter().position(|l| l.target_field == field);
            match (mapped, reference) {
                (Some(i), _) if value.is_empty() => {
                    plan.lookups.remove(i);
                    plan.set.insert(field, value);
                }
                (Some(i), _) => plan.lookups[i].value = value,
                (None, Some(table)) if !value.is_empty() => {
                    // A reference the field map does not look up: a sys_id, or the referenced
                    // table's display value; when nothing matches it stays empty (and is said so).
                    let display =
                        self.pipeline.catalog.get(&table).map(|t| t.display_field.clone()).unwrap_or_default();
                    plan.set.remove(&field);
                    plan.lookups.push(Lookup {
                        source_field: ON_BEFORE_KEY.into(),
                        target_field: field,
                        table,
                        match_fields: vec![display],
                        value,
                        on_unknown: OnUnknown::Ignore,
                    });
                }
                _ => {
                    plan.set.insert(field, value);
                }
            }
        }
        for (field, value) in &mut plan.coalesce {
            *value = plan.set.get(field.as_str()).cloned().unwrap_or_default();
        }
        Ok(())
    }

    /// Runs `on_after` on a committed row (inserted or updated). The record stays committed
    /// whatever the script does: its `status_message` replaces the answer's, and `error = true`
    /// or a failure turns the answer's status into `error` with the reason.
    async fn on_after(&self, script: &Arc<str>, outcome: &mut ImportOutcome) -> Result<(), StoreError> {
        let action = match outcome.state {
            RowState::Inserted => "insert",
            RowState::Updated => "update",
            _ => return Ok(()),
        };
        let Some(sys_id) = outcome.target_sys_id.clone() else { return Ok(()) };
        let schema = &self.integration.target;
        let Some(record) = self.pipeline.store.get(schema.clone(), sys_id).await? else { return Ok(()) };
        let target = record
            .into_iter()
            .filter(|(field, _)| schema.visible_field(field).is_some())
            .map(|(field, value)| (field, Value::String(value)))
            .collect();
        let input = ScriptInput { source: self.source(), target, action: action.into() };
        match self.pipeline.engine.run(script.clone(), input).await {
            Ok(out) => {
                self.log(ON_AFTER_KEY, &out);
                if out.error {
                    outcome.state = RowState::Error;
                    outcome.errors.push(rejected(ON_AFTER_KEY, out.error_message));
                }
                if let Some(message) = out.status_message {
                    outcome.status_message = Some(message);
                }
            }
            Err(e) => {
                outcome.state = RowState::Error;
                outcome.errors.push(self.failed(ON_AFTER_KEY, &e));
            }
        }
        Ok(())
    }

    fn failed(&self, key: &str, e: &sluice_script::ScriptError) -> FieldError {
        tracing::warn!(
            integration = %self.integration.name(),
            script = key,
            staging_sys_id = %self.staging_sys_id,
            error = %e,
            "transform script failed"
        );
        let script = key.trim_start_matches("scripts.");
        FieldError {
            code: ErrorCode::ScriptFailed,
            field: key.into(),
            message: format!("{script} script: {e}"),
            path: None,
        }
    }

    /// The script's `log.info/warn/error` lines, into the server log.
    fn log(&self, key: &str, out: &ScriptOutput) {
        let integration = self.integration.name();
        let row = self.staging_sys_id.as_str();
        for (level, message) in &out.log {
            match level.as_str() {
                "error" => tracing::error!(integration, script = key, staging_sys_id = row, "{message}"),
                "warn" => tracing::warn!(integration, script = key, staging_sys_id = row, "{message}"),
                _ => tracing::info!(integration, script = key, staging_sys_id = row, "{message}"),
            }
        }
    }
}

fn rejected(key: &str, message: Option<String>) -> FieldError {
    let script = key.trim_start_matches("scripts.");
    FieldError {
        code: ErrorCode::ScriptRejected,
        field: key.into(),
        message: message.unwrap_or_else(|| format!("rejected by the {script} script")),
        path: None,
    }
}

/// What the field map planned, as the script's `target`: plain values, and reference values
/// (still names, not sys_ids) under their target fields.
fn planned_values(plan: &Plan) -> Map<String, Value> {
    let mut target: Map<String, Value> = plan.set.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    for lookup in &plan.lookups {
        target.insert(lookup.target_field.clone(), Value::String(lookup.value.clone()));
    }
    target
}
