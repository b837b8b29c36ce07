//! Group commit: one thread owns the only writing connection. It takes every job waiting in the
//! queue (up to a batch limit) into one transaction, each job in its own savepoint so a failing
//! job is rolled back alone, commits once (one fsync for the batch), and only then answers each
//! job. A request is therefore acknowledged only after its data is durable.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError};

use rusqlite::Connection;
use sluice_core::SysId;
use sluice_core::account::{Account, format_roles};
use sluice_core::rules::{self, Actor};
use sluice_core::schema::TableSchema;
use sluice_core::tables::{self, Catalog};
use tokio::sync::oneshot;

use super::{import, migrate, records, table_write};
use crate::{ImportJob, ImportOutcome, NewAccount, Result, StoreError, TableWrite, WriteResult};

pub enum Job {
    Import(Box<ImportJob>, oneshot::Sender<Result<ImportOutcome>>),
    AddAccount(NewAccount, oneshot::Sender<Result<Account>>),
    PrepareStaging(Arc<TableSchema>, oneshot::Sender<Result<()>>),
    Write(Box<TableWrite>, oneshot::Sender<Result<WriteResult>>),
}

/// A finished job waiting for its batch to commit.
type Reply = Box<dyn FnOnce(Option<&str>) + Send>;

fn reply<T: Send + 'static>(tx: oneshot::Sender<Result<T>>, result: Result<T>) -> Reply {
    Box::new(move |commit_error| {
        let result = match commit_error {
            Some(e) => Err(StoreError::Io(std::io::Error::other(format!("commit failed: {e}")))),
            None => result,
        };
        // The requester may have gone away (client disconnected); the data is committed anyway.
        let _ = tx.send(result);
    })
}

pub fn run(conn: Connection, catalog: Catalog, rx: Receiver<Job>, max_batch: usize) {
    let mut batch = Vec::with_capacity(max_batch);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        commit_batch(&conn, &catalog, &mut batch);
    }
    let _ = conn.execute_batch("PRAGMA optimize");
    tracing::debug!("writer stopped");
}

fn commit_batch(conn: &Connection, catalog: &Catalog, batch: &mut Vec<Job>) {
    let size = batch.len();
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        tracing::error!(error = %e, "cannot begin a write transaction");
        for job in batch.drain(..) {
            fail(job, &e.to_string());
        }
        return;
    }
    let replies: Vec<Reply> = batch.drain(..).map(|job| in_savepoint(conn, catalog, job)).collect();
    match conn.execute_batch("COMMIT") {
        Ok(()) => {
            tracing::trace!(size, "batch committed");
            replies.into_iter().for_each(|r| r(None));
        }
        Err(e) => {
            tracing::error!(error = %e, size, "commit failed");
            let _ = conn.execute_batch("ROLLBACK");
            let msg = e.to_string();
            replies.into_iter().for_each(|r| r(Some(&msg)));
        }
    }
}

fn fail(job: Job, msg: &str) {
    let err = || StoreError::Io(std::io::Error::other(msg.to_owned()));
    match job {
        Job::Import(_, tx) => drop(tx.send(Err(err()))),
        Job::AddAccount(_, tx) => drop(tx.send(Err(err()))),
        Job::PrepareStaging(_, tx) => drop(tx.send(Err(err()))),
        Job::Write(_, tx) => drop(tx.send(Err(err()))),
    }
}

fn in_savepoint(conn: &Connection, catalog: &Catalog, job: Job) -> Reply {
    if let Err(e) = conn.execute_batch("SAVEPOINT job") {
        let msg = e.to_string();
        return Box::new(move |_| fail(job, &msg));
    }
    fn finish<T>(conn: &Connection, result: Result<T>) -> Result<T> {
        let end = if result.is_ok() { "RELEASE job" } else { "ROLLBACK TO job; RELEASE job" };
        if let Err(e) = conn.execute_batch(end) {
            return Err(e.into());
        }
        result
    }
    match job {
        Job::Import(job, tx) => {
            // A bug in one job must not take the writer (and so every later write) down with it.
            let result =
                match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| import::run(conn, catalog, &job))) {
                    Ok(result) => result.map_err(StoreError::from),
                    Err(_) => Err(StoreError::Io(std::io::Error::other("the import job panicked"))),
                };
            if let Err(e) = &result {
                tracing::error!(error = %e, staging = %job.staging.name, "import job failed");
            }
            reply(tx, finish(conn, result))
        }
        Job::Write(write, tx) => {
            let result = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                table_write::run(conn, catalog, &write)
            })) {
                Ok(result) => result.map_err(StoreError::from),
                Err(_) => Err(StoreError::Io(std::io::Error::other("the table write panicked"))),
            };
            if let Err(e) = &result {
                tracing::error!(error = %e, table = %write.table.name, "table write failed");
            }
            reply(tx, finish(conn, result))
        }
        Job::AddAccount(new, tx) => reply(tx, finish(conn, add_account(conn, catalog, new))),
        Job::PrepareStaging(schema, tx) => {
            let result = migrate::ensure_table(conn, &schema)
                .and_then(|()| migrate::staging_indexes(conn, &schema.name))
                .map_err(StoreError::from);
            reply(tx, finish(conn, result))
        }
    }
}

fn add_account(conn: &Connection, catalog: &Catalog, new: NewAccount) -> Result<Account> {
    let schema = catalog.get(tables::SYS_USER).expect("built-in table");
    let existing: Option<(String, String)> = rusqlite::OptionalExtension::optional(
        conn.prepare_cached("SELECT sys_id, password_hash FROM sys_user WHERE user_name = ?1 ORDER BY rowid LIMIT 1")?
            .query_row([&new.user_name], |r| Ok((r.get(0)?, r.get(1)?))),
    )?;
    let roles = format_roles(&new.roles);
    let actor = Actor { user_name: new.created_by.clone(), sys_id: SysId::generate() };
    let sys_id = match existing {
        Some((_, hash)) if !hash.is_empty() => {
            return Err(StoreError::Conflict(format!("account {} already exists", new.user_name)));
        }
        // A user created earlier by an import (a caller) becomes an account.
        Some((sys_id, _)) => {
            records::update(
                conn,
                schema,
                &sys_id,
                &[("roles", &roles), ("password_hash", &new.password_hash), ("web_service_access_only", "true")],
            )?;
            sys_id
        }
        None => {
            let record = rules::insert_simple(
                schema,
                &[
                    ("user_name", &new.user_name),
                    ("name", &new.user_name),
                    ("roles", &roles),
                    ("password_hash", &new.password_hash),
                    ("web_service_access_only", "true"),
                ],
                &actor,
                new.now,
            );
            records::insert(conn, schema, &record, None)?;
            record["sys_id"].clone()
        }
    };
    Ok(Account {
        sys_id: SysId::parse(&sys_id).map_err(|e| StoreError::Conflict(e.to_string()))?,
        user_name: new.user_name,
        roles: new.roles,
        active: true,
        password_hash: new.password_hash,
    })
}
