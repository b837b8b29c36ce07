//! Replaying all errored rows of an integration from its page (admins): [`Pipeline::replay`]
//! (what the API's `POST /api/sluice/v1/integrations/{name}/replay` runs) in a background task,
//! its progress kept in [`super::replay_jobs`] and shown by a page that reloads itself every
//! second until the replay ends. Recorded in the admin audit as the API's replay is
//! ([`crate::routes::admin_audit::record_replay`]).

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::layout::{self, Frame};
use super::replay_jobs::{Job, JobState};
use super::session::Console;
use crate::AppState;
use crate::authenticate::Caller;
use crate::pipeline::Pipeline;
use crate::pipeline::replay::{ReplayRequest, ReplaySummary};

/// A form that carries only its CSRF token (replays start with nothing else).
#[derive(Deserialize)]
pub struct ReplayForm {
    #[serde(default)]
    pub csrf: String,
}

/// The integration an admin's form on its page acts on: the form's checks
/// ([`Console::refuse_admin_form`]) passed and the integration visible, else the page to answer.
pub fn admin_form_target(
    state: &AppState,
    console: &Console,
    headers: &HeaderMap,
    form: &ReplayForm,
    name: &str,
) -> Result<std::sync::Arc<sluice_core::integration::Integration>, Box<Response>> {
    if let Some(refused) = console.refuse_admin_form(headers, &form.csrf) {
        return Err(Box::new(refused));
    }
    crate::routes::integrations::find(state, &Caller(console.account.clone()), name)
        .map_err(|_| Box::new(layout::not_found(console)))
}

/// Starts the replay of the integration's errored rows, or finds the one running for it; sends
/// the browser to its progress page.
pub async fn start(
    State(state): State<AppState>,
    console: Console,
    Path(name): Path<String>,
    headers: HeaderMap,
    Form(form): Form<ReplayForm>,
) -> Response {
    let integration = match admin_form_target(&state, &console, &headers, &form, &name) {
        Ok(i) => i,
        Err(page) => return *page,
    };
    let who = console.account.user_name.clone();
    let id = match state.replay_jobs.start(integration.name(), &who) {
        Err(running) => running,
        Ok(id) => {
            let mut request = ReplayRequest::parse(None, None, who.clone()).expect("the default selection: error rows");
            request.batch_rows = state.config.bulk_batch_rows;
            let (state, job) = (state.clone(), id.clone());
            tokio::spawn(async move {
                let registry = state.registry();
                let jobs = state.replay_jobs.clone();
                let result =
                    Pipeline::of(&state, &registry).replay(&integration, &request, |s| jobs.progress(&job, s)).await;
                // Audited before the job shows as finished: a finished job is an audited one.
                crate::routes::admin_audit::record_replay(&state, &who, &integration, &request, &result).await;
                match &result {
                    Ok(summary) => {
                        tracing::info!(integration = %integration.name(), replayed = summary.replayed, account = %who, "staged rows replayed from the console");
                        jobs.finish(&job, Some(summary));
                    }
                    Err(e) => {
                        tracing::error!(integration = %integration.name(), error = %e, "console replay failed");
                        jobs.finish(&job, None);
                    }
                }
            });
            id
        }
    };
    Redirect::to(&format!("/console/integrations/{name}/replays/{id}")).into_response()
}

#[derive(Template, WebTemplate)]
#[template(path = "console/replay.html")]
pub struct ReplayPage {
    pub frame: Option<Frame>,
    pub name: String,
    pub job: Job,
    /// `running`, `done` or `failed`.
    pub state: &'static str,
    /// Rows handled so far (replayed or left alone), and the goal.
    pub handled: u64,
    pub goal: u64,
    pub outcome: String,
}

/// "3 replayed: 3 inserted", naming only the outcomes that happened.
pub fn outcome_text(s: &ReplaySummary) -> String {
    let o = &s.outcomes;
    let parts: Vec<String> = [
        (o.inserted, "inserted"),
        (o.updated, "updated"),
        (o.ignored, "ignored"),
        (o.skipped, "skipped"),
        (o.error, "still in error"),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    let mut text = if parts.is_empty() {
        format!("{} replayed", s.replayed)
    } else {
        format!("{} replayed: {}", s.replayed, parts.join(", "))
    };
    if s.not_replayed > 0 {
        text.push_str(&format!("; {} left alone (changed meanwhile or failed)", s.not_replayed));
    }
    text
}

pub async fn progress(
    State(state): State<AppState>,
    console: Console,
    Path((name, id)): Path<(String, String)>,
) -> Response {
    if !console.is_admin() {
        return layout::forbidden(&console);
    }
    let Some(job) = state.replay_jobs.get(&id).filter(|j| j.integration == name) else {
        return layout::not_found_because(
            &console,
            "This node does not know that replay. Progress is kept in memory by the node that runs the replay, for an hour after it ends.",
        );
    };
    let handled = job.summary.replayed + job.summary.not_replayed;
    let page = ReplayPage {
        frame: Some(Frame::new(&console, "integrations")),
        state: match job.state {
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
        },
        goal: job.summary.matched.max(handled),
        handled,
        outcome: outcome_text(&job.summary),
        name,
        job,
    };
    (StatusCode::OK, page).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_name_what_happened() {
        let mut s = ReplaySummary { matched: 3, replayed: 3, ..ReplaySummary::default() };
        s.outcomes.inserted = 3;
        assert_eq!(outcome_text(&s), "3 replayed: 3 inserted");
        s.outcomes.inserted = 1;
        s.outcomes.error = 2;
        s.not_replayed = 1;
        assert_eq!(
            outcome_text(&s),
            "3 replayed: 1 inserted, 2 still in error; 1 left alone (changed meanwhile or failed)"
        );
        assert_eq!(outcome_text(&ReplaySummary::default()), "0 replayed");
    }
}
