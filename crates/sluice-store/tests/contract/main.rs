//! The store contract: what every [`Store`] implementation must do, checked through the trait
//! only (no SQL). The functions in `imports`, `bulk`, `accounts`, `sessions`, `saved_filters`, `stats`, `table_writes`,
//! `attachments` and `concurrency` are generic over the store; the tests below run each of them
//! against a fresh SQLite store in a temporary folder and against a fresh PostgreSQL schema (see
//! `common`).

#[path = "../common/mod.rs"]
mod common;

mod accounts;
mod attachments;
mod bulk;
mod concurrency;
mod dry_run;
mod helpers;
mod imports;
mod outbox;
mod saved_filters;
mod sessions;
mod stats;
mod table_writes;

use std::path::Path;
use std::sync::Arc;

use sluice_sqlite::SqliteOptions;
use sluice_sqlite::SqliteStore;
use sluice_store::{Maintenance, Store};

fn open_sqlite(dir: &Path) -> SqliteStore {
    SqliteStore::open(dir, SqliteOptions::default()).expect("open the SQLite store")
}

/// One test per check and backend: `sqlite::name` and `postgres::name`, each on a fresh store.
macro_rules! contract {
    ($($module:ident :: $name:ident),* $(,)?) => {
        mod sqlite {
            use sluice_store::Maintenance;

            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let dir = tempfile::tempdir().expect("tempdir");
                    let store = crate::open_sqlite(dir.path());
                    crate::$module::$name(&store).await;
                    store.close().await;
                }
            )*
        }
        mod postgres {
            use sluice_store::Maintenance;

            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(db) = crate::common::TestDb::create() else { return };
                    let store = db.open().await;
                    crate::$module::$name(&store).await;
                    store.close().await;
                }
            )*
        }
    };
}

contract!(
    imports::ping,
    imports::numbers_and_import_sets,
    imports::coalesce_update_ignore_and_audit,
    imports::invalid_rows_are_staged_as_errors,
    imports::ignored_plans_write_only_the_staging_row,
    imports::raced_plans_write_nothing_and_stay_pending,
    imports::reference_lookups,
    imports::accounts,
    imports::list_filters_and_pages,
    imports::prepare_staging_is_idempotent,
    imports::data_policy_and_active_only_coalesce,
    dry_run::dry_runs_answer_what_the_commit_does,
    bulk::bulk_rows_are_staged_then_processed_once,
    bulk::bulk_idempotency_keys_answer_the_first_import_set,
    bulk::judged_rows_are_processed_as_they_are_staged,
    bulk::replay_reruns_stored_rows_in_place,
    bulk::purge_keeps_pending_rows,
    accounts::account_changes_raise_the_credentials_version,
    accounts::the_last_active_admin_stays,
    accounts::deleting_keeps_the_user_record,
    accounts::api_tokens,
    accounts::routing_keys,
    accounts::admin_audit,
    accounts::account_policies,
    stats::stats_add_up_per_key_and_sum_over_windows,
    sessions::sessions_expire_renew_and_delete,
    saved_filters::saved_filters_per_account_with_limits,
    saved_filters::deleting_an_account_deletes_its_filters,
    table_writes::table_writes_go_through_the_rules,
    attachments::attachments_are_stored_read_and_deleted,
    attachments::deleting_a_record_deletes_its_attachments,
    outbox::forwarded_commits_queue_their_record,
    outbox::deliveries_are_leased_finished_and_retried,
    outbox::a_finish_writes_its_note_only_for_the_lease_owner,
);

/// Checks that need the store shared (concurrency) or opened twice (reopen), per backend.
mod shared {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite_dyn_store_runs_the_contract() {
        // The server holds the store as `Arc<dyn Store>`; the contract works through it too.
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn Store> = Arc::new(open_sqlite(dir.path()));
        imports::ping(store.as_ref()).await;
        imports::numbers_and_import_sets(store.as_ref()).await;
        store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres_dyn_store_runs_the_contract() {
        let Some(db) = common::TestDb::create() else { return };
        let store: Arc<dyn Store> = Arc::new(db.open().await);
        imports::ping(store.as_ref()).await;
        imports::numbers_and_import_sets(store.as_ref()).await;
        store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite_survives_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        imports::survives_reopen(|| async { open_sqlite(dir.path()) }).await;
        let dir = tempfile::tempdir().expect("tempdir");
        accounts::account_changes_survive_reopen(|| async { open_sqlite(dir.path()) }).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres_survives_reopen() {
        let Some(db) = common::TestDb::create() else { return };
        imports::survives_reopen(|| db.open()).await;
        let Some(db) = common::TestDb::create() else { return };
        accounts::account_changes_survive_reopen(|| db.open()).await;
    }

    /// Two nodes starting together on one new database, then importing the same correlation id.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres_two_nodes_share_one_database() {
        let Some(db) = common::TestDb::create() else { return };
        let (a, b) = tokio::join!(db.open(), db.open());
        concurrency::two_nodes_share_one_database(Arc::new(a), Arc::new(b)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite_concurrency() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(open_sqlite(dir.path()));
        imports::concurrent_inserts_get_distinct_numbers(store.clone()).await;
        store.close().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(open_sqlite(dir.path()));
        imports::concurrent_coalesce_inserts_once(store.clone()).await;
        store.close().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(open_sqlite(dir.path()));
        concurrency::idempotency_keys(store.clone()).await;
        store.close().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(open_sqlite(dir.path()));
        concurrency::a_batch_settles_its_jobs_in_order_and_fails_them_alone(store.clone()).await;
        store.close().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn Store> = Arc::new(open_sqlite(dir.path()));
        outbox::concurrent_claims_take_each_row_once(store.clone()).await;
        store.close().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn Store> = Arc::new(open_sqlite(dir.path()));
        outbox::a_batch_queues_one_row_per_record(store.clone()).await;
        store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres_concurrency() {
        let Some(db) = common::TestDb::create() else { return };
        let store = Arc::new(db.open().await);
        imports::concurrent_inserts_get_distinct_numbers(store.clone()).await;
        store.close().await;
        let Some(db) = common::TestDb::create() else { return };
        let store = Arc::new(db.open().await);
        imports::concurrent_coalesce_inserts_once(store.clone()).await;
        store.close().await;
        let Some(db) = common::TestDb::create() else { return };
        let store = Arc::new(db.open().await);
        concurrency::idempotency_keys(store.clone()).await;
        store.close().await;
        // One writer: the imports sent together queue up and share batches.
        let Some(db) = common::TestDb::create() else { return };
        let store = Arc::new(db.open_with_writers(1).await);
        concurrency::a_batch_settles_its_jobs_in_order_and_fails_them_alone(store.clone()).await;
        store.close().await;
        let Some(db) = common::TestDb::create() else { return };
        let store: Arc<dyn Store> = Arc::new(db.open().await);
        outbox::concurrent_claims_take_each_row_once(store.clone()).await;
        store.close().await;
        // One writer, so that the imports share batches.
        let Some(db) = common::TestDb::create() else { return };
        let store: Arc<dyn Store> = Arc::new(db.open_with_writers(1).await);
        outbox::a_batch_queues_one_row_per_record(store.clone()).await;
        store.close().await;
    }
}

/// The usual searches (number, sys_id, correlation id, audit document, user name, keyset paging)
/// can use an index on PostgreSQL: with sequential scans disabled the plan names the index.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_searches_use_the_indexes() {
    use sluice_core::query::parse;
    use sluice_core::tables::Catalog;
    use sluice_postgres::query::{PgValue, translate};
    use sqlx::{Connection, Row};

    let Some(db) = common::TestDb::create() else { return };
    let store = db.open().await;
    let mut conn = sqlx::PgConnection::connect(&db.url_with_schema()).await.expect("connect");
    sqlx::query("SET enable_seqscan = off").execute(&mut conn).await.expect("set");
    let catalog = Catalog::builtin();
    for (table, query, index) in [
        ("incident", "number=INC0010001", "incident_number"),
        ("incident", "numberININC0010001,INC0010002", "incident_number"),
        ("incident", "sys_id=0123456789ABCDEF0123456789abcdef", "incident_pkey"),
        ("incident", "sys_id>0123456789abcdef^ORDERBYsys_id", "incident_pkey"),
        ("incident", "correlation_id=am:1", "incident_correlation"),
        ("incident", "caller_id.user_name=bob", "sys_user_user_name"),
        ("sys_audit", "documentkey=0123456789abcdef", "sys_audit_document"),
        ("sys_audit", "documentkey=0123456789abcdef", "sluice_audit_set_document"),
        ("sys_user", "email=bob@example.com", "sys_user_email"),
        // Newest first: the index read backwards, no sort (checked below).
        ("incident", "ORDERBYDESCsys_created_on", "Index Scan Backward using incident_created"),
        ("incident", "ORDERBYDESCsys_updated_on", "Index Scan Backward using incident_updated"),
    ] {
        let schema = catalog.get(table).expect("table");
        let f = translate(&catalog, schema, &parse(query, sluice_core::DateTime::from_unix(0)).expect("a valid query"));
        let order = if query.contains("ORDERBY") { format!("{} LIMIT 50", f.order_sql) } else { String::new() };
        let mut q =
            sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN SELECT sys_id FROM \"{table}\"{}{order}", f.where_sql)));
        for p in &f.params {
            q = match p {
                PgValue::Text(t) => q.bind(t.clone()),
                PgValue::Int(i) => q.bind(*i),
                PgValue::Real(r) => q.bind(*r),
            };
        }
        let rows = q.fetch_all(&mut conn).await.expect("explain");
        let plan: Vec<String> = rows.iter().map(|r| r.try_get::<String, _>(0).expect("plan line")).collect();
        let plan = plan.join("\n");
        assert!(plan.contains(index), "{table} {query}:\n{plan}");
        assert!(!query.contains("ORDERBYDESCsys_") || !plan.contains("Sort"), "{table} {query} sorts:\n{plan}");
    }
    // A sys_audit row by its sys_id: the change sets are searched by their key.
    let rows = sqlx::query("EXPLAIN SELECT fieldname FROM sys_audit WHERE sys_id = $1 AND sluice_set = $2")
        .bind("0123456789abcdef0123456789ab0001")
        .bind("0123456789abcdef0123456789ab0000")
        .fetch_all(&mut conn)
        .await
        .expect("explain");
    let plan: Vec<String> = rows.iter().map(|r| r.try_get::<String, _>(0).expect("plan line")).collect();
    let plan = plan.join("\n");
    assert!(plan.contains("sluice_audit_set_pkey") && plan.contains("sys_audit_pkey on sluice_audit_field"), "{plan}");
    conn.close().await.expect("close");
    store.close().await;
}
