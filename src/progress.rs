//! Progress bars on standard error for long CLI work (load, replay, export, import): drawn only
//! when standard error is a terminal, so logs and pipes get no escape codes.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

fn target() -> ProgressDrawTarget {
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

/// A bar over `total` bytes (a file being read).
pub fn bytes(total: u64, what: &str) -> ProgressBar {
    bar(total, what, "{bytes}/{total_bytes}")
}

/// A bar over `total` items (rows).
pub fn items(total: u64, what: &str) -> ProgressBar {
    bar(total, what, "{pos}/{len}")
}

fn bar(total: u64, what: &str, counts: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), target());
    let template = format!("{{prefix}} [{{bar:30}}] {counts} {{msg}} ({{eta}})");
    bar.set_style(ProgressStyle::with_template(&template).expect("a valid template").progress_chars("=> "));
    bar.set_prefix(what.to_owned());
    bar
}

/// A spinner for work of unknown size (a dump read from standard input, tables being exported).
pub fn spinner(what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, target());
    bar.set_style(ProgressStyle::with_template("{spinner} {prefix} {msg}").expect("a valid template"));
    bar.set_prefix(what.to_owned());
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}
