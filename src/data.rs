//! `--data` / `--database`: where every command finds the store (`sluice_server::database`).

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use sluice_postgres::PostgresOptions;
use sluice_server::database::Database;
use sluice_server::defaults;
use sluice_sqlite::SqliteOptions;
use sluice_store::Store;

#[derive(Args)]
pub struct DataArgs {
    /// Folder holding the SQLite database (created when missing); unused with --database.
    #[arg(long, env = "SLUICE_DATA", default_value = defaults::DATA_DIR)]
    pub data: PathBuf,
    /// A PostgreSQL database shared by every node, instead of SQLite in --data:
    /// postgres://user[:password]@host[:port]/database.
    #[arg(long, env = "SLUICE_DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database: Option<String>,
    /// Connections this node keeps to PostgreSQL.
    #[arg(long, env = "SLUICE_DATABASE_MAX_CONNECTIONS", default_value_t = defaults::database_max_connections(),
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub database_max_connections: u32,
    /// Import writers (group commit) this node runs against PostgreSQL; each batches the imports
    /// waiting into one transaction.
    #[arg(long, env = "SLUICE_DATABASE_WRITERS", default_value_t = defaults::database_writers(),
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub database_writers: u16,
}

impl DataArgs {
    /// The store these arguments name: PostgreSQL with `--database`, else SQLite in the data
    /// folder (with `sqlite` options).
    pub fn database(&self, sqlite: SqliteOptions) -> anyhow::Result<Database> {
        let Some(url) = &self.database else {
            return Ok(Database::Sqlite { folder: self.data.clone(), options: sqlite });
        };
        let options = PostgresOptions {
            max_connections: self.database_max_connections,
            writers: usize::from(self.database_writers),
            ..PostgresOptions::default()
        };
        Ok(Database::postgres(url, options)?)
    }

    /// Where the data is, for messages (no credentials).
    pub fn describe(&self) -> String {
        match &self.database {
            Some(_) => "PostgreSQL (--database)".into(),
            None => format!("SQLite in {}", self.data.display()),
        }
    }
}

/// Opens the store `data` names (default options), its schema brought up to date.
pub async fn open_store(data: &DataArgs) -> anyhow::Result<Arc<dyn Store>> {
    Ok(data.database(SqliteOptions::default())?.open().await?)
}
