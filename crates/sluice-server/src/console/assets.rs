//! The console's one stylesheet, compiled into the binary (no build step, nothing to deploy).

use axum::http::header;
use axum::response::IntoResponse;

const CSS: &str = include_str!("../../templates/console/console.css");

pub async fn css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")], CSS)
}
