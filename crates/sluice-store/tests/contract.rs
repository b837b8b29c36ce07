//! The store contract: what every [`Store`] implementation must do, checked through the trait
//! only (no SQL). The functions in [`contract`] are generic over the store, so a new database
//! (PostgreSQL next) runs the very same checks; the `#[tokio::test]`s at the bottom run them
//! against a fresh SQLite store in a temporary folder.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use sluice_core::account::{AccountPolicy, AccountRate, IpNet, Role, parse_network};
use sluice_core::integration::Integration;
use sluice_core::query::EncodedQuery;
use sluice_core::rules::Actor;
use sluice_core::schema::TableSchema;
use sluice_core::staging::RowState;
use sluice_core::tables::{self, Catalog};
use sluice_core::validate::{ErrorCode, FieldError};
use sluice_core::{DateTime, Record, SysId, staging, transform, validate};
use sluice_store::sqlite::SqliteOptions;
use sluice_store::{
    Idempotency, ImportJob, ImportOutcome, ListQuery, NewAccount, Page, ProcessJob, RowFilter, SqliteStore, StageBatch,
    StagedRecord, StateCounts, StatsDelta, StatsFilter, StatsTotal, Store, StoreError,
};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// 2024-05-01 10:15:02 UTC plus `secs`: a fixed clock, so "the same day" never straddles midnight.
fn at(secs: i64) -> DateTime {
    DateTime::from_unix(1_714_558_502 + secs)
}

const ONE_DAY: i64 = 86_400;

fn actor() -> Actor {
    Actor { user_name: "integration.alerts".into(), sys_id: SysId::generate() }
}

fn integration() -> Arc<Integration> {
    Arc::new(Integration::builtin_default(&Catalog::builtin()))
}

fn table(name: &str) -> Arc<TableSchema> {
    Catalog::builtin().get(name).expect("built-in table").clone()
}

/// The default integration plus state and resolution fields, to drive an incident's lifecycle.
fn lifecycle_integration() -> Arc<Integration> {
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
fn job_raw(integration: &Integration, raw: &str, actor: &Actor, now: DateTime) -> ImportJob {
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

fn job(integration: &Integration, payload: serde_json::Value, actor: &Actor, now: DateTime) -> ImportJob {
    job_raw(integration, &payload.to_string(), actor, now)
}

/// The default integration with its staging table prepared in `store`.
async fn ready<S: Store + ?Sized>(store: &S) -> Arc<Integration> {
    let integration = integration();
    store.prepare_staging(integration.staging.clone()).await.expect("prepare staging");
    integration
}

async fn import<S: Store + ?Sized>(store: &S, job: ImportJob) -> ImportOutcome {
    store.import(job).await.expect("import")
}

/// Field equality filters, ANDed, as plain `?field=value` parameters give them.
fn equals(pairs: &[(&str, &str)]) -> EncodedQuery {
    let mut filter = EncodedQuery::default();
    for (field, value) in pairs {
        filter.and_equals(field, value);
    }
    filter
}

async fn list<S: Store + ?Sized>(store: &S, schema: Arc<TableSchema>, pairs: &[(&str, &str)]) -> Page {
    store.list(schema, ListQuery { filter: equals(pairs), limit: 10_000, offset: 0 }).await.expect("list")
}

async fn get<S: Store + ?Sized>(store: &S, schema: Arc<TableSchema>, sys_id: &str) -> Record {
    store
        .get(schema.clone(), sys_id.to_owned())
        .await
        .expect("get")
        .unwrap_or_else(|| panic!("{} has no record {sys_id}", schema.name))
}

async fn incident<S: Store + ?Sized>(store: &S, outcome: &ImportOutcome) -> Record {
    let id = outcome.target_sys_id.as_deref().expect("the outcome names its target");
    get(store, table(tables::INCIDENT), id).await
}

async fn staged<S: Store + ?Sized>(store: &S, integration: &Integration, outcome: &ImportOutcome) -> Record {
    get(store, integration.staging.clone(), outcome.staging_sys_id.as_str()).await
}

fn new_account(user_name: &str, roles: &[Role], hash: &str) -> NewAccount {
    NewAccount {
        user_name: user_name.into(),
        roles: roles.to_vec(),
        password_hash: hash.into(),
        created_by: "test".into(),
        now: at(0),
    }
}

/// An integration whose field map has a value map (`u_severity` → urgency), in `version`, with
/// `extra` appended to its `[transform]` table and more value-map entries.
fn mapped_integration(version: &str, value_map: &str, coalesce: bool) -> Arc<Integration> {
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
fn batch(integration: &Integration, payloads: &[serde_json::Value], actor: &Actor, now: DateTime) -> StageBatch {
    let rows = payloads
        .iter()
        .map(|p| StagedRecord {
            sys_id: SysId::generate(),
            payload: p.to_string().into_bytes(),
            columns: staging::stage(integration, p.as_object().expect("a JSON object")).columns,
        })
        .collect();
    StageBatch {
        staging: integration.staging.clone(),
        target: integration.target.clone(),
        transform_map: integration.definition.transform.name.clone(),
        multi_import_set: None,
        rows,
        actor: actor.clone(),
        now,
        idempotency: None,
    }
}

/// A stored row judged by `integration` from its raw payload, as the bulk worker and replays do.
fn process_job(
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
async fn rows_in<S: Store + ?Sized>(store: &S, integration: &Integration, state: RowState) -> Vec<Record> {
    let filter = RowFilter { state, since: None, after: 0, limit: 100_000 };
    let rows = store.staged_rows(integration.staging.clone(), filter).await.expect("staged rows");
    rows.into_iter().map(|r| r.record).collect()
}

/// Processes the rows in order; every job must have run (`Ok`).
async fn process_all<S: Store + ?Sized>(store: &S, jobs: Vec<ProcessJob>) -> Vec<Option<ImportOutcome>> {
    store.process(jobs).await.expect("process").into_iter().map(|r| r.expect("the row was processed")).collect()
}

// ---------------------------------------------------------------------------------------------
// The contract, generic over the store
// ---------------------------------------------------------------------------------------------

mod contract {
    use super::*;

    pub async fn ping<S: Store + ?Sized>(store: &S) {
        store.ping().await.expect("ping");
    }

    /// Incident numbers start at INC0010001 and count up; one import set per staging table and
    /// day, ISET0010001 first; a new day opens the next set and marks the old one processed.
    pub async fn numbers_and_import_sets<S: Store + ?Sized>(store: &S) {
        let i = ready(store).await;
        let a = actor();
        let first = import(store, job(&i, json!({"u_short_description": "Disk full"}), &a, at(0))).await;
        let second = import(store, job(&i, json!({"u_short_description": "CPU hot"}), &a, at(60))).await;
        assert_eq!((first.state, second.state), (RowState::Inserted, RowState::Inserted));
        assert_eq!(first.display_value.as_deref(), Some("INC0010001"));
        assert_eq!(second.display_value.as_deref(), Some("INC0010002"));
        assert_eq!(first.import_set, "ISET0010001");
        assert_eq!(second.import_set, "ISET0010001");
        assert_ne!(first.target_sys_id, second.target_sys_id);
        assert!(first.errors.is_empty() && first.status_message.is_none(), "{first:?}");

        let inc = incident(store, &first).await;
        assert_eq!(inc["number"], "INC0010001");
        assert_eq!(inc["short_description"], "Disk full");
        assert_eq!(inc["sys_created_by"], "integration.alerts");
        assert_eq!(inc["sys_created_on"], at(0).to_string());
        assert_eq!((inc["impact"].as_str(), inc["urgency"].as_str(), inc["priority"].as_str()), ("3", "3", "5"));
        assert_eq!(inc["active"], "true");
        assert_eq!(incident(store, &second).await["number"], "INC0010002");

        // The staging rows point at their set, numbered in arrival order, and at their target.
        let sets = list(store, table(tables::SYS_IMPORT_SET), &[]).await;
        assert_eq!(sets.total, 1);
        let set = &sets.records[0];
        assert_eq!(
            (set["number"].as_str(), set["table_name"].as_str(), set["state"].as_str()),
            ("ISET0010001", "u_incident_import", "loading")
        );
        for (n, outcome) in [&first, &second].into_iter().enumerate() {
            let row = staged(store, &i, outcome).await;
            assert_eq!(row["sys_import_set"], set["sys_id"]);
            assert_eq!(row["sys_import_row"], n.to_string());
            assert_eq!(row["sys_import_state"], "inserted");
            assert_eq!(Some(&row["sys_target_sys_id"]), outcome.target_sys_id.as_ref());
            assert_eq!(row["sys_target_table"], "incident");
            assert_eq!(row["sys_transform_map"], "Incident Import");
            assert_eq!(row["sys_integration_version"], "1");
        }

        // The next day: a new import set; the incident counter simply continues.
        let third = import(store, job(&i, json!({"u_short_description": "Fan noise"}), &a, at(ONE_DAY))).await;
        assert_eq!(third.import_set, "ISET0010002");
        assert_eq!(third.display_value.as_deref(), Some("INC0010003"));
        assert_eq!(staged(store, &i, &third).await["sys_import_row"], "0");
        let sets = list(store, table(tables::SYS_IMPORT_SET), &[]).await;
        let states: Vec<_> = sets.records.iter().map(|s| (s["number"].as_str(), s["state"].as_str())).collect();
        assert_eq!(states, vec![("ISET0010001", "processed"), ("ISET0010002", "loading")]);
    }

    /// The same correlation id (in any case) updates the active incident; an identical resend
    /// changes nothing; every change is audited with old and new value, user and source row.
    pub async fn coalesce_update_ignore_and_audit<S: Store + ?Sized>(store: &S) {
        let i = ready(store).await;
        let a = actor();
        let audit = table(tables::SYS_AUDIT);
        let payload =
            json!({"u_short_description": "Disk full", "u_correlation_id": "am:1", "u_impact": "2", "u_urgency": "2"});
        let inserted = import(store, job(&i, payload, &a, at(0))).await;
        assert_eq!(inserted.state, RowState::Inserted);
        let id = inserted.target_sys_id.clone().expect("target");

        // Every non-empty field of the new record is audited from "" (bookkeeping fields aren't).
        let trail = list(store, audit.clone(), &[("documentkey", &id)]).await;
        let created: Vec<_> = trail.records.iter().map(|r| r["fieldname"].as_str()).collect();
        for f in ["number", "short_description", "correlation_id", "impact", "urgency", "priority", "state"] {
            assert!(created.contains(&f), "{f} not audited on insert: {created:?}");
        }
        assert!(!created.contains(&"sys_mod_count") && !created.contains(&"description"), "{created:?}");
        for r in &trail.records {
            assert_eq!(r["oldvalue"], "", "{r:?}");
            assert_eq!(r["source_row"], inserted.staging_sys_id.as_str());
        }
        let before = trail.total;

        let changed = json!({"u_short_description": "Disk full again", "u_correlation_id": "AM:1", "u_impact": "2", "u_urgency": "1"});
        let updated = import(store, job(&i, changed.clone(), &a, at(60))).await;
        assert_eq!(updated.state, RowState::Updated, "{updated:?}");
        assert_eq!(updated.target_sys_id.as_deref(), Some(id.as_str()));
        assert_eq!(updated.display_value.as_deref(), Some("INC0010001"));
        assert_eq!(list(store, table(tables::INCIDENT), &[]).await.total, 1);

        let inc = incident(store, &updated).await;
        assert_eq!(inc["short_description"], "Disk full again");
        assert_eq!(inc["correlation_id"], "am:1", "the coalesce value identifies the record and is kept");
        assert_eq!((inc["urgency"].as_str(), inc["priority"].as_str()), ("1", "2"));
        assert_eq!(inc["sys_mod_count"], "1");
        assert_eq!(inc["sys_updated_on"], at(60).to_string());
        assert_eq!(staged(store, &i, &updated).await["sys_import_state"], "updated");

        let trail = list(store, audit.clone(), &[("documentkey", &id)]).await;
        let mut changes: Vec<_> = trail
            .records
            .iter()
            .filter(|r| r["source_row"] == updated.staging_sys_id.as_str())
            .map(|r| {
                assert_eq!(r["user"], "integration.alerts");
                assert_eq!(r["tablename"], "incident");
                assert_eq!(r["source_table"], "u_incident_import");
                assert_eq!(r["record_checkpoint"], "1");
                (r["fieldname"].clone(), r["oldvalue"].clone(), r["newvalue"].clone())
            })
            .collect();
        changes.sort();
        let expected: Vec<(String, String, String)> =
            [("priority", "3", "2"), ("short_description", "Disk full", "Disk full again"), ("urgency", "2", "1")]
                .iter()
                .map(|(f, o, n)| ((*f).into(), (*o).into(), (*n).into()))
                .collect();
        assert_eq!(changes, expected);
        assert_eq!(trail.total, before + 3);

        // The identical resend: nothing changes, nothing is audited.
        let resent = import(store, job(&i, changed, &a, at(120))).await;
        assert_eq!(resent.state, RowState::Ignored, "{resent:?}");
        assert_eq!(resent.status_message.as_deref(), Some("No field values changed"));
        assert_eq!(resent.target_sys_id.as_deref(), Some(id.as_str()));
        assert_eq!(incident(store, &resent).await["sys_mod_count"], "1");
        assert_eq!(list(store, audit.clone(), &[("documentkey", &id)]).await.total, before + 3);
        let row = staged(store, &i, &resent).await;
        assert_eq!(row["sys_import_state"], "ignored");
        assert_eq!(row["sys_import_state_comment"], "No field values changed");
        assert_eq!(row["sys_target_sys_id"], id);

        // A different correlation id is a different incident.
        let other = json!({"u_short_description": "Disk full", "u_correlation_id": "am:2"});
        let other = import(store, job(&i, other, &a, at(180))).await;
        assert_eq!(other.state, RowState::Inserted);
        assert_eq!(other.display_value.as_deref(), Some("INC0010002"));
    }

    /// A row that failed validation is kept in staging with its errors and raw body; no incident.
    pub async fn invalid_rows_are_staged_as_errors<S: Store + ?Sized>(store: &S) {
        let i = ready(store).await;
        // Odd spacing and a non-ASCII character: the stored payload is the body byte for byte.
        let raw = "{\"u_impact\": \"9\",   \"u_description\":\"caf\u{e9}\" ,\"u_short_description\": \"\"}";
        let job = job_raw(&i, raw, &actor(), at(0));
        let expected: Vec<FieldError> = job.verdict.clone().expect_err("the row is invalid");
        let outcome = import(store, job).await;
        assert_eq!(outcome.state, RowState::Error);
        assert_eq!(outcome.errors, expected);
        let codes: Vec<_> = outcome.errors.iter().map(|e| (e.field.as_str(), e.code)).collect();
        assert_eq!(
            codes,
            vec![("u_short_description", ErrorCode::FieldRequired), ("u_impact", ErrorCode::InvalidChoice)]
        );
        assert_eq!((outcome.target_sys_id.as_deref(), outcome.display_value.as_deref()), (None, None));
        assert_eq!(outcome.import_set, "ISET0010001");

        assert_eq!(list(store, table(tables::INCIDENT), &[]).await.total, 0);
        assert_eq!(list(store, table(tables::SYS_AUDIT), &[]).await.total, 0);

        let row = staged(store, &i, &outcome).await;
        assert_eq!(row["sys_id"], outcome.staging_sys_id.as_str());
        assert_eq!(row["sys_import_state"], "error");
        assert_eq!(row["sys_row_error"], validate::summary(&expected));
        assert!(row["sys_row_error"].contains("u_impact: \"9\" is not one of 1, 2, 3"), "{}", row["sys_row_error"]);
        let stored: Vec<FieldError> = serde_json::from_str(&row["sys_row_errors"]).expect("sys_row_errors is JSON");
        assert_eq!(stored, expected);
        assert_eq!(row["sys_target_sys_id"], "");
        assert_eq!(row["sys_payload"].as_bytes(), raw.as_bytes());
        assert_eq!((row["u_impact"].as_str(), row["u_description"].as_str()), ("9", "caf\u{e9}"));

        // The error row takes no incident number.
        let ok = import(store, super::job(&i, json!({"u_short_description": "x"}), &actor(), at(1))).await;
        assert_eq!(ok.display_value.as_deref(), Some("INC0010001"));
        assert_eq!(staged(store, &i, &ok).await["sys_import_row"], "1");
    }

    /// A plan ignored by an on_before script: the row is staged as `ignored` with the script's
    /// status message; no incident, no referenced record, no audit row, no number taken.
    pub async fn ignored_plans_write_only_the_staging_row<S: Store + ?Sized>(store: &S) {
        let i = ready(store).await;
        let mut job = job(&i, json!({"u_short_description": "x", "u_caller": "new.person"}), &actor(), at(0));
        job.verdict.as_mut().expect("valid").ignore = Some("duplicate alert".into());
        let outcome = import(store, job).await;
        assert_eq!(outcome.state, RowState::Ignored);
        assert_eq!(outcome.status_message.as_deref(), Some("duplicate alert"));
        assert_eq!(outcome.target_sys_id, None);
        assert!(outcome.errors.is_empty());
        let row = staged(store, &i, &outcome).await;
        assert_eq!(row["sys_import_state"], "ignored");
        assert_eq!(row["sys_import_state_comment"], "duplicate alert");
        assert_eq!(row["sys_target_sys_id"], "");
        assert_eq!(list(store, table(tables::INCIDENT), &[]).await.total, 0);
        assert_eq!(list(store, table(tables::SYS_AUDIT), &[]).await.total, 0);
        assert_eq!(list(store, table(tables::SYS_USER), &[("user_name", "new.person")]).await.total, 0);

        let ok = import(store, super::job(&i, json!({"u_short_description": "x"}), &actor(), at(1))).await;
        assert_eq!(ok.display_value.as_deref(), Some("INC0010001"));
    }

    /// References: an unknown caller becomes a user, reused whatever the case; a sys_id or an
    /// e-mail address also finds a user; an unknown group (on_unknown = ignore) stays empty and
    /// is reported in the status message.
    pub async fn reference_lookups<S: Store + ?Sized>(store: &S) {
        let i = ready(store).await;
        let a = actor();
        let users = table(tables::SYS_USER);

        let first =
            import(store, job(&i, json!({"u_short_description": "a", "u_caller": "monitoring.bot"}), &a, at(0))).await;
        assert_eq!(first.state, RowState::Inserted);
        assert_eq!(first.status_message, None);
        let caller = incident(store, &first).await["caller_id"].clone();
        assert!(SysId::is_valid(&caller), "{caller:?}");
        let user = get(store, users.clone(), &caller).await;
        assert_eq!((user["user_name"].as_str(), user["name"].as_str()), ("monitoring.bot", "monitoring.bot"));
        assert_eq!((user["email"].as_str(), user["active"].as_str()), ("", "true"));
        assert_eq!(list(store, users.clone(), &[]).await.total, 1);

        let second =
            import(store, job(&i, json!({"u_short_description": "b", "u_caller": "Monitoring.BOT"}), &a, at(1))).await;
        assert_eq!(incident(store, &second).await["caller_id"], caller);
        let by_id =
            import(store, job(&i, json!({"u_short_description": "c", "u_caller": caller.clone()}), &a, at(2))).await;
        assert_eq!(incident(store, &by_id).await["caller_id"], caller);
        assert_eq!(list(store, users.clone(), &[]).await.total, 1, "the caller is reused, not duplicated");

        // An e-mail address becomes the new user's e-mail, and is found again by it.
        let mail =
            import(store, job(&i, json!({"u_short_description": "d", "u_caller": "Ops@Example.com"}), &a, at(3))).await;
        let mail_user = incident(store, &mail).await["caller_id"].clone();
        assert_ne!(mail_user, caller);
        assert_eq!(get(store, users.clone(), &mail_user).await["email"], "Ops@Example.com");
        let again =
            import(store, job(&i, json!({"u_short_description": "e", "u_caller": "ops@example.COM"}), &a, at(4))).await;
        assert_eq!(incident(store, &again).await["caller_id"], mail_user);
        assert_eq!(list(store, users.clone(), &[]).await.total, 2);

        // Unknown group: the incident is created, the field left empty, the row says why.
        let grouped =
            import(store, job(&i, json!({"u_short_description": "f", "u_assignment_group": "Database"}), &a, at(5)))
                .await;
        assert_eq!(grouped.state, RowState::Inserted);
        let message = grouped.status_message.clone().expect("a status message for the unknown group");
        assert!(message.contains("assignment_group") && message.contains("Database"), "{message}");
        assert_eq!(incident(store, &grouped).await["assignment_group"], "");
        assert_eq!(list(store, table(tables::SYS_USER_GROUP), &[]).await.total, 0);
        assert_eq!(staged(store, &i, &grouped).await["sys_import_state_comment"], message);
    }

    /// Accounts: created with roles, found by name, listed, never duplicated; a user created by
    /// an import (no password) can become an account.
    pub async fn accounts<S: Store + ?Sized>(store: &S) {
        assert!(store.accounts().await.expect("accounts").is_empty());
        assert_eq!(store.account("alice".into()).await.expect("account"), None);

        let created = store
            .add_account(new_account("alice", &[Role::Itil, Role::ImportSetLoader], "$argon2id$alice"))
            .await
            .expect("add alice");
        assert_eq!(created.user_name, "alice");
        assert_eq!(created.roles, vec![Role::Itil, Role::ImportSetLoader]);
        assert!(created.active);
        let found = store.account("alice".into()).await.expect("account").expect("alice exists");
        assert_eq!(found, created);
        assert_eq!(found.password_hash, "$argon2id$alice");

        let user = get(store, table(tables::SYS_USER), found.sys_id.as_str()).await;
        assert_eq!((user["user_name"].as_str(), user["roles"].as_str()), ("alice", "itil,import_set_loader"));
        assert_eq!((user["web_service_access_only"].as_str(), user["sys_created_by"].as_str()), ("true", "test"));

        match store.add_account(new_account("alice", &[Role::Admin], "$argon2id$other")).await {
            Err(StoreError::Conflict(_)) => {}
            other => panic!("adding alice twice: {other:?}"),
        }
        let unchanged = store.account("alice".into()).await.expect("account").expect("alice");
        assert_eq!(unchanged, created, "a refused add changes nothing");

        // A caller created by an import is a user without credentials, not an account...
        let i = ready(store).await;
        let outcome =
            import(store, job(&i, json!({"u_short_description": "x", "u_caller": "bot"}), &actor(), at(0))).await;
        let caller = incident(store, &outcome).await["caller_id"].clone();
        assert_eq!(store.account("bot".into()).await.expect("account"), None);
        let names: Vec<_> = store.accounts().await.expect("accounts").into_iter().map(|a| a.user_name).collect();
        assert_eq!(names, vec!["alice"]);

        // ...until an account is added for it: the same user record gains roles and a password.
        let upgraded = store.add_account(new_account("bot", &[Role::Admin], "$argon2id$bot")).await.expect("add bot");
        assert_eq!(upgraded.sys_id.as_str(), caller);
        let bot = store.account("bot".into()).await.expect("account").expect("bot is an account");
        assert_eq!((bot.sys_id.as_str(), bot.roles.as_slice()), (caller.as_str(), &[Role::Admin][..]));
        assert_eq!(list(store, table(tables::SYS_USER), &[]).await.total, 2);
        let names: Vec<_> = store.accounts().await.expect("accounts").into_iter().map(|a| a.user_name).collect();
        assert_eq!(names, vec!["alice", "bot"]);
        assert!(matches!(
            store.add_account(new_account("bot", &[Role::Itil], "$argon2id$again")).await,
            Err(StoreError::Conflict(_))
        ));
    }

    /// Equality filters (ANDed), limit and offset over insertion order, and the total count.
    pub async fn list_filters_and_pages<S: Store + ?Sized>(store: &S) {
        let i = ready(store).await;
        let a = actor();
        let rows = [("network", "1"), ("database", "1"), ("network", "2"), ("network", "1"), ("database", "3")];
        for (n, (category, urgency)) in rows.iter().enumerate() {
            let payload =
                json!({"u_short_description": format!("row {n}"), "u_category": category, "u_urgency": urgency});
            assert_eq!(import(store, job(&i, payload, &a, at(n as i64))).await.state, RowState::Inserted);
        }
        let incidents = table(tables::INCIDENT);
        let numbers = |page: &Page| page.records.iter().map(|r| r["number"].clone()).collect::<Vec<_>>();
        let query = |pairs: &[(&str, &str)], limit, offset| ListQuery { filter: equals(pairs), limit, offset };

        let all = store.list(incidents.clone(), query(&[], 100, 0)).await.expect("list");
        assert_eq!(all.total, 5);
        assert_eq!(numbers(&all), ["INC0010001", "INC0010002", "INC0010003", "INC0010004", "INC0010005"]);

        let network = list(store, incidents.clone(), &[("category", "network")]).await;
        assert_eq!(network.total, 3);
        assert_eq!(numbers(&network), ["INC0010001", "INC0010003", "INC0010004"]);
        assert!(network.records.iter().all(|r| r["category"] == "network"));

        let both = list(store, incidents.clone(), &[("category", "network"), ("urgency", "1")]).await;
        assert_eq!((both.total, numbers(&both)), (2, vec!["INC0010001".to_owned(), "INC0010004".to_owned()]));

        let page1 = store.list(incidents.clone(), query(&[("category", "network")], 2, 0)).await.expect("list");
        let page2 = store.list(incidents.clone(), query(&[("category", "network")], 2, 2)).await.expect("list");
        let page3 = store.list(incidents.clone(), query(&[("category", "network")], 2, 4)).await.expect("list");
        assert_eq!((page1.total, page2.total, page3.total), (3, 3, 3), "total ignores limit and offset");
        assert_eq!(numbers(&page1), ["INC0010001", "INC0010003"]);
        assert_eq!(numbers(&page2), ["INC0010004"]);
        assert!(page3.records.is_empty());

        let middle = store.list(incidents.clone(), query(&[], 2, 1)).await.expect("list");
        assert_eq!((middle.total, numbers(&middle)), (5, vec!["INC0010002".to_owned(), "INC0010003".to_owned()]));

        let none = list(store, incidents.clone(), &[("category", "hardware")]).await;
        assert_eq!((none.total, none.records.len()), (0, 0));

        // Records carry every stored field.
        let one = &list(store, incidents, &[("number", "INC0010005")]).await.records[0];
        assert_eq!((one["short_description"].as_str(), one["category"].as_str()), ("row 4", "database"));
        assert_eq!(one["priority"], "5");
    }

    /// The business rules' data policy rejects a row without touching the incident; only active
    /// incidents are coalesced, so a closed one is not reopened by a later alert.
    pub async fn data_policy_and_active_only_coalesce<S: Store + ?Sized>(store: &S) {
        let i = lifecycle_integration();
        store.prepare_staging(i.staging.clone()).await.expect("prepare staging");
        let a = actor();
        let audit = table(tables::SYS_AUDIT);
        let opened =
            import(store, job(&i, json!({"u_short_description": "x", "u_correlation_id": "am:9"}), &a, at(0))).await;
        assert_eq!(opened.state, RowState::Inserted);
        let id = opened.target_sys_id.clone().expect("target");
        let audited = list(store, audit.clone(), &[("documentkey", &id)]).await.total;

        let refused = json!({"u_short_description": "x", "u_correlation_id": "am:9", "u_state": "6"});
        let refused = import(store, job(&i, refused, &a, at(10))).await;
        assert_eq!(refused.state, RowState::Error, "{refused:?}");
        let fields: Vec<_> = refused.errors.iter().map(|e| (e.field.as_str(), e.code)).collect();
        assert_eq!(fields, vec![("close_code", ErrorCode::DataPolicy), ("close_notes", ErrorCode::DataPolicy)]);
        let inc = get(store, table(tables::INCIDENT), &id).await;
        assert_eq!((inc["state"].as_str(), inc["sys_mod_count"].as_str()), ("1", "0"), "the incident is untouched");
        assert_eq!(list(store, audit.clone(), &[("documentkey", &id)]).await.total, audited);
        let row = staged(store, &i, &refused).await;
        assert_eq!(row["sys_import_state"], "error");
        assert!(row["sys_row_error"].contains("close_code"), "{}", row["sys_row_error"]);

        let resolve = json!({"u_short_description": "x", "u_correlation_id": "am:9", "u_state": "6",
            "u_close_code": "Solution provided", "u_close_notes": "rebooted"});
        let resolved = import(store, job(&i, resolve, &a, at(20))).await;
        assert_eq!(resolved.state, RowState::Updated, "{resolved:?}");
        let inc = incident(store, &resolved).await;
        assert_eq!((inc["state"].as_str(), inc["active"].as_str()), ("6", "true"));
        assert_eq!(inc["resolved_at"], at(20).to_string());

        let closed = import(
            store,
            job(&i, json!({"u_short_description": "x", "u_correlation_id": "am:9", "u_state": "7"}), &a, at(30)),
        )
        .await;
        assert_eq!(closed.state, RowState::Updated, "{closed:?}");
        assert_eq!(incident(store, &closed).await["active"], "false");

        // The closed incident no longer matches: the same correlation id opens a new one.
        let again =
            import(store, job(&i, json!({"u_short_description": "x", "u_correlation_id": "am:9"}), &a, at(40))).await;
        assert_eq!(again.state, RowState::Inserted, "{again:?}");
        assert_ne!(again.target_sys_id.as_deref(), Some(id.as_str()));
        assert_eq!(list(store, table(tables::INCIDENT), &[("correlation_id", "am:9")]).await.total, 2);

        // A refused insert does not use up a number.
        let refused = json!({"u_short_description": "y", "u_correlation_id": "am:10", "u_state": "7"});
        assert_eq!(import(store, job(&i, refused, &a, at(50))).await.state, RowState::Error);
        let next = import(store, job(&i, json!({"u_short_description": "z"}), &a, at(60))).await;
        assert_eq!(next.display_value.as_deref(), Some("INC0010003"), "{next:?}");
    }

    /// Preparing a staging table twice is harmless and keeps its rows.
    pub async fn prepare_staging_is_idempotent<S: Store + ?Sized>(store: &S) {
        let i = ready(store).await;
        let first = import(store, job(&i, json!({"u_short_description": "a"}), &actor(), at(0))).await;
        store.prepare_staging(i.staging.clone()).await.expect("prepare again");
        store.prepare_staging(i.staging.clone()).await.expect("and again");
        let second = import(store, job(&i, json!({"u_short_description": "b"}), &actor(), at(1))).await;
        assert_eq!(second.display_value.as_deref(), Some("INC0010002"));
        assert_eq!(list(store, i.staging.clone(), &[]).await.total, 2);
        assert_eq!(staged(store, &i, &first).await["sys_import_state"], "inserted");
    }

    /// What a store wrote is there after it is closed and opened again; numbering continues.
    pub async fn survives_reopen<S: Store, F: Fn() -> S>(open: F) {
        let store = open();
        let i = ready(&store).await;
        let a = actor();
        let payload = json!({"u_short_description": "Disk full", "u_correlation_id": "am:7", "u_caller": "bot"});
        let first = import(&store, job(&i, payload, &a, at(0))).await;
        let second = import(&store, job(&i, json!({"u_short_description": "b"}), &a, at(1))).await;
        store.add_account(new_account("alice", &[Role::Admin], "$argon2id$alice")).await.expect("add alice");
        store.close().await;
        assert!(
            matches!(
                store.import(job(&i, json!({"u_short_description": "late"}), &a, at(2))).await,
                Err(StoreError::Closed)
            ),
            "a closed store refuses writes"
        );
        drop(store);

        let store = open();
        store.ping().await.expect("ping after reopen");
        let i = ready(&store).await;
        assert_eq!(incident(&store, &first).await["number"], "INC0010001");
        assert_eq!(incident(&store, &second).await["number"], "INC0010002");
        assert_eq!(staged(&store, &i, &second).await["sys_import_state"], "inserted");
        assert_eq!(list(&store, table(tables::INCIDENT), &[]).await.total, 2);
        assert!(list(&store, table(tables::SYS_AUDIT), &[]).await.total > 0);
        let alice = store.account("alice".into()).await.expect("account").expect("alice survives");
        assert_eq!(alice.roles, vec![Role::Admin]);

        let third = import(&store, job(&i, json!({"u_short_description": "c"}), &a, at(2))).await;
        assert_eq!(third.display_value.as_deref(), Some("INC0010003"));
        assert_eq!(third.import_set, "ISET0010001", "today's import set is still open");
        assert_eq!(staged(&store, &i, &third).await["sys_import_row"], "2");
        let coalesced = json!({"u_short_description": "Disk still full", "u_correlation_id": "AM:7"});
        let coalesced = import(&store, job(&i, coalesced, &a, at(3))).await;
        assert_eq!(coalesced.state, RowState::Updated);
        assert_eq!(coalesced.target_sys_id, first.target_sys_id);
        store.close().await;
    }

    /// Concurrent imports without a correlation id each get their own number, none skipped.
    pub async fn concurrent_inserts_get_distinct_numbers<S: Store>(store: Arc<S>) {
        let i = ready(store.as_ref()).await;
        let a = actor();
        let tasks: Vec<_> = (0..100)
            .map(|n| {
                let store = store.clone();
                let job = job(&i, json!({"u_short_description": format!("alert {n}")}), &a, at(0));
                tokio::spawn(async move { store.import(job).await })
            })
            .collect();
        let mut numbers = BTreeSet::new();
        let mut targets = BTreeSet::new();
        for task in tasks {
            let outcome = task.await.expect("task").expect("import");
            assert_eq!(outcome.state, RowState::Inserted, "{outcome:?}");
            assert_eq!(outcome.import_set, "ISET0010001");
            numbers.insert(outcome.display_value.expect("number"));
            targets.insert(outcome.target_sys_id.expect("target"));
        }
        let expected: BTreeSet<String> = (10_001..=10_100).map(|n| format!("INC{n:07}")).collect();
        assert_eq!(numbers, expected);
        assert_eq!(targets.len(), 100);
        assert_eq!(list(store.as_ref(), table(tables::INCIDENT), &[]).await.total, 100);
        assert_eq!(list(store.as_ref(), table(tables::SYS_IMPORT_SET), &[]).await.total, 1);
        let rows: BTreeSet<_> = list(store.as_ref(), i.staging.clone(), &[])
            .await
            .records
            .into_iter()
            .map(|r| r["sys_import_row"].clone())
            .collect();
        assert_eq!(rows, (0..100).map(|n| n.to_string()).collect(), "row numbers within the set are unique");
    }

    /// Concurrent imports with one correlation id create exactly one incident; the rest update it.
    pub async fn concurrent_coalesce_inserts_once<S: Store>(store: Arc<S>) {
        let i = ready(store.as_ref()).await;
        let a = actor();
        let tasks: Vec<_> = (0..50)
            .map(|n| {
                let store = store.clone();
                let payload = json!({"u_short_description": format!("flapping {n}"), "u_correlation_id": "am:storm"});
                let job = job(&i, payload, &a, at(0));
                tokio::spawn(async move { store.import(job).await })
            })
            .collect();
        let mut inserted = 0;
        let mut updated = 0;
        let mut targets = BTreeSet::new();
        for task in tasks {
            let outcome = task.await.expect("task").expect("import");
            match outcome.state {
                RowState::Inserted => inserted += 1,
                RowState::Updated => updated += 1,
                other => panic!("unexpected {other:?}: {outcome:?}"),
            }
            assert_eq!(outcome.display_value.as_deref(), Some("INC0010001"));
            targets.insert(outcome.target_sys_id.expect("target"));
        }
        assert_eq!((inserted, updated), (1, 49));
        assert_eq!(targets.len(), 1);
        let page = list(store.as_ref(), table(tables::INCIDENT), &[]).await;
        assert_eq!(page.total, 1);
        assert_eq!(page.records[0]["sys_mod_count"], "49");
    }

    /// insertMultiple with an Idempotency-Key: a retry of the same request stages nothing and
    /// answers the first import set; the key with another request is refused, staging nothing.
    pub async fn bulk_idempotency_keys_answer_the_first_import_set<S: Store + ?Sized>(store: &S) {
        let i = ready(store).await;
        let a = actor();
        let key = |fingerprint: &str| Some(Idempotency { key: "load-1".into(), fingerprint: fingerprint.into() });
        let payloads = [json!({"u_short_description": "once"}), json!({"u_short_description": "twice"})];
        let first = StageBatch { idempotency: key("f1"), ..batch(&i, &payloads, &a, at(0)) };
        let staged = store.stage_many(first.clone()).await.expect("stage_many");
        assert!(!staged.replayed);
        let retry = StageBatch { idempotency: key("f1"), ..batch(&i, &payloads, &a, at(5)) };
        let again = store.stage_many(retry).await.expect("retry");
        assert!(again.replayed);
        assert_eq!(
            (&again.import_set, &again.number, &again.multi_import_set),
            (&staged.import_set, &staged.number, &staged.multi_import_set)
        );
        let other = StageBatch { idempotency: key("f2"), ..batch(&i, &payloads[..1], &a, at(6)) };
        assert!(matches!(store.stage_many(other).await, Err(StoreError::KeyReused)));
        // Another account's key is its own.
        let b = Actor { user_name: "someone.else".into(), sys_id: SysId::generate() };
        let theirs = store.stage_many(StageBatch { idempotency: key("f2"), ..batch(&i, &payloads, &b, at(7)) });
        assert!(!theirs.await.expect("another account").replayed);
        assert_eq!(list(store, i.staging.clone(), &[]).await.total, 4);
        assert_eq!(list(store, table(tables::SYS_IMPORT_SET), &[]).await.total, 2);
    }

    /// insertMultiple: every record is staged `pending` in one new asynchronous import set with
    /// its payload, and nothing is transformed; processing then updates each row in place, in
    /// order, exactly once, and the set becomes `processed` with its last pending row.
    pub async fn bulk_rows_are_staged_then_processed_once<S: Store + ?Sized>(store: &S) {
        let i = ready(store).await;
        let a = actor();
        let payloads = [
            json!({"u_short_description": "Disk full", "u_correlation_id": "b:1"}),
            json!({"u_short_description": "Disk fuller", "u_correlation_id": "B:1", "u_urgency": "1"}),
            json!({"u_impact": "9"}),
        ];
        let set = store.stage_many(batch(&i, &payloads, &a, at(0))).await.expect("stage_many");
        assert_eq!(set.number, "ISET0010001");
        assert!(SysId::is_valid(&set.import_set) && SysId::is_valid(&set.multi_import_set), "{set:?}");
        let record = get(store, table(tables::SYS_IMPORT_SET), &set.import_set).await;
        assert_eq!(
            (record["mode"].as_str(), record["state"].as_str(), record["multi_import_set"].as_str()),
            ("asynchronous", "loaded", set.multi_import_set.as_str())
        );
        assert_eq!(list(store, table(tables::INCIDENT), &[]).await.total, 0);
        let counts = store.state_counts(i.staging.clone(), set.import_set.clone()).await.expect("counts");
        assert_eq!(counts, StateCounts { pending: 3, ..StateCounts::default() });

        // Pending rows come back in staging order, after a cursor.
        let pending = store
            .staged_rows(i.staging.clone(), RowFilter { state: RowState::Pending, since: None, after: 0, limit: 10 })
            .await
            .expect("staged rows");
        assert_eq!(pending.len(), 3);
        for (n, row) in pending.iter().enumerate() {
            assert_eq!(row.record["sys_import_row"], n.to_string());
            assert_eq!(row.record["sys_import_set"], set.import_set);
            assert_eq!(row.record["sys_import_state"], "pending");
            assert_eq!(row.record["sys_payload"], payloads[n].to_string());
            assert_eq!(row.record["sys_integration_version"], "", "no definition processed it yet");
        }
        assert_eq!(pending[0].record["u_correlation_id"], "b:1");
        let after = RowFilter { state: RowState::Pending, since: None, after: pending[0].position, limit: 1 };
        let next = store.staged_rows(i.staging.clone(), after).await.expect("staged rows");
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].record["sys_id"], pending[1].record["sys_id"]);
        let later = RowFilter { state: RowState::Pending, since: Some(at(1)), after: 0, limit: 10 };
        assert!(store.staged_rows(i.staging.clone(), later).await.expect("staged rows").is_empty());

        let jobs = |now| pending.iter().map(|r| process_job(&i, &r.record, RowState::Pending, &a, now, None)).collect();
        let outcomes = process_all(store, jobs(at(5))).await;
        let outcomes: Vec<ImportOutcome> = outcomes.into_iter().map(|o| o.expect("pending rows run")).collect();
        let states: Vec<_> = outcomes.iter().map(|o| o.state).collect();
        assert_eq!(states, vec![RowState::Inserted, RowState::Updated, RowState::Error]);
        assert_eq!(
            outcomes[0].target_sys_id, outcomes[1].target_sys_id,
            "in order: the second row updates the first's incident"
        );
        assert_eq!(outcomes[0].import_set, "ISET0010001");
        assert_eq!(
            outcomes[2].errors.iter().map(|e| e.code).collect::<Vec<_>>(),
            vec![ErrorCode::FieldRequired, ErrorCode::InvalidChoice]
        );
        let inc = incident(store, &outcomes[1]).await;
        assert_eq!((inc["short_description"].as_str(), inc["urgency"].as_str()), ("Disk fuller", "1"));
        assert_eq!(list(store, table(tables::INCIDENT), &[]).await.total, 1);

        // The rows were updated in place: same sys_ids, their outcome, the version, when.
        assert_eq!(list(store, i.staging.clone(), &[]).await.total, 3);
        for (row, outcome) in pending.iter().zip(&outcomes) {
            let stored = staged(store, &i, outcome).await;
            assert_eq!(stored["sys_id"], row.record["sys_id"]);
            assert_eq!(stored["sys_import_state"], outcome.state.as_str());
            assert_eq!(stored["sys_integration_version"], "1");
            assert_eq!(stored["sys_updated_on"], at(5).to_string());
            assert_eq!(stored["sys_mod_count"], "1");
        }
        let audit = list(store, table(tables::SYS_AUDIT), &[("source_row", outcomes[0].staging_sys_id.as_str())]).await;
        assert!(audit.total > 0);
        assert!(
            audit.records.iter().all(|r| r["reason"].starts_with("Import Set u_incident_import row ")),
            "{audit:?}"
        );

        // Processing again (a second worker, a restart) does nothing.
        let again = process_all(store, jobs(at(9))).await;
        assert!(again.iter().all(Option::is_none), "{again:?}");
        assert_eq!(list(store, table(tables::INCIDENT), &[]).await.total, 1);
        assert_eq!(
            get(store, table(tables::INCIDENT), outcomes[0].target_sys_id.as_deref().unwrap()).await["sys_mod_count"],
            "1"
        );

        let counts = store.state_counts(i.staging.clone(), set.import_set.clone()).await.expect("counts");
        assert_eq!(counts, StateCounts { inserted: 1, updated: 1, error: 1, ..StateCounts::default() });
        assert_eq!(counts.total(), 3);
        assert_eq!(get(store, table(tables::SYS_IMPORT_SET), &set.import_set).await["state"], "processed");

        // A bulk set is not the day's web-service set: a single row opens its own.
        let single = import(store, job(&i, json!({"u_short_description": "single"}), &a, at(10))).await;
        assert_eq!(single.import_set, "ISET0010002");
        // A second batch can join the same multi import set.
        let mut joined = batch(&i, &payloads[..1], &a, at(11));
        joined.multi_import_set = Some(set.multi_import_set.clone());
        let joined = store.stage_many(joined).await.expect("stage_many");
        assert_eq!(
            (joined.number.as_str(), joined.multi_import_set.as_str()),
            ("ISET0010003", set.multi_import_set.as_str())
        );
    }

    /// Replay: stored rows run again under the current definition. Error rows that a mapping fix
    /// makes valid become incidents; a row that already has a target updates that record (even
    /// where the definition would not find it), never a second one; the audit names the replay.
    pub async fn replay_reruns_stored_rows_in_place<S: Store + ?Sized>(store: &S) {
        let v1 = mapped_integration("1", "major = \"2\"", true);
        store.prepare_staging(v1.staging.clone()).await.expect("prepare staging");
        let a = actor();
        let payloads = [
            json!({"u_id": "r:1", "u_summary": "Router down", "u_severity": "critical"}),
            json!({"u_id": "r:2", "u_summary": "Switch flapping", "u_severity": "major"}),
        ];
        store.stage_many(batch(&v1, &payloads, &a, at(0))).await.expect("stage_many");
        let rows = rows_in(store, &v1, RowState::Pending).await;
        let jobs = rows.iter().map(|r| process_job(&v1, r, RowState::Pending, &a, at(1), None)).collect();
        let first: Vec<_> = process_all(store, jobs).await.into_iter().map(Option::unwrap).collect();
        assert_eq!((first[0].state, first[1].state), (RowState::Error, RowState::Inserted));
        assert_eq!(first[0].errors[0].code, ErrorCode::InvalidChoice);

        // The fix: version 2 knows "critical". Replaying the error rows creates the incident.
        let v2 = mapped_integration("2", "major = \"2\", critical = \"1\"", true);
        let errors = rows_in(store, &v2, RowState::Error).await;
        assert_eq!(errors.len(), 1);
        let jobs = errors.iter().map(|r| process_job(&v2, r, RowState::Error, &a, at(60), Some("admin"))).collect();
        let replayed = process_all(store, jobs).await.remove(0).expect("the error row was replayed");
        assert_eq!(replayed.state, RowState::Inserted, "{replayed:?}");
        assert_eq!(replayed.staging_sys_id, first[0].staging_sys_id, "the row itself is updated");
        assert!(replayed.errors.is_empty());
        let inc = incident(store, &replayed).await;
        assert_eq!((inc["correlation_id"].as_str(), inc["urgency"].as_str()), ("r:1", "1"));
        let row = staged(store, &v2, &replayed).await;
        assert_eq!((row["sys_import_state"].as_str(), row["sys_integration_version"].as_str()), ("inserted", "2"));
        assert_eq!((row["sys_row_error"].as_str(), row["sys_row_errors"].as_str()), ("", ""));
        assert_eq!(row["sys_target_sys_id"], inc["sys_id"]);
        let audit = list(store, table(tables::SYS_AUDIT), &[("documentkey", &inc["sys_id"])]).await;
        assert!(audit.total > 0);
        for r in &audit.records {
            assert!(r["reason"].starts_with("Replay of Import Set u_mapped row "), "{r:?}");
            assert!(r["reason"].ends_with("(requested by admin)"), "{r:?}");
            assert_eq!(r["source_row"], replayed.staging_sys_id.as_str());
        }
        assert_eq!(list(store, table(tables::INCIDENT), &[]).await.total, 2);

        // Replaying the same error row again: it is no longer an error, nothing happens.
        let jobs = errors.iter().map(|r| process_job(&v2, r, RowState::Error, &a, at(61), Some("admin"))).collect();
        assert_eq!(process_all(store, jobs).await, vec![None]);
        assert!(rows_in(store, &v2, RowState::Error).await.is_empty());

        // Replaying the inserted rows with the same definition changes nothing.
        let inserted = rows_in(store, &v2, RowState::Inserted).await;
        assert_eq!(inserted.len(), 2);
        let jobs =
            inserted.iter().map(|r| process_job(&v2, r, RowState::Inserted, &a, at(62), Some("admin"))).collect();
        let states: Vec<_> = process_all(store, jobs).await.into_iter().map(|o| o.unwrap().state).collect();
        assert_eq!(states, vec![RowState::Ignored, RowState::Ignored]);

        // Version 3 drops the coalesce: the rows still update the incidents they produced.
        let v3 = mapped_integration("3", "major = \"3\", critical = \"3\"", false);
        let ignored = rows_in(store, &v3, RowState::Ignored).await;
        let jobs = ignored.iter().map(|r| process_job(&v3, r, RowState::Ignored, &a, at(63), Some("admin"))).collect();
        let again: Vec<_> = process_all(store, jobs).await.into_iter().map(Option::unwrap).collect();
        assert_eq!((again[0].state, again[1].state), (RowState::Updated, RowState::Updated), "{again:?}");
        assert_eq!(again[0].target_sys_id.as_deref(), Some(inc["sys_id"].as_str()));
        assert_eq!(again[1].target_sys_id, first[1].target_sys_id);
        assert_eq!(list(store, table(tables::INCIDENT), &[]).await.total, 2);
        assert_eq!(incident(store, &again[0]).await["urgency"], "3");
        assert_eq!(staged(store, &v3, &again[0]).await["sys_integration_version"], "3");
    }

    /// Retention: staged rows older than the cut-off are purged unless pending; import sets are
    /// purged once empty; incidents stay.
    /// Statistics counters: the same key added twice (two nodes, or two flushes) adds up and
    /// widens first/last seen; reads sum minutes at or after the window start, per account,
    /// integration and name, filtered by account or integration.
    pub async fn stats_add_up_per_key_and_sum_over_windows<S: Store + ?Sized>(store: &S) {
        let d = |minute: i64, account: &str, integration: &str, metric: &str, value: i64, first: i64, last: i64| {
            StatsDelta {
                minute,
                account: account.into(),
                integration: integration.into(),
                metric: metric.into(),
                value,
                first_seen: first,
                last_seen: last,
            }
        };
        store.add_stats(vec![]).await.expect("nothing to add");
        store
            .add_stats(vec![
                d(100, "alerts", "u_a", "received", 2, 6_000_100, 6_000_900),
                d(100, "alerts", "u_a", "error:required", 1, 6_000_200, 6_000_200),
                d(101, "alerts", "u_a", "received", 1, 6_060_000, 6_060_000),
                d(101, "desk", "", "received", 4, 6_060_500, 6_061_000),
            ])
            .await
            .expect("add");
        // Another node flushing the same minute and key.
        store.add_stats(vec![d(100, "alerts", "u_a", "received", 3, 6_000_050, 6_000_500)]).await.expect("add");

        let total = |t: &[StatsTotal], account: &str, metric: &str| {
            t.iter().find(|x| x.account == account && x.metric == metric).map(|x| (x.value, x.first_seen, x.last_seen))
        };
        let all = store.stats(StatsFilter::default()).await.expect("stats");
        assert_eq!(all.len(), 3);
        assert_eq!(total(&all, "alerts", "received"), Some((6, 6_000_050, 6_060_000)));
        assert_eq!(total(&all, "alerts", "error:required"), Some((1, 6_000_200, 6_000_200)));
        assert_eq!(total(&all, "desk", "received"), Some((4, 6_060_500, 6_061_000)));

        let recent = store.stats(StatsFilter { since_minute: 101, ..StatsFilter::default() }).await.expect("stats");
        assert_eq!(total(&recent, "alerts", "received"), Some((1, 6_060_000, 6_060_000)));
        assert_eq!(total(&recent, "alerts", "error:required"), None);

        let of_a = StatsFilter { integration: Some("u_a".into()), ..StatsFilter::default() };
        let of_a = store.stats(of_a).await.expect("stats");
        assert!(of_a.iter().all(|t| t.integration == "u_a" && t.account == "alerts"), "{of_a:?}");
        let desk = StatsFilter { account: Some("desk".into()), ..StatsFilter::default() };
        assert_eq!(store.stats(desk).await.expect("stats").len(), 1);
        let nobody = StatsFilter { account: Some("nobody".into()), ..StatsFilter::default() };
        assert!(store.stats(nobody).await.expect("stats").is_empty());

        // Retention: minutes before the cut go, the rest stays.
        assert_eq!(store.purge_stats(101).await.expect("purge"), 2);
        let left = store.stats(StatsFilter::default()).await.expect("stats");
        assert_eq!(total(&left, "alerts", "received"), Some((1, 6_060_000, 6_060_000)));
        assert_eq!(total(&left, "desk", "received"), Some((4, 6_060_500, 6_061_000)));
        assert_eq!(store.purge_stats(101).await.expect("purge"), 0);
    }

    pub async fn purge_keeps_pending_rows<S: Store + ?Sized>(store: &S) {
        let i = ready(store).await;
        let a = actor();
        let old = import(store, job(&i, json!({"u_short_description": "old"}), &a, at(0))).await;
        let waiting =
            store.stage_many(batch(&i, &vec![json!({"u_short_description": "waiting"}); 2], &a, at(0))).await.unwrap();
        let done = store.stage_many(batch(&i, &[json!({"u_short_description": "done"})], &a, at(0))).await.unwrap();
        let done_rows: Vec<_> = rows_in(store, &i, RowState::Pending)
            .await
            .into_iter()
            .filter(|r| r["sys_import_set"] == done.import_set)
            .collect();
        let jobs = done_rows.iter().map(|r| process_job(&i, r, RowState::Pending, &a, at(1), None)).collect();
        process_all(store, jobs).await;
        let recent = import(store, job(&i, json!({"u_short_description": "recent"}), &a, at(2 * ONE_DAY))).await;
        assert_eq!(list(store, i.staging.clone(), &[]).await.total, 5);

        let report = store.purge_staging(i.staging.clone(), at(ONE_DAY), 1_000).await.expect("purge");
        assert_eq!((report.rows, report.import_sets), (2, 2), "{report:?}");
        let left = list(store, i.staging.clone(), &[]).await;
        let mut kept: Vec<_> = left.records.iter().map(|r| r["sys_import_state"].as_str()).collect();
        kept.sort();
        assert_eq!(kept, vec!["inserted", "pending", "pending"]);
        assert!(store.get(i.staging.clone(), old.staging_sys_id.to_string()).await.unwrap().is_none());
        assert!(store.get(i.staging.clone(), recent.staging_sys_id.to_string()).await.unwrap().is_some());
        let sets = list(store, table(tables::SYS_IMPORT_SET), &[]).await;
        let mut numbers: Vec<_> = sets.records.iter().map(|s| s["sys_id"].clone()).collect();
        numbers.sort();
        let recent_set = staged(store, &i, &recent).await["sys_import_set"].clone();
        let mut expected = vec![waiting.import_set.clone(), recent_set];
        expected.sort();
        assert_eq!(numbers, expected, "the emptied sets are gone, the one with pending rows stays");
        assert_eq!(list(store, table(tables::INCIDENT), &[]).await.total, 3);

        // Nothing more to purge; a limit bounds one pass.
        assert_eq!(store.purge_staging(i.staging.clone(), at(ONE_DAY), 1_000).await.unwrap().rows, 0);
        let report = store.purge_staging(i.staging.clone(), at(3 * ONE_DAY), 0).await.unwrap();
        assert_eq!(report.rows, 0);
        let report = store.purge_staging(i.staging.clone(), at(3 * ONE_DAY), 1_000).await.unwrap();
        assert_eq!(report.rows, 1, "only pending rows are left");
    }
}

// ---------------------------------------------------------------------------------------------
// SQLite
// ---------------------------------------------------------------------------------------------

fn open_sqlite(dir: &Path) -> SqliteStore {
    SqliteStore::open(dir, SqliteOptions::default()).expect("open the SQLite store")
}

/// Each test gets a fresh store in its own temporary folder.
macro_rules! sqlite_contract {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = open_sqlite(dir.path());
            contract::$name(&store).await;
            store.close().await;
        }
    )*};
}

sqlite_contract!(
    ping,
    numbers_and_import_sets,
    coalesce_update_ignore_and_audit,
    invalid_rows_are_staged_as_errors,
    ignored_plans_write_only_the_staging_row,
    reference_lookups,
    accounts,
    list_filters_and_pages,
    prepare_staging_is_idempotent,
    data_policy_and_active_only_coalesce,
    bulk_rows_are_staged_then_processed_once,
    bulk_idempotency_keys_answer_the_first_import_set,
    replay_reruns_stored_rows_in_place,
    purge_keeps_pending_rows,
    stats_add_up_per_key_and_sum_over_windows,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dyn_store_runs_the_contract() {
    // The server holds the store as `Arc<dyn Store>`; the contract works through it too.
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(open_sqlite(dir.path()));
    contract::ping(store.as_ref()).await;
    contract::numbers_and_import_sets(store.as_ref()).await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    contract::survives_reopen(|| open_sqlite(dir.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_inserts_get_distinct_numbers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(open_sqlite(dir.path()));
    contract::concurrent_inserts_get_distinct_numbers(store.clone()).await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_coalesce_inserts_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(open_sqlite(dir.path()));
    contract::concurrent_coalesce_inserts_once(store.clone()).await;
    store.close().await;
}

// ---------------------------------------------------------------------------------------------
// Account management, API tokens and the admin audit
// ---------------------------------------------------------------------------------------------

mod account_contract {
    use sluice_store::{AccountAction, AccountChange, AdminAuditEntry};

    use super::*;

    pub fn change(user_name: &str, action: AccountAction, secs: i64) -> AccountChange {
        AccountChange { user_name: user_name.into(), action, by: "root.admin".into(), now: at(secs) }
    }

    pub fn create(roles: &[Role], hash: &str, web_service_only: bool) -> AccountAction {
        AccountAction::Create {
            roles: roles.to_vec(),
            password_hash: hash.into(),
            web_service_only,
            policy: AccountPolicy::default(),
        }
    }

    pub fn update(active: Option<bool>, roles: Option<&[Role]>, web_service_only: Option<bool>) -> AccountAction {
        AccountAction::Update {
            active,
            roles: roles.map(<[Role]>::to_vec),
            web_service_only,
            networks: None,
            rate: None,
        }
    }

    /// Source networks and a rate limit are stored with the account, changed on their own,
    /// cleared again, raise the credentials version and are recorded in the admin audit.
    pub async fn account_policies<S: Store + ?Sized>(store: &S) {
        let nets: Vec<IpNet> = ["10.0.0.0/8", "2001:db8::/32"].iter().map(|n| parse_network(n).unwrap()).collect();
        let policy = AccountPolicy { networks: nets.clone(), rate: Some(AccountRate { per_second: 5, burst: 10 }) };
        let action = AccountAction::Create {
            roles: vec![Role::ImportSetLoader],
            password_hash: "$argon2id$x".into(),
            web_service_only: true,
            policy: policy.clone(),
        };
        let created = apply(store, change("fenced", action, 0)).await.expect("created");
        assert_eq!(created.policy, policy);
        assert_eq!(store.account("fenced".into()).await.unwrap().unwrap().policy, policy);

        let only_v6 = vec![nets[1]];
        let set_networks = AccountAction::Update {
            active: None,
            roles: None,
            web_service_only: None,
            networks: Some(only_v6.clone()),
            rate: None,
        };
        let changed = apply(store, change("fenced", set_networks, 1)).await.expect("changed");
        assert_eq!(changed.policy.networks, only_v6);
        assert_eq!(changed.policy.rate, policy.rate, "the rate is left alone");
        assert!(changed.credentials_version > created.credentials_version);

        let clear = AccountAction::Update {
            active: None,
            roles: None,
            web_service_only: None,
            networks: Some(vec![]),
            rate: Some(None),
        };
        let cleared = apply(store, change("fenced", clear, 2)).await.expect("cleared");
        assert_eq!(cleared.policy, AccountPolicy::default());
        assert_eq!(store.account("fenced".into()).await.unwrap().unwrap().policy, AccountPolicy::default());

        let (audit, _) = store.admin_audit(10, 0).await.expect("audit");
        assert_eq!(audit[0].details["rate"], json!({"from": {"per_second": 5, "burst": 10}, "to": null}));
        assert_eq!(
            audit[1].details["networks"],
            json!({"from": ["10.0.0.0/8", "2001:db8::/32"], "to": ["2001:db8::/32"]})
        );
        assert_eq!(audit[2].details["networks"], json!(["10.0.0.0/8", "2001:db8::/32"]));
    }

    async fn apply<S: Store + ?Sized>(store: &S, c: AccountChange) -> Option<sluice_core::account::Account> {
        store.change_account(c).await.expect("change_account")
    }

    /// Create, disable, enable, change roles and flag, set a password: each change is stored,
    /// visible through `account`, and raises the credentials version (and its time stamp).
    pub async fn account_changes_raise_the_credentials_version<S: Store + ?Sized>(store: &S) {
        let users = table(tables::SYS_USER);
        let created = apply(store, change("partner", create(&[Role::ImportSetLoader], "$argon2id$1", false), 0))
            .await
            .expect("created");
        assert_eq!((created.user_name.as_str(), created.roles.as_slice()), ("partner", &[Role::ImportSetLoader][..]));
        assert!(created.active && !created.web_service_only);
        assert_eq!(created.credentials_version, 1);
        let row = get(store, users.clone(), created.sys_id.as_str()).await;
        assert_eq!(row["web_service_access_only"], "false");
        assert_eq!(row["credentials_changed_at"], at(0).to_string());
        assert_eq!(row["sys_created_by"], "root.admin");
        match store.change_account(change("partner", create(&[Role::Admin], "$argon2id$2", true), 1)).await {
            Err(StoreError::Conflict(_)) => {}
            other => panic!("creating partner twice: {other:?}"),
        }

        let disabled = apply(store, change("partner", update(Some(false), None, None), 10)).await.expect("exists");
        assert!(!disabled.active);
        assert_eq!(disabled.credentials_version, 2);
        let found = store.account("partner".into()).await.expect("account").expect("a disabled account is found");
        assert_eq!(found, disabled);

        let enabled =
            apply(store, change("partner", update(Some(true), Some(&[Role::Itil, Role::Itil]), Some(true)), 20))
                .await
                .expect("exists");
        assert!(enabled.active && enabled.web_service_only);
        assert_eq!(enabled.roles, vec![Role::Itil]);
        assert_eq!(enabled.credentials_version, 3);

        let rotated =
            apply(store, change("partner", AccountAction::SetPassword { password_hash: "$argon2id$new".into() }, 30))
                .await
                .expect("exists");
        assert_eq!((rotated.password_hash.as_str(), rotated.credentials_version), ("$argon2id$new", 4));
        let row = get(store, users.clone(), created.sys_id.as_str()).await;
        assert_eq!(row["credentials_changed_at"], at(30).to_string());
        assert_eq!((row["sys_updated_by"].as_str(), row["sys_mod_count"].as_str()), ("root.admin", "3"));

        // Unknown accounts: nothing happens, `None`.
        for action in [
            update(Some(false), None, None),
            AccountAction::SetPassword { password_hash: "$argon2id$x".into() },
            AccountAction::Delete,
            AccountAction::AddToken { id: "t1".into(), digest: "ab".repeat(32), label: String::new() },
            AccountAction::RevokeToken { id: "t1".into() },
        ] {
            assert_eq!(apply(store, change("nobody", action, 40)).await, None);
        }
        assert!(store.tokens("nobody".into()).await.expect("tokens").is_empty());
        // User names are exact: another case is another (unknown) account.
        assert_eq!(store.account("PARTNER".into()).await.expect("account"), None);
    }

    /// No change may leave the store without an active admin.
    pub async fn the_last_active_admin_stays<S: Store + ?Sized>(store: &S) {
        apply(store, change("root", create(&[Role::Admin], "$argon2id$r", true), 0)).await.expect("root");
        for action in [update(Some(false), None, None), update(None, Some(&[Role::Itil]), None), AccountAction::Delete]
        {
            match store.change_account(change("root", action.clone(), 1)).await {
                Err(StoreError::LastAdmin) => {}
                other => panic!("{action:?} on the last admin: {other:?}"),
            }
        }
        let root = store.account("root".into()).await.expect("account").expect("root");
        assert!(root.active && root.roles == [Role::Admin] && root.credentials_version == 1, "{root:?}");

        // A disabled second admin does not count; an active one does.
        apply(store, change("second", create(&[Role::Admin, Role::Itil], "$argon2id$s", true), 2))
            .await
            .expect("second");
        apply(store, change("second", update(Some(false), None, None), 3)).await.expect("second");
        assert!(matches!(
            store.change_account(change("root", AccountAction::Delete, 4)).await,
            Err(StoreError::LastAdmin)
        ));
        apply(store, change("second", update(Some(true), None, None), 5)).await.expect("second");
        apply(store, change("root", update(None, Some(&[Role::Itil]), None), 6)).await.expect("root demoted");
        assert!(matches!(
            store.change_account(change("second", update(Some(false), None, None), 7)).await,
            Err(StoreError::LastAdmin)
        ));
        // Other changes to the last admin are fine.
        apply(store, change("second", AccountAction::SetPassword { password_hash: "$argon2id$s2".into() }, 8))
            .await
            .expect("second");
    }

    /// Deleting removes the credentials, roles and tokens but keeps the user record; the name
    /// can become an account again, with a higher credentials version.
    pub async fn deleting_keeps_the_user_record<S: Store + ?Sized>(store: &S) {
        let a = apply(store, change("gone", create(&[Role::Itil], "$argon2id$g", true), 0)).await.expect("created");
        apply(
            store,
            change(
                "gone",
                AccountAction::AddToken { id: "tok1".into(), digest: "cd".repeat(32), label: "x".into() },
                1,
            ),
        )
        .await
        .expect("token");
        let deleted = apply(store, change("gone", AccountAction::Delete, 2)).await.expect("deleted");
        assert_eq!(deleted.sys_id, a.sys_id);
        assert_eq!(store.account("gone".into()).await.expect("account"), None);
        assert!(store.accounts().await.expect("accounts").iter().all(|x| x.user_name != "gone"));
        assert!(store.tokens("gone".into()).await.expect("tokens").is_empty());
        assert_eq!(store.account_by_token("cd".repeat(32)).await.expect("lookup"), None);
        let row = get(store, table(tables::SYS_USER), a.sys_id.as_str()).await;
        assert_eq!((row["user_name"].as_str(), row["roles"].as_str(), row["password_hash"].as_str()), ("gone", "", ""));
        assert_eq!(apply(store, change("gone", AccountAction::Delete, 3)).await, None, "already deleted");

        let again = apply(store, change("gone", create(&[Role::ImportSetLoader], "$argon2id$g2", true), 4))
            .await
            .expect("re-created");
        assert_eq!(again.sys_id, a.sys_id, "the same user record");
        assert!(again.active && again.credentials_version > deleted.credentials_version, "{again:?}");
        assert_eq!(list(store, table(tables::SYS_USER), &[("user_name", "gone")]).await.total, 1);
    }

    /// Tokens are found by digest (with their account, active or not) and revoked by id.
    pub async fn api_tokens<S: Store + ?Sized>(store: &S) {
        let owner = apply(store, change("sender", create(&[Role::ImportSetLoader], "$argon2id$s", true), 0))
            .await
            .expect("sender");
        let digest = "0f".repeat(32);
        let add = AccountAction::AddToken { id: "tok-a".into(), digest: digest.clone(), label: "alertmanager".into() };
        let after = apply(store, change("sender", add, 5)).await.expect("token added");
        assert_eq!(after.credentials_version, owner.credentials_version, "tokens leave the password cache alone");
        let add = AccountAction::AddToken { id: "tok-b".into(), digest: "1e".repeat(32), label: String::new() };
        apply(store, change("sender", add, 6)).await.expect("second token");

        let tokens = store.tokens("sender".into()).await.expect("tokens");
        let ids: Vec<_> = tokens.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["tok-a", "tok-b"]);
        assert_eq!(
            (tokens[0].label.as_str(), tokens[0].created_on, tokens[0].created_by.as_str()),
            ("alertmanager", at(5), "root.admin")
        );

        let found = store.account_by_token(digest.clone()).await.expect("lookup").expect("found");
        assert_eq!((found.token.id.as_str(), found.digest.as_str()), ("tok-a", digest.as_str()));
        assert_eq!(found.account.user_name, "sender");
        assert_eq!(store.account_by_token("2d".repeat(32)).await.expect("lookup"), None);

        apply(store, change("sender", update(Some(false), None, None), 7)).await.expect("disabled");
        let found = store.account_by_token(digest.clone()).await.expect("lookup").expect("still found");
        assert!(!found.account.active, "the caller decides: a disabled account's token does not authenticate");

        let revoke = |id: &str| change("sender", AccountAction::RevokeToken { id: id.into() }, 8);
        assert!(apply(store, revoke("tok-a")).await.is_some());
        assert_eq!(apply(store, revoke("tok-a")).await, None, "revoked already");
        assert_eq!(store.account_by_token(digest).await.expect("lookup"), None);
        assert_eq!(store.tokens("sender".into()).await.expect("tokens").len(), 1);
    }

    /// Every account change leaves one admin-audit entry (who, what, target, details, when);
    /// other actions are recorded as given; entries come newest first, paged, with a total.
    pub async fn admin_audit<S: Store + ?Sized>(store: &S) {
        let (entries, total) = store.admin_audit(10, 0).await.expect("audit");
        assert_eq!((entries.len(), total), (0, 0));

        store.add_account(new_account("boot", &[Role::Admin], "$argon2id$b")).await.expect("add");
        apply(store, change("ops", create(&[Role::Itil], "$argon2id$o", true), 1)).await.expect("ops");
        apply(store, change("ops", update(Some(false), Some(&[Role::Itil, Role::ImportSetLoader]), None), 2))
            .await
            .expect("ops");
        apply(store, change("ops", AccountAction::SetPassword { password_hash: "$argon2id$o2".into() }, 3))
            .await
            .expect("ops");
        let add = AccountAction::AddToken { id: "tk".into(), digest: "aa".repeat(32), label: "bulk".into() };
        apply(store, change("ops", add, 4)).await.expect("ops");
        apply(store, change("ops", AccountAction::RevokeToken { id: "tk".into() }, 5)).await.expect("ops");
        apply(store, change("ops", AccountAction::Delete, 6)).await.expect("ops");
        // Refused and unknown changes leave nothing.
        let _ = store.change_account(change("boot", AccountAction::Delete, 7)).await;
        apply(store, change("nobody", AccountAction::Delete, 7)).await;
        store
            .record_admin_audit(AdminAuditEntry {
                id: 0,
                created_on: at(8),
                actor: "boot".into(),
                action: "integrations.reload".into(),
                target: "integrations".into(),
                details: json!({"outcome": "reloaded", "integrations": ["u_incident_import"]}),
            })
            .await
            .expect("record");

        let (entries, total) = store.admin_audit(100, 0).await.expect("audit");
        assert_eq!(total, 8);
        let actions: Vec<_> =
            entries.iter().map(|e| (e.action.as_str(), e.target.as_str(), e.actor.as_str())).collect();
        assert_eq!(
            actions,
            [
                ("integrations.reload", "integrations", "boot"),
                ("account.delete", "account:ops", "root.admin"),
                ("account.token_revoke", "account:ops", "root.admin"),
                ("account.token_create", "account:ops", "root.admin"),
                ("account.rotate_password", "account:ops", "root.admin"),
                ("account.update", "account:ops", "root.admin"),
                ("account.create", "account:ops", "root.admin"),
                ("account.create", "account:boot", "test"),
            ]
        );
        assert!(entries.windows(2).all(|w| w[0].id > w[1].id), "newest first");
        assert_eq!(entries[0].created_on, at(8));
        assert_eq!(entries[0].details["integrations"][0], "u_incident_import");
        assert_eq!(entries[5].created_on, at(2));
        assert_eq!(entries[5].details["active"], json!({"from": true, "to": false}));
        assert_eq!(entries[5].details["roles"]["to"], json!(["itil", "import_set_loader"]));
        assert_eq!(entries[6].details, json!({"roles": ["itil"], "web_service_only": true}));
        assert_eq!(entries[3].details["label"], "bulk");
        let text = serde_json::to_string(&entries.iter().map(|e| e.details.clone()).collect::<Vec<_>>()).unwrap();
        assert!(!text.contains("argon2") && !text.contains(&"aa".repeat(32)), "no secrets in the audit: {text}");

        let (page, total) = store.admin_audit(3, 2).await.expect("audit");
        assert_eq!(total, 8);
        let ids: Vec<_> = page.iter().map(|e| e.id).collect();
        assert_eq!(ids, entries[2..5].iter().map(|e| e.id).collect::<Vec<_>>());
        assert!(store.admin_audit(10, 100).await.expect("audit").0.is_empty());
    }
}

macro_rules! sqlite_account_contract {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = open_sqlite(dir.path());
            account_contract::$name(&store).await;
            store.close().await;
        }
    )*};
}

sqlite_account_contract!(
    account_policies,
    account_changes_raise_the_credentials_version,
    the_last_active_admin_stays,
    deleting_keeps_the_user_record,
    api_tokens,
    admin_audit,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn account_changes_survive_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_sqlite(dir.path());
    let create = account_contract::create(&[Role::Admin], "$argon2id$p", false);
    store.change_account(account_contract::change("persist", create, 0)).await.expect("create");
    let rotate = sluice_store::AccountAction::SetPassword { password_hash: "$argon2id$q".into() };
    store.change_account(account_contract::change("persist", rotate, 1)).await.expect("rotate");
    store.close().await;
    drop(store);
    let store = open_sqlite(dir.path());
    let a = store.account("persist".into()).await.expect("account").expect("persist");
    assert_eq!((a.password_hash.as_str(), a.credentials_version, a.web_service_only), ("$argon2id$q", 2, false));
    assert_eq!(store.admin_audit(10, 0).await.expect("audit").1, 2);
    store.close().await;
}
