//! Encoded queries through the store: a fixed data set imported through the [`Store`] trait (the
//! built-in integration, as `contract.rs` does), then a table of `sysparm_query` strings, each
//! with exactly the rows, in order, it must return. Then hostile input: SQL in field names and
//! values, LIKE wildcards, NUL bytes, backslashes, unicode, and very large queries.
//!
//! The checks are generic over the store: SQLite and PostgreSQL run the same table.

use std::sync::Arc;

use serde_json::json;
use sluice_core::account::Role;
use sluice_core::integration::Integration;
use sluice_core::query::{self, Clause, Condition, EncodedQuery, FieldPath, Group, Operator, OrderBy, Problem};
use sluice_core::rules::Actor;
use sluice_core::schema::TableSchema;
use sluice_core::staging::RowState;
use sluice_core::tables::{self, Catalog};
use sluice_core::{DateTime, Record, SysId, staging, transform, validate};
use sluice_store::{ImportJob, ListQuery, NewAccount, Store, TableWrite, WriteOp, WriteResult};

// ---------------------------------------------------------------------------------------------
// The data set
// ---------------------------------------------------------------------------------------------

/// 2024-05-01 10:15:02 UTC plus `secs`.
fn at(secs: i64) -> DateTime {
    DateTime::from_unix(1_714_558_502 + secs)
}

/// Incident `n` (1-based) is created at `created(n)`, one minute apart.
fn created(n: usize) -> DateTime {
    at(n as i64 * 60)
}

/// When the suite's queries are evaluated (relative dates, `javascript:` values): 30 seconds
/// after the last incident was created, 2024-05-01 10:27:32 UTC, a Wednesday.
fn now() -> DateTime {
    at(12 * 60 + 30)
}

/// Incidents 1 and 5 are imported again (same correlation id, now by phone) this long after
/// their creation, so their `sys_updated_on` differs from `sys_created_on`.
const UPDATED_AFTER: [(usize, i64); 2] = [(1, 7_140), (5, 1_800)];

/// A query as the API reads it, at [`now`].
fn q(text: &str) -> EncodedQuery {
    query::parse(text, now()).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

struct Row {
    short_description: &'static str,
    category: &'static str,
    impact: &'static str,
    urgency: &'static str,
    correlation_id: &'static str,
    caller: &'static str,
    description: &'static str,
}

const fn row(
    short_description: &'static str,
    category: &'static str,
    impact: &'static str,
    urgency: &'static str,
    correlation_id: &'static str,
    caller: &'static str,
    description: &'static str,
) -> Row {
    Row { short_description, category, impact, urgency, correlation_id, caller, description }
}

/// Incident n is `INC00100nn`, n = index + 1. Priority follows impact × urgency:
/// 1: p1, 2: p3, 3: p2, 4: p5, 5: p2, 6: p4, 7: p4, 8: p3, 9: p5, 10: p3, 11: p3, 12: p1.
const DATA: &[Row] = &[
    row("Disk full on db01", "database", "1", "1", "am:1", "alice", "root volume at 100%"),
    row("CPU hot on web01", "hardware", "2", "2", "am:2", "bob", ""),
    row("Network down in lab", "network", "1", "2", "50%_off", "alice", ""),
    row("Printer jam", "hardware", "3", "3", "", "carol", ""),
    row("VPN flapping", "network", "2", "1", "O'Brien \"quoted\"", "bob", ""),
    row("Password reset", "inquiry", "3", "2", "", "", ""),
    row("Disk slow on db02", "database", "2", "3", "a_b", "dave@example.com", ""),
    row("Mail queue stuck", "software", "3", "1", "back\\slash", "carol", ""),
    row("disk FULL on backup", "inquiry", "3", "3", "AM:9", "alice", ""),
    row("Latency 100% spike", "network", "1", "3", "100%", "bob", ""),
    row("App crash after upgrade", "software", "2", "2", "ab", "dave@example.com", "caf\u{e9} \u{2615} crash"),
    row("Database restore", "database", "1", "1", "a%b", "", ""),
];

fn number(n: usize) -> String {
    format!("INC{:07}", 10_000 + n)
}

fn table(name: &str) -> Arc<TableSchema> {
    Catalog::builtin().get(name).expect("built-in table").clone()
}

fn job(integration: &Integration, payload: serde_json::Value, now: DateTime) -> ImportJob {
    let object = payload.as_object().expect("payload is an object");
    let staged = staging::stage(integration, object);
    let verdict = validate::validate(integration, &staged).and_then(|row| transform::plan(integration, &row));
    let definition = &integration.definition;
    ImportJob {
        staging: integration.staging.clone(),
        target: integration.target.clone(),
        transform_map: definition.transform.name.clone(),
        integration_version: definition.version.clone(),
        staging_sys_id: SysId::generate(),
        payload: payload.to_string().into_bytes(),
        columns: staged.columns,
        verdict,
        actor: Actor { user_name: "integration.alerts".into(), sys_id: SysId::generate() },
        now,
        idempotency: None,
    }
}

/// Imports [`DATA`] in order; alice also gets credentials (a password hash no query may see).
async fn seed<S: Store + ?Sized>(store: &S) {
    let integration = Arc::new(Integration::builtin_default(&Catalog::builtin()));
    store.prepare_staging(integration.staging.clone()).await.expect("prepare staging");
    for (i, r) in DATA.iter().enumerate() {
        let outcome = store.import(job(&integration, payload(r), created(i + 1))).await.expect("import");
        assert_eq!(outcome.state, RowState::Inserted, "row {}: {outcome:?}", i + 1);
        assert_eq!(outcome.display_value, Some(number(i + 1)));
    }
    for (n, later) in UPDATED_AFTER {
        let when = DateTime::from_unix(created(n).unix() + later);
        let mut again = payload(&DATA[n - 1]);
        again["u_contact_type"] = json!("phone");
        let outcome = store.import(job(&integration, again, when)).await.expect("import again");
        assert_eq!(outcome.state, RowState::Updated, "row {n} again: {outcome:?}");
    }
    let account = NewAccount {
        user_name: "alice".into(),
        roles: vec![Role::Admin],
        password_hash: "$argon2id$v=19$secret".into(),
        web_service_only: true,
        created_by: "test".into(),
        now: at(0),
    };
    store.add_account(account).await.expect("alice gets credentials");
}

/// The built-in integration's payload for a row of [`DATA`].
fn payload(r: &Row) -> serde_json::Value {
    let mut payload = json!({
        "u_short_description": r.short_description,
        "u_category": r.category,
        "u_impact": r.impact,
        "u_urgency": r.urgency,
    });
    for (key, value) in
        [("u_correlation_id", r.correlation_id), ("u_caller", r.caller), ("u_description", r.description)]
    {
        if !value.is_empty() {
            payload[key] = json!(value);
        }
    }
    payload
}

async fn list<S: Store + ?Sized>(store: &S, schema: Arc<TableSchema>, filter: EncodedQuery) -> (Vec<Record>, u64) {
    let page =
        store.list(schema, ListQuery { filter, limit: 10_000, offset: 0, count_up_to: None }).await.expect("list");
    (page.records, page.total)
}

/// The incidents a filter returns, as their position in [`DATA`] (1-based), in the order returned.
async fn incidents<S: Store + ?Sized>(store: &S, filter: EncodedQuery) -> Vec<usize> {
    let (records, total) = list(store, table(tables::INCIDENT), filter).await;
    assert_eq!(total as usize, records.len(), "the total counts what the rows show");
    records
        .iter()
        .map(|r| {
            let n: usize = r["number"].trim_start_matches("INC").parse().expect("an incident number");
            n - 10_000
        })
        .collect()
}

fn all() -> Vec<usize> {
    (1..=DATA.len()).collect()
}

fn except(excluded: &[usize]) -> Vec<usize> {
    all().into_iter().filter(|n| !excluded.contains(n)).collect()
}

// The checks, generic over the store (`checks.rs`), hostile input (`hostile.rs`) and aggregate
// queries (`aggregate.rs`).
mod aggregate;
mod checks;
mod hostile;

// ---------------------------------------------------------------------------------------------
// The backends: each test on a fresh, seeded store
// ---------------------------------------------------------------------------------------------

#[path = "../common/mod.rs"]
mod common;

macro_rules! query_tests {
    ($($module:ident :: $name:ident),* $(,)?) => {
        mod sqlite {
            use sluice_store::Maintenance;
            use sluice_sqlite::SqliteOptions;

            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().expect("tempdir");
                    let store = sluice_sqlite::SqliteStore::open(dir.path(), SqliteOptions::default())
                        .expect("open the SQLite store");
                    crate::seed(&store).await;
                    crate::$module::$name(&store).await;
                    store.close().await;
                }
            )*
        }
        mod postgres {
            use sluice_store::Maintenance;

            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = crate::common::TestDb::create() else { return };
                    let store = db.open().await;
                    crate::seed(&store).await;
                    crate::$module::$name(&store).await;
                    store.close().await;
                }
            )*
        }
    };
}

query_tests!(
    checks::data_set_is_as_described,
    checks::encoded_queries,
    checks::relative_dates,
    checks::field_comparisons,
    checks::choice_labels,
    checks::date_parts_on_many_dates,
    checks::parameters_and_paging,
    checks::keys_and_keyset_paging,
    hostile::values,
    hostile::field_names,
    hostile::very_large_queries,
    hostile::relative_values,
    aggregate::whole_table_and_filtered,
    aggregate::groups_and_their_aggregates,
    aggregate::having_order_and_limit,
    aggregate::sums_are_exact,
    aggregate::fields_it_may_not_name,
);
