//! Group commit: one thread owns the only writing connection. It takes every job waiting in the
//! queue (up to a batch limit) into one transaction, commits once (one fsync for the batch), and
//! only then answers each job. A request is therefore acknowledged only after its data is
//! durable. A job that fails is undone alone (see [`commit_batch`]).

use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError};

use rusqlite::Connection;
use sluice_core::account::Account;
use sluice_core::schema::TableSchema;
use sluice_core::tables::Catalog;
use tokio::sync::oneshot;

use crate::checkpoint::RewindGate;
use crate::{
    accounts, attachments, idempotency, import, import_slot, migrate, numbers, outbox, reference_cache, saved_filters,
    sessions, staged, stats,
};
use sluice_store::Result;
use sluice_store::{
    AccountChange, AdminAuditEntry, AttachmentAdded, AttachmentRemoval, ImportJob, ImportOutcome, NewAccount,
    NewAttachment, ProcessJob, PurgeReport, StageBatch, StagedSet, StatsDelta, StoreError, TableWrite, WriteResult,
};

pub enum Job {
    Import(Box<ImportJob>, oneshot::Sender<Result<ImportOutcome>>),
    AddAccount(NewAccount, oneshot::Sender<Result<Account>>),
    PrepareStaging(Arc<TableSchema>, oneshot::Sender<Result<()>>),
    Write(Box<TableWrite>, oneshot::Sender<Result<WriteResult>>),
    PurgeIdempotency(sluice_core::DateTime, oneshot::Sender<Result<u64>>),
    ChangeAccount(Box<AccountChange>, oneshot::Sender<Result<Option<Account>>>),
    AdminAudit(Box<AdminAuditEntry>, oneshot::Sender<Result<()>>),
    StageMany(Box<StageBatch>, oneshot::Sender<Result<StagedSet>>),
    Process(Box<ProcessJob>, oneshot::Sender<Result<Option<ImportOutcome>>>),
    PurgeStaging(Arc<TableSchema>, sluice_core::DateTime, u64, oneshot::Sender<Result<PurgeReport>>),
    AddStats(Vec<StatsDelta>, oneshot::Sender<Result<()>>),
    PurgeStats(i64, oneshot::Sender<Result<u64>>),
    AddAttachment(Box<NewAttachment>, oneshot::Sender<Result<AttachmentAdded>>),
    DeleteAttachment(Box<AttachmentRemoval>, oneshot::Sender<Result<Option<sluice_core::Record>>>),
    Session(Box<sessions::Change>, oneshot::Sender<Result<sessions::Answer>>),
    SavedFilter(Box<saved_filters::Change>, oneshot::Sender<Result<saved_filters::Answer>>),
    Outbox(Box<outbox::Change>, oneshot::Sender<Result<outbox::Answer>>),
}

/// A job's result, held until its batch commits.
enum Done {
    Import(Result<ImportOutcome>),
    AddAccount(Result<Account>),
    PrepareStaging(Result<()>),
    Write(Result<WriteResult>),
    Purge(Result<u64>),
    ChangeAccount(Result<Option<Account>>),
    AdminAudit(Result<()>),
    StageMany(Result<StagedSet>),
    Process(Result<Option<ImportOutcome>>),
    PurgeStaging(Result<PurgeReport>),
    AddStats(Result<()>),
    AddAttachment(Result<AttachmentAdded>),
    DeleteAttachment(Result<Option<sluice_core::Record>>),
    Session(Result<sessions::Answer>),
    SavedFilter(Result<saved_filters::Answer>),
    Outbox(Result<outbox::Answer>),
}

impl Done {
    fn failed(&self) -> bool {
        match self {
            Self::Import(r) => r.is_err(),
            Self::AddAccount(r) => r.is_err(),
            Self::PrepareStaging(r) => r.is_err(),
            Self::Write(r) => r.is_err(),
            Self::Purge(r) => r.is_err(),
            Self::ChangeAccount(r) => r.is_err(),
            Self::AdminAudit(r) => r.is_err(),
            Self::StageMany(r) => r.is_err(),
            Self::Process(r) => r.is_err(),
            Self::PurgeStaging(r) => r.is_err(),
            Self::AddStats(r) => r.is_err(),
            Self::AddAttachment(r) => r.is_err(),
            Self::DeleteAttachment(r) => r.is_err(),
            Self::Session(r) => r.is_err(),
            Self::SavedFilter(r) => r.is_err(),
            Self::Outbox(r) => r.is_err(),
        }
    }
}

/// What a job carried (payloads, columns, plans), freed on another thread: dropping a bulk
/// request's 100 rows was a twentieth of the writer's time.
type Spent = Box<dyn Send>;

/// Answers a job once its batch is settled: with its own result when the batch committed, with
/// the commit's error otherwise. Returns the job's large part, to be freed off the writer.
fn deliver(job: Job, done: Done, commit_error: Option<&str>) -> Option<Spent> {
    fn send<T>(tx: oneshot::Sender<Result<T>>, result: Result<T>, commit_error: Option<&str>) {
        let result = match commit_error {
            Some(e) => Err(StoreError::Io(std::io::Error::other(format!("commit failed: {e}")))),
            None => result,
        };
        // The requester may have gone away (client disconnected); the data is committed anyway.
        let _ = tx.send(result);
    }
    match (job, done) {
        (Job::Import(job, tx), Done::Import(r)) => {
            send(tx, r, commit_error);
            return Some(job);
        }
        (Job::StageMany(batch, tx), Done::StageMany(r)) => {
            send(tx, r, commit_error);
            return Some(batch);
        }
        (Job::Process(job, tx), Done::Process(r)) => {
            send(tx, r, commit_error);
            return Some(job);
        }
        (Job::Write(write, tx), Done::Write(r)) => {
            send(tx, r, commit_error);
            return Some(write);
        }
        (Job::AddAttachment(attachment, tx), Done::AddAttachment(r)) => {
            send(tx, r, commit_error);
            return Some(attachment);
        }
        (Job::DeleteAttachment(_, tx), Done::DeleteAttachment(r)) => send(tx, r, commit_error),
        (Job::AddAccount(_, tx), Done::AddAccount(r)) => send(tx, r, commit_error),
        (Job::PrepareStaging(_, tx), Done::PrepareStaging(r)) => send(tx, r, commit_error),
        (Job::PurgeIdempotency(_, tx), Done::Purge(r)) => send(tx, r, commit_error),
        (Job::ChangeAccount(_, tx), Done::ChangeAccount(r)) => send(tx, r, commit_error),
        (Job::AdminAudit(_, tx), Done::AdminAudit(r)) => send(tx, r, commit_error),
        (Job::PurgeStaging(.., tx), Done::PurgeStaging(r)) => send(tx, r, commit_error),
        (Job::AddStats(_, tx), Done::AddStats(r)) => send(tx, r, commit_error),
        (Job::PurgeStats(_, tx), Done::Purge(r)) => send(tx, r, commit_error),
        (Job::Session(_, tx), Done::Session(r)) => send(tx, r, commit_error),
        (Job::SavedFilter(_, tx), Done::SavedFilter(r)) => send(tx, r, commit_error),
        (Job::Outbox(_, tx), Done::Outbox(r)) => send(tx, r, commit_error),
        (job, _) => fail(job, "internal error: mismatched job result"),
    }
    None
}

/// Frees what answered jobs carried on a thread of its own (started with the first batch).
fn free_elsewhere(spent: Vec<Spent>) {
    static FREER: std::sync::OnceLock<Option<std::sync::mpsc::Sender<Vec<Spent>>>> = std::sync::OnceLock::new();
    let freer = FREER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Vec<Spent>>();
        let started = std::thread::Builder::new().name("sluice-free".into()).spawn(move || {
            for spent in rx {
                drop(spent);
            }
        });
        started.is_ok().then_some(tx)
    });
    match freer {
        Some(tx) => {
            if let Err(unsent) = tx.send(spent) {
                drop(unsent.0);
            }
        }
        None => drop(spent),
    }
}

pub fn run(conn: Connection, catalog: Catalog, rx: Receiver<Job>, max_batch: usize, gate: &RewindGate) {
    let mut batch = Vec::with_capacity(max_batch);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        gate.pass();
        commit_batch(&conn, &catalog, &mut batch);
    }
    let _ = conn.execute_batch("PRAGMA optimize");
    tracing::debug!("writer stopped");
}

/// Runs the batch without savepoints (they cost a copy of every page a job touches); only when
/// a job fails is the batch rolled back and run again with one savepoint per job, so the failing
/// job is undone alone.
fn commit_batch(conn: &Connection, catalog: &Catalog, batch: &mut Vec<Job>) {
    let size = batch.len();
    let begin = |batch: &mut Vec<Job>| match conn.execute_batch("BEGIN IMMEDIATE") {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(error = %e, "cannot begin a write transaction");
            for job in batch.drain(..) {
                fail(job, &e.to_string());
            }
            false
        }
    };
    if !begin(batch) {
        return;
    }
    let mut results: Vec<Done> = batch.iter().map(|job| execute(conn, catalog, job)).collect();
    if results.iter().any(Done::failed) {
        let _ = conn.execute_batch("ROLLBACK");
        forget();
        if !begin(batch) {
            return;
        }
        results = batch.iter().map(|job| in_savepoint(conn, catalog, job)).collect();
    }
    let commit = numbers::flush(conn).and_then(|()| conn.execute_batch("COMMIT"));
    let error = commit.as_ref().err().map(ToString::to_string);
    match &error {
        None => tracing::trace!(size, "batch committed"),
        Some(e) => {
            tracing::error!(error = %e, size, "commit failed");
            let _ = conn.execute_batch("ROLLBACK");
            forget();
        }
    }
    let spent: Vec<Spent> =
        batch.drain(..).zip(results).filter_map(|(job, done)| deliver(job, done, error.as_deref())).collect();
    free_elsewhere(spent);
}

/// Empties what the writer remembers of the database (after a rollback, its writes are gone).
fn forget() {
    forget_lookups();
    numbers::clear();
}

/// Empties what the writer remembers of rows a job undone alone may have written. The numbers
/// stay: the transaction goes on, and the counters are written only at its end.
fn forget_lookups() {
    reference_cache::clear();
    import_slot::clear();
}

fn fail(job: Job, msg: &str) {
    let err = || StoreError::Io(std::io::Error::other(msg.to_owned()));
    match job {
        Job::Import(_, tx) => drop(tx.send(Err(err()))),
        Job::AddAccount(_, tx) => drop(tx.send(Err(err()))),
        Job::PrepareStaging(_, tx) => drop(tx.send(Err(err()))),
        Job::Write(_, tx) => drop(tx.send(Err(err()))),
        Job::PurgeIdempotency(_, tx) => drop(tx.send(Err(err()))),
        Job::ChangeAccount(_, tx) => drop(tx.send(Err(err()))),
        Job::AdminAudit(_, tx) => drop(tx.send(Err(err()))),
        Job::StageMany(_, tx) => drop(tx.send(Err(err()))),
        Job::Process(_, tx) => drop(tx.send(Err(err()))),
        Job::PurgeStaging(.., tx) => drop(tx.send(Err(err()))),
        Job::AddStats(_, tx) => drop(tx.send(Err(err()))),
        Job::PurgeStats(_, tx) => drop(tx.send(Err(err()))),
        Job::AddAttachment(_, tx) => drop(tx.send(Err(err()))),
        Job::DeleteAttachment(_, tx) => drop(tx.send(Err(err()))),
        Job::Session(_, tx) => drop(tx.send(Err(err()))),
        Job::SavedFilter(_, tx) => drop(tx.send(Err(err()))),
        Job::Outbox(_, tx) => drop(tx.send(Err(err()))),
    }
}

fn in_savepoint(conn: &Connection, catalog: &Catalog, job: &Job) -> Done {
    if let Err(e) = conn.execute_batch("SAVEPOINT job") {
        let e = || StoreError::Io(std::io::Error::other(e.to_string()));
        return match job {
            Job::Import(..) => Done::Import(Err(e())),
            Job::AddAccount(..) => Done::AddAccount(Err(e())),
            Job::PrepareStaging(..) => Done::PrepareStaging(Err(e())),
            Job::Write(..) => Done::Write(Err(e())),
            Job::PurgeIdempotency(..) => Done::Purge(Err(e())),
            Job::ChangeAccount(..) => Done::ChangeAccount(Err(e())),
            Job::AdminAudit(..) => Done::AdminAudit(Err(e())),
            Job::StageMany(..) => Done::StageMany(Err(e())),
            Job::Process(..) => Done::Process(Err(e())),
            Job::PurgeStaging(..) => Done::PurgeStaging(Err(e())),
            Job::AddStats(..) => Done::AddStats(Err(e())),
            Job::PurgeStats(..) => Done::Purge(Err(e())),
            Job::AddAttachment(..) => Done::AddAttachment(Err(e())),
            Job::DeleteAttachment(..) => Done::DeleteAttachment(Err(e())),
            Job::Session(..) => Done::Session(Err(e())),
            Job::SavedFilter(..) => Done::SavedFilter(Err(e())),
            Job::Outbox(..) => Done::Outbox(Err(e())),
        };
    }
    let done = execute(conn, catalog, job);
    let end = if done.failed() { "ROLLBACK TO job; RELEASE job" } else { "RELEASE job" };
    if done.failed() {
        forget_lookups();
    }
    if let Err(e) = conn.execute_batch(end) {
        tracing::error!(error = %e, "savepoint could not be closed");
    }
    done
}

/// Runs one job; a panic inside it becomes that job's error instead of killing the writer
/// (and with it every later write).
fn execute(conn: &Connection, catalog: &Catalog, job: &Job) -> Done {
    fn guarded<T>(what: &str, f: impl FnOnce() -> crate::Result<T>) -> Result<T> {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f().map_err(StoreError::from)))
            .unwrap_or_else(|_| Err(StoreError::Io(std::io::Error::other(format!("the {what} panicked")))));
        if let Err(e) = &result {
            tracing::error!(error = %e, "{what} failed");
        }
        result
    }
    if matches!(job, Job::Write(..) | Job::AddAccount(..) | Job::ChangeAccount(..)) {
        // May rename, delete or add users, groups or CIs that imports look up.
        reference_cache::clear();
    }
    if !matches!(
        job,
        Job::Import(..)
            | Job::AddStats(..)
            | Job::AddAttachment(..)
            | Job::DeleteAttachment(..)
            | Job::Session(..)
            | Job::SavedFilter(..)
            | Job::Outbox(..)
    ) {
        // Bulk loads, replays and purges create, close or delete import sets and rows.
        import_slot::clear();
    }
    match job {
        Job::Import(job, _) => {
            Done::Import(guarded("import job", || idempotency::guarded(conn, job, || import::run(conn, catalog, job))))
        }
        Job::PurgeIdempotency(before, _) => {
            Done::Purge(guarded("idempotency purge", || Ok(idempotency::purge(conn, *before)?)))
        }
        Job::StageMany(batch, _) => Done::StageMany(guarded("bulk staging", || {
            idempotency::guarded_batch(conn, batch, || staged::stage_many(conn, catalog, batch))
        })),
        Job::Process(job, _) => {
            Done::Process(guarded("staged row processing", || Ok(staged::process(conn, catalog, job)?)))
        }
        Job::PurgeStaging(staging, before, limit, _) => {
            Done::PurgeStaging(guarded("staging purge", || Ok(staged::purge(conn, staging, *before, *limit)?)))
        }
        Job::Write(write, _) => Done::Write(guarded("table write", || Ok(import::table_write(conn, catalog, write)?))),
        Job::AddAccount(new, _) => Done::AddAccount(guarded("account creation", || accounts::add(conn, catalog, new))),
        Job::ChangeAccount(change, _) => {
            Done::ChangeAccount(guarded("account change", || accounts::change_account(conn, catalog, change)))
        }
        Job::AddStats(deltas, _) => Done::AddStats(guarded("statistics", || Ok(stats::add(conn, deltas)?))),
        Job::PurgeStats(before, _) => Done::Purge(guarded("statistics purge", || Ok(stats::purge(conn, *before)?))),
        Job::Session(change, _) => Done::Session(guarded("console session", || Ok(sessions::apply(conn, change)?))),
        Job::SavedFilter(change, _) => {
            Done::SavedFilter(guarded("saved filter", || Ok(saved_filters::apply(conn, change)?)))
        }
        Job::Outbox(change, _) => Done::Outbox(guarded("outbox", || Ok(outbox::apply(conn, catalog, change)?))),
        Job::AdminAudit(entry, _) => {
            Done::AdminAudit(guarded("admin audit", || Ok(accounts::record_audit(conn, entry)?)))
        }
        Job::AddAttachment(attachment, _) => {
            Done::AddAttachment(guarded("attachment upload", || Ok(attachments::add(conn, catalog, attachment)?)))
        }
        Job::DeleteAttachment(removal, _) => {
            Done::DeleteAttachment(guarded("attachment deletion", || Ok(attachments::remove(conn, catalog, removal)?)))
        }
        Job::PrepareStaging(schema, _) => Done::PrepareStaging(guarded("staging table preparation", || {
            migrate::ensure_table(conn, schema)?;
            Ok(migrate::staging_indexes(conn, &schema.name)?)
        })),
    }
}
