//! Helpers of the contract suite: fixed clock, integrations, jobs built the way the server
//! builds them, and short reads through the trait.

use std::sync::Arc;

use sluice_core::account::Role;
use sluice_core::integration::Integration;
use sluice_core::query::EncodedQuery;
use sluice_core::rules::Actor;
use sluice_core::schema::TableSchema;
use sluice_core::staging::RowState;
use sluice_core::tables::{self, Catalog};
use sluice_core::{DateTime, Record, SysId, staging, transform, validate};
use sluice_store::{
    ImportJob, ImportOutcome, ListQuery, NewAccount, Page, ProcessJob, RowFilter, StageBatch, StagedRecord, Store,
};

/// 2024-05-01 10:15:02 UTC plus `secs`: a fixed clock, so "the same day" never straddles midnight.
pub fn at(secs: i64) -> DateTime {
    DateTime::from_unix(1_714_558_502 + secs)
}

pub const ONE_DAY: i64 = 86_400;

pub fn actor() -> Actor {
    Actor { user_name: "integration.alerts".into(), sys_id: SysId::generate() }
}

pub fn integration() -> Arc<Integration> {
    Arc::new(Integration::builtin_default(&Catalog::builtin()))
}

pub fn table(name: &str) -> Arc<TableSchema> {
    Catalog::builtin().get(name).expect("built-in table").clone()
}

/// The default integration plus state and resolution fields, to drive an incident's lifecycle.
pub fn lifecycle_integration() -> Arc<Integration> {
    let text = sluice_core::integration::DEFAULT_DEFINITION
        .replace("name = \"u_incident_import\"", "name = \"u_incident_lifecycle\"")
        .replace("staging_table = \"u_incident_import\"", "staging_table = \"u_incident_lifecycle\"")
        .replace(
            "[transform]",
            "[[fields]]\nname = \"u_state\"\ntype = \"choice\"\nchoices = [\"1\", \"2\", \"6\", \"7\"]\n\n\
             [[fields]]\nname = \"u_close_code\"\ntype = \"string\"\n\n\
             [[fields]]\nname = \"u_close_notes\"\ntype = \"string\"\n\n[transform]",
        );
    let text = format!(
        "{text}\n[[transform.field_map]]\nsource = \"u_state\"\ntarget = \"state\"\n\n\
         [[transform.field_map]]\nsource = \"u_close_code\"\ntarget = \"close_code\"\n\n\
         [[transform.field_map]]\nsource = \"u_close_notes\"\ntarget = \"close_notes\"\n"
    );
    Arc::new(Integration::parse(&text, "lifecycle", &Catalog::builtin()).expect("the lifecycle integration is valid"))
}

/// An import job built the way the server's intake does, from the body exactly as received.
pub fn job_raw(integration: &Integration, raw: &str, actor: &Actor, now: DateTime) -> ImportJob {
    let value: serde_json::Value = serde_json::from_str(raw).expect("test payload is JSON");
    let object = value.as_object().expect("test payload is a JSON object");
    let staged = staging::stage(integration, object);
    let verdict = validate::validate(integration, &staged).and_then(|row| transform::plan(integration, &row));
    let definition = &integration.definition;
    ImportJob {
        staging: integration.staging.clone(),
        target: integration.target.clone(),
        transform_map: definition.transform.name.clone(),
        integration_version: definition.version.clone(),
        staging_sys_id: SysId::generate(),
        payload: raw.as_bytes().to_vec(),
        columns: staged.columns,
        verdict,
        actor: actor.clone(),
        now,
        idempotency: None,
    }
}

pub fn job(integration: &Integration, payload: serde_json::Value, actor: &Actor, now: DateTime) -> ImportJob {
    job_raw(integration, &payload.to_string(), actor, now)
}

/// The default integration with its staging table prepared in `store`.
pub async fn ready<S: Store + ?Sized>(store: &S) -> Arc<Integration> {
    let integration = integration();
    store.prepare_staging(integration.staging.clone()).await.expect("prepare staging");
    integration
}

pub async fn import<S: Store + ?Sized>(store: &S, job: ImportJob) -> ImportOutcome {
    store.import(job).await.expect("import")
}

/// Field equality filters, ANDed, as plain `?field=value` parameters give them.
pub fn equals(pairs: &[(&str, &str)]) -> EncodedQuery {
    let mut filter = EncodedQuery::default();
    for (field, value) in pairs {
        filter.and_equals(field, value);
    }
    filter
}

pub async fn list<S: Store + ?Sized>(store: &S, schema: Arc<TableSchema>, pairs: &[(&str, &str)]) -> Page {
    store
        .list(schema, ListQuery { filter: equals(pairs), limit: 10_000, offset: 0, count_up_to: None })
        .await
        .expect("list")
}

pub async fn get<S: Store + ?Sized>(store: &S, schema: Arc<TableSchema>, sys_id: &str) -> Record {
    store
        .get(schema.clone(), sys_id.to_owned())
        .await
        .expect("get")
        .unwrap_or_else(|| panic!("{} has no record {sys_id}", schema.name))
}

pub async fn incident<S: Store + ?Sized>(store: &S, outcome: &ImportOutcome) -> Record {
    let id = outcome.target_sys_id.as_deref().expect("the outcome names its target");
    get(store, table(tables::INCIDENT), id).await
}

pub async fn staged<S: Store + ?Sized>(store: &S, integration: &Integration, outcome: &ImportOutcome) -> Record {
    get(store, integration.staging.clone(), outcome.staging_sys_id.as_str()).await
}

pub fn new_account(user_name: &str, roles: &[Role], hash: &str) -> NewAccount {
    NewAccount {
        user_name: user_name.into(),
        roles: roles.to_vec(),
        password_hash: hash.into(),
        web_service_only: true,
        created_by: "test".into(),
        now: at(0),
    }
}

/// An integration whose field map has a value map (`u_severity` → urgency), in `version`, with
/// `extra` appended to its `[transform]` table and more value-map entries.
pub fn mapped_integration(version: &str, value_map: &str, coalesce: bool) -> Arc<Integration> {
    let coalesce = if coalesce { "coalesce = [\"correlation_id\"]" } else { "" };
    let text = format!(
        "name = \"u_mapped\"\nversion = \"{version}\"\nstaging_table = \"u_mapped\"\ntarget_table = \"incident\"\n\n\
         [[fields]]\nname = \"u_id\"\ntype = \"string\"\nrequired = true\n\n\
         [[fields]]\nname = \"u_summary\"\ntype = \"string\"\n\n\
         [[fields]]\nname = \"u_severity\"\ntype = \"string\"\n\n\
         [transform]\nname = \"Mapped\"\n{coalesce}\ncreate_on_empty_coalesce = true\n\n\
         [[transform.field_map]]\nsource = \"u_id\"\ntarget = \"correlation_id\"\n\n\
         [[transform.field_map]]\nsource = \"u_summary\"\ntarget = \"short_description\"\n\n\
         [[transform.field_map]]\nsource = \"u_severity\"\ntarget = \"urgency\"\nvalue_map = {{ {value_map} }}\n"
    );
    Arc::new(Integration::parse(&text, "mapped", &Catalog::builtin()).expect("the mapped integration is valid"))
}

/// Records for `insertMultiple`, staged as the server stages them.
pub fn batch(integration: &Integration, payloads: &[serde_json::Value], actor: &Actor, now: DateTime) -> StageBatch {
    let rows = payloads
        .iter()
        .map(|p| StagedRecord {
            sys_id: SysId::generate(),
            payload: p.to_string().into_bytes(),
            columns: staging::stage(integration, p.as_object().expect("a JSON object")).columns,
            verdict: None,
        })
        .collect();
    StageBatch {
        staging: integration.staging.clone(),
        target: integration.target.clone(),
        transform_map: integration.definition.transform.name.clone(),
        multi_import_set: None,
        rows,
        integration_version: integration.definition.version.clone(),
        actor: actor.clone(),
        now,
        idempotency: None,
        request_body: None,
    }
}

/// A stored row judged by `integration` from its raw payload, as the bulk worker and replays do.
pub fn process_job(
    integration: &Integration,
    row: &Record,
    expected: RowState,
    actor: &Actor,
    now: DateTime,
    replay: Option<&str>,
) -> ProcessJob {
    let payload: serde_json::Value = serde_json::from_str(&row["sys_payload"]).expect("the payload is JSON");
    let staged = staging::stage(integration, payload.as_object().expect("a JSON object"));
    let verdict = validate::validate(integration, &staged).and_then(|r| transform::plan(integration, &r));
    ProcessJob {
        staging: integration.staging.clone(),
        target: integration.target.clone(),
        transform_map: integration.definition.transform.name.clone(),
        integration_version: integration.definition.version.clone(),
        staging_sys_id: SysId::parse(&row["sys_id"]).expect("a sys_id"),
        expected,
        columns: staged.columns,
        verdict,
        actor: actor.clone(),
        now,
        replay: replay.map(str::to_owned),
    }
}

/// The rows of a staging table in one state, in staging order.
pub async fn rows_in<S: Store + ?Sized>(store: &S, integration: &Integration, state: RowState) -> Vec<Record> {
    let filter = RowFilter { state, since: None, after: 0, limit: 100_000 };
    let rows = store.staged_rows(integration.staging.clone(), filter).await.expect("staged rows");
    rows.into_iter().map(|r| r.record).collect()
}

/// Processes the rows in order; every job must have run (`Ok`).
pub async fn process_all<S: Store + ?Sized>(store: &S, jobs: Vec<ProcessJob>) -> Vec<Option<ImportOutcome>> {
    store.process(jobs).await.expect("process").into_iter().map(|r| r.expect("the row was processed")).collect()
}
