//! The console's replays run in the background; this registry keeps each one's progress (its
//! [`ReplaySummary`] so far) for the progress page. In memory on the node that runs the replay:
//! another node does not know the job, and a restart forgets it. Finished jobs are forgotten an
//! hour after they end, and only the last [`KEEP_FINISHED`] are kept. One replay per
//! integration runs at a time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sluice_core::DateTime;

use crate::pipeline::replay::ReplaySummary;

/// How long a finished job stays readable.
pub const KEEP_FOR: Duration = Duration::from_secs(3600);
/// Finished jobs kept at most (the newest).
pub const KEEP_FINISHED: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    Running,
    Done,
    /// The replay stopped on a store error (its cause went to the log).
    Failed,
}

#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    pub integration: String,
    pub requested_by: String,
    pub started: DateTime,
    pub summary: ReplaySummary,
    pub state: JobState,
    finished: Option<Instant>,
    /// Order of starting, to tell the newest apart when clocks tie.
    order: u64,
}

#[derive(Default)]
pub struct ReplayJobs {
    jobs: Mutex<HashMap<String, Job>>,
    started: std::sync::atomic::AtomicU64,
}

/// 128 random bits as hex: job ids are not guessable, though only admins read them.
fn new_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl ReplayJobs {
    /// Registers a new running job for the integration, or returns `Err` with the id of the one
    /// already running for it.
    pub fn start(&self, integration: &str, requested_by: &str) -> Result<String, String> {
        let mut jobs = self.jobs.lock().expect("replay jobs");
        prune(&mut jobs, Instant::now());
        if let Some(running) = jobs.values().find(|j| j.integration == integration && j.state == JobState::Running) {
            return Err(running.id.clone());
        }
        let id = new_id();
        jobs.insert(
            id.clone(),
            Job {
                id: id.clone(),
                integration: integration.to_owned(),
                requested_by: requested_by.to_owned(),
                started: DateTime::now(),
                summary: ReplaySummary::default(),
                state: JobState::Running,
                finished: None,
                order: self.started.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            },
        );
        Ok(id)
    }

    pub fn progress(&self, id: &str, summary: &ReplaySummary) {
        if let Some(job) = self.jobs.lock().expect("replay jobs").get_mut(id) {
            job.summary = summary.clone();
        }
    }

    /// Marks the job finished: its final summary, or failed (`None`).
    pub fn finish(&self, id: &str, summary: Option<&ReplaySummary>) {
        if let Some(job) = self.jobs.lock().expect("replay jobs").get_mut(id) {
            match summary {
                Some(s) => {
                    job.summary = s.clone();
                    job.state = JobState::Done;
                }
                None => job.state = JobState::Failed,
            }
            job.finished = Some(Instant::now());
        }
    }

    pub fn get(&self, id: &str) -> Option<Job> {
        let mut jobs = self.jobs.lock().expect("replay jobs");
        prune(&mut jobs, Instant::now());
        jobs.get(id).cloned()
    }
}

/// Forgets finished jobs older than [`KEEP_FOR`] and all but the newest [`KEEP_FINISHED`].
fn prune(jobs: &mut HashMap<String, Job>, now: Instant) {
    jobs.retain(|_, j| j.finished.is_none_or(|f| now.duration_since(f) < KEEP_FOR));
    let mut finished: Vec<(Instant, u64, String)> =
        jobs.values().filter_map(|j| j.finished.map(|f| (f, j.order, j.id.clone()))).collect();
    if finished.len() > KEEP_FINISHED {
        finished.sort();
        for (_, _, id) in &finished[..finished.len() - KEEP_FINISHED] {
            jobs.remove(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_running_job_per_integration() {
        let jobs = ReplayJobs::default();
        let first = jobs.start("u_a", "boss").unwrap();
        assert_eq!(jobs.start("u_a", "other"), Err(first.clone()), "the running one is answered");
        let other = jobs.start("u_b", "boss").unwrap();
        assert_ne!(first, other);
        let summary = ReplaySummary { matched: 3, replayed: 1, ..ReplaySummary::default() };
        jobs.progress(&first, &summary);
        assert_eq!(jobs.get(&first).unwrap().summary.replayed, 1);
        jobs.finish(&first, Some(&ReplaySummary { matched: 3, replayed: 3, ..ReplaySummary::default() }));
        let done = jobs.get(&first).unwrap();
        assert_eq!((done.state, done.summary.replayed), (JobState::Done, 3));
        assert!(jobs.start("u_a", "boss").is_ok(), "a finished job does not block the next");
        jobs.finish(&other, None);
        assert_eq!(jobs.get(&other).unwrap().state, JobState::Failed);
    }

    #[test]
    fn finished_jobs_are_forgotten_after_an_hour_or_beyond_the_newest() {
        let jobs = ReplayJobs::default();
        let mut ids = Vec::new();
        for n in 0..KEEP_FINISHED + 2 {
            let id = jobs.start(&format!("u_{n}"), "boss").unwrap();
            jobs.finish(&id, Some(&ReplaySummary::default()));
            ids.push(id);
        }
        let running = jobs.start("u_running", "boss").unwrap();
        assert!(jobs.get(&ids[0]).is_none() && jobs.get(&ids[1]).is_none(), "the oldest are gone");
        assert!(jobs.get(&ids[2]).is_some());
        let mut map = jobs.jobs.lock().unwrap();
        let later = Instant::now() + KEEP_FOR + Duration::from_secs(1);
        prune(&mut map, later);
        assert_eq!(map.len(), 1, "only the running job outlives the hour");
        assert!(map.contains_key(&running));
    }
}
