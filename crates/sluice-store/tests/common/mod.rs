//! The PostgreSQL side of the store suites: each test gets a fresh schema in the database named
//! by `SLUICE_TEST_DATABASE_URL`, dropped when the test ends (passed or not), so tests run in
//! parallel. Without the variable the PostgreSQL tests pass without running, except in CI
//! (`CI=true`), where that is a failure: CI must test both backends.

use sluice_core::SysId;
use sluice_postgres::{PostgresOptions, PostgresStore};
use sqlx::Connection;

pub const DATABASE_URL: &str = "SLUICE_TEST_DATABASE_URL";

pub struct TestDb {
    url: String,
    schema: String,
}

impl TestDb {
    /// A fresh schema; `None` (with a note) when no test database is configured outside CI.
    pub fn create() -> Option<Self> {
        let Ok(url) = std::env::var(DATABASE_URL) else {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true but {DATABASE_URL} is not set: the PostgreSQL tests cannot run");
            }
            eprintln!("{DATABASE_URL} is not set: PostgreSQL test not run");
            return None;
        };
        let schema = format!("sluice_test_{}", &SysId::generate().as_str()[..20]);
        Some(Self { url, schema })
    }

    /// A URL whose connections use this test's schema (the contract suite inspects plans with it).
    #[allow(dead_code)]
    pub fn url_with_schema(&self) -> String {
        let separator = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{separator}options=-c%20search_path%3D{}", self.url, self.schema)
    }

    /// Opens the store on this test's schema (creating and migrating it the first time).
    pub async fn open(&self) -> PostgresStore {
        self.open_with_writers(PostgresOptions::default().writers).await
    }

    /// [`Self::open`] with this many import writers (group commit tasks).
    pub async fn open_with_writers(&self, writers: usize) -> PostgresStore {
        let options =
            PostgresOptions { max_connections: 8, schema: Some(self.schema.clone()), writers, ..Default::default() };
        PostgresStore::open(&self.url, options).await.expect("open the PostgreSQL store")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (url, schema) = (self.url.clone(), self.schema.clone());
        // Drop cannot await, and may run while a test unwinds: a thread with its own runtime.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&url).await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE")))
                    .execute(&mut conn)
                    .await?;
                conn.close().await
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop the test schema: {e}");
        }
    }
}
