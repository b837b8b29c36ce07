//! Why a script failed: an rquickjs error, or a thrown or rejected-with value, turned into a
//! [`ScriptError`] (a limit, or the script's own exception with its message and line).

use rquickjs::{Coerced, Ctx, Value};

use crate::{MAX_MESSAGE_CHARS, SCRIPT_NAME, ScriptError};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    Setup,
    Compile,
    Run,
    ReadBack,
}

/// Turns an rquickjs error into the reason a script failed.
pub(crate) fn classify(
    ctx: &Ctx<'_>,
    error: rquickjs::Error,
    interrupted: bool,
    over_limit: bool,
    stage: Stage,
) -> ScriptError {
    if interrupted {
        return ScriptError::Timeout;
    }
    match error {
        rquickjs::Error::Allocation => ScriptError::MemoryLimit,
        rquickjs::Error::InvalidString(_) => ScriptError::Compile("the script contains a NUL character".into()),
        rquickjs::Error::Exception => classify_exception(&ctx.catch(), over_limit, stage),
        other => ScriptError::Internal(other.to_string()),
    }
}

/// The reason a thrown (or rejected-with) value failed the script; `over_limit`: the heap refused
/// an allocation during the call.
pub(crate) fn classify_exception(exception: &Value<'_>, over_limit: bool, stage: Stage) -> ScriptError {
    if exception.is_uncatchable_error() {
        return ScriptError::Timeout;
    }
    // When even the error object cannot be allocated, QuickJS throws `null`.
    if (exception.is_null() || exception.is_undefined()) && over_limit {
        return ScriptError::MemoryLimit;
    }
    let (name, message, line) = describe(exception);
    if message.contains("out of memory") || (name == "InternalError" && message.contains("too long")) {
        return ScriptError::MemoryLimit;
    }
    if message.contains("stack overflow") || message.contains("call stack size") {
        return ScriptError::StackOverflow;
    }
    let mut text = if name.is_empty() { message } else { format!("{name}: {message}") };
    if let Some(line) = line {
        text.push_str(&format!(" (line {line})"));
    }
    let text = truncate(text);
    match stage {
        Stage::Compile => ScriptError::Compile(text),
        Stage::Run | Stage::ReadBack => ScriptError::Thrown(text),
        Stage::Setup => ScriptError::Internal(text),
    }
}

/// Name, message and script line of a thrown value.
fn describe(exception: &Value<'_>) -> (String, String, Option<u32>) {
    let Some(object) = exception.as_object() else {
        let text = exception.get::<Coerced<String>>().map(|c| c.0).unwrap_or_else(|_| "(unprintable value)".into());
        return (String::new(), text, None);
    };
    let get = |key: &str| object.get::<_, Option<Coerced<String>>>(key).ok().flatten().map(|c| c.0);
    let name = get("name").unwrap_or_default();
    let message = match get("message") {
        Some(m) => m,
        None => exception.get::<Coerced<String>>().map(|c| c.0).unwrap_or_else(|_| "(unprintable value)".into()),
    };
    let prefix = format!("{}:", SCRIPT_NAME.to_str().unwrap_or("script"));
    let line = get("stack").and_then(|stack| {
        let at = stack.find(&prefix)? + prefix.len();
        let digits: String = stack[at..].chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    });
    (name, message, line)
}

pub(crate) fn truncate(mut text: String) -> String {
    if let Some((cut, _)) = text.char_indices().nth(MAX_MESSAGE_CHARS) {
        text.truncate(cut);
        text.push('…');
    }
    text
}
