//! Which database the black-box suite runs on. SQLite in each server's data folder unless
//! `SLUICE_TEST_BACKEND=postgres`: then every data folder gets a fresh PostgreSQL database on the
//! server named by `SLUICE_TEST_DATABASE_URL`, kept while a server or a kept folder
//! (`Server::take_tmp`) uses it, so a restart on the same data finds the same database, and
//! dropped afterwards.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use sqlx::Connection;

use crate::helpers::sluice;

/// True when `SLUICE_TEST_BACKEND=postgres` (anything else but `sqlite` or nothing is refused).
pub fn is_postgres() -> bool {
    match std::env::var("SLUICE_TEST_BACKEND").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Ok("") | Err(_) => false,
        Ok(other) => panic!("SLUICE_TEST_BACKEND={other}: expected sqlite or postgres"),
    }
}

/// A fresh database on the test server, dropped with the last reference to it.
pub struct Database {
    admin_url: String,
    name: String,
    pub url: String,
}

impl Database {
    /// A fresh database, or None (the test then passes without running) when
    /// `SLUICE_TEST_DATABASE_URL` is not set; with `CI=true` a missing variable is a failure.
    pub fn create() -> Option<Self> {
        let Ok(admin_url) = std::env::var("SLUICE_TEST_DATABASE_URL") else {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true but SLUICE_TEST_DATABASE_URL is not set: the PostgreSQL tests cannot run");
            }
            eprintln!("SLUICE_TEST_DATABASE_URL is not set: PostgreSQL test not run");
            return None;
        };
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!("sluice_api_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let server = admin_url.split('?').next().unwrap_or(&admin_url);
        let server = &server[..server.rfind('/').expect("a database URL")];
        let url = format!("{server}/{name}");
        let statements = [format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"), format!("CREATE DATABASE {name}")];
        execute(&admin_url, &statements).expect("create the test database");
        Some(Self { admin_url, name, url })
    }

    /// A fresh database for `SLUICE_TEST_BACKEND=postgres`, where the variable is required.
    fn required() -> Self {
        Self::create().unwrap_or_else(|| panic!("SLUICE_TEST_BACKEND=postgres needs SLUICE_TEST_DATABASE_URL"))
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = execute(&self.admin_url, &[format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)]);
    }
}

/// Runs statements on their own connection, on a thread of its own: callers may be inside a
/// tokio runtime (where blocking on another one is not allowed) or in a destructor.
pub(crate) fn execute(url: &str, statements: &[String]) -> Result<(), sqlx::Error> {
    let (url, statements) = (url.to_owned(), statements.to_vec());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async {
            let mut conn = sqlx::PgConnection::connect(&url).await?;
            for statement in statements {
                sqlx::raw_sql(sqlx::AssertSqlSafe(statement)).execute(&mut conn).await?;
            }
            conn.close().await
        })
    })
    .join()
    .expect("database thread")
}

/// The databases of data folders in use (weak: the servers and kept folders own them).
fn registry() -> &'static Mutex<HashMap<PathBuf, Weak<Database>>> {
    static DATABASES: OnceLock<Mutex<HashMap<PathBuf, Weak<Database>>>> = OnceLock::new();
    DATABASES.get_or_init(Default::default)
}

/// The database of a data folder on PostgreSQL (the one it already has, or a fresh one); None on
/// SQLite, where the data folder is the database.
pub fn database_for(data: &Path) -> Option<Arc<Database>> {
    if !is_postgres() {
        return None;
    }
    let mut databases = registry().lock().unwrap();
    databases.retain(|_, db| db.strong_count() > 0);
    if let Some(db) = databases.get(data).and_then(Weak::upgrade) {
        return Some(db);
    }
    let db = Arc::new(Database::required());
    databases.insert(data.to_owned(), Arc::downgrade(&db));
    Some(db)
}

/// The CLI on a data folder's store: the same `--data` arguments work on both backends, since
/// `--data` is unused when `SLUICE_DATABASE_URL` names a database.
pub fn cli_on(data: &Path) -> Command {
    let mut cmd = sluice();
    if let Some(db) = registry().lock().unwrap().get(data).and_then(Weak::upgrade) {
        cmd.env("SLUICE_DATABASE_URL", &db.url);
    }
    cmd
}

/// One integer (`COUNT(*)` and the like) read straight from a data folder's database, for
/// checks made while no server runs (after a crash, before the restart). `sql` must be valid on
/// both SQLite and PostgreSQL and bind nothing.
pub fn scalar(data: &Path, sql: &str) -> i64 {
    let url = registry().lock().unwrap().get(data).and_then(Weak::upgrade).map(|db| db.url.clone());
    let Some(url) = url else {
        let db = rusqlite::Connection::open(data.join("sluice.db")).unwrap();
        return db.query_row(sql, [], |r| r.get(0)).unwrap_or_else(|e| panic!("{sql}: {e}"));
    };
    let sql = sql.to_owned();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async {
            let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
            let value: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone()))
                .fetch_one(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            value
        })
    })
    .join()
    .expect("database thread")
}
