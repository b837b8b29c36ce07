//! Which store sluice runs on and opening it: SQLite in a data folder (one node), or PostgreSQL
//! shared by every node. Opening brings the schema up to date. Used by
//! [`crate::startup::Application`] and by every command line tool that works on the data.

use std::path::PathBuf;
use std::sync::Arc;

use sluice_postgres::{PostgresOptions, PostgresStore};
use sluice_sqlite::{SqliteOptions, SqliteStore};
use sluice_store::{Store, StoreError};

/// Where the data is. Not `Debug`: a PostgreSQL URL may carry a password.
#[derive(Clone)]
pub enum Database {
    Sqlite { folder: PathBuf, options: SqliteOptions },
    Postgres { url: String, options: PostgresOptions },
}

/// Why the store could not be opened. The PostgreSQL URL is never repeated (it may carry a
/// password).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("--database (SLUICE_DATABASE_URL) must be a postgres:// URL")]
    NotPostgres,
    #[error("cannot open the database in {}", folder.display())]
    Sqlite { folder: PathBuf, source: StoreError },
    #[error("cannot open the PostgreSQL database (--database)")]
    Postgres { source: StoreError },
}

impl Database {
    /// SQLite in `folder` (created when missing), with the default options.
    pub fn sqlite(folder: impl Into<PathBuf>) -> Self {
        Self::Sqlite { folder: folder.into(), options: SqliteOptions::default() }
    }

    /// PostgreSQL at `url`, which must be a `postgres://` or `postgresql://` URL.
    pub fn postgres(url: &str, options: PostgresOptions) -> Result<Self, OpenError> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(OpenError::NotPostgres);
        }
        Ok(Self::Postgres { url: url.to_owned(), options })
    }

    /// Where the data is, for logs (no credentials).
    pub fn describe(&self) -> String {
        match self {
            Self::Sqlite { folder, .. } => format!("SQLite in {}", folder.display()),
            Self::Postgres { .. } => "PostgreSQL (--database)".into(),
        }
    }

    /// Opens the store, its schema brought up to date.
    pub async fn open(&self) -> Result<Arc<dyn Store>, OpenError> {
        match self {
            Self::Sqlite { folder, options } => {
                let store = SqliteStore::open(folder, options.clone())
                    .map_err(|source| OpenError::Sqlite { folder: folder.clone(), source })?;
                Ok(Arc::new(store))
            }
            Self::Postgres { url, options } => {
                let store =
                    PostgresStore::open(url, options.clone()).await.map_err(|source| OpenError::Postgres { source })?;
                Ok(Arc::new(store))
            }
        }
    }
}
