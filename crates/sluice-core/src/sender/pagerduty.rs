//! PagerDuty Events API v2 (`POST /v2/enqueue`): one event, one row. The event is checked here
//! into an [`Event`] with PagerDuty's own rules and wording, so a sender pointed at sluice gets
//! the errors it would get from PagerDuty; the row's document is the event as received, less its
//! `routing_key` (a credential: never staged) and, on a trigger without one, with the generated
//! `dedup_key` (so the row correlates, and a replay stages the same key).

use serde_json::{Map, Value};

use crate::SysId;

/// The longest `dedup_key` PagerDuty takes.
pub const MAX_DEDUP_KEY: usize = 255;
/// The longest `payload.summary` PagerDuty takes.
pub const MAX_SUMMARY: usize = 1024;
/// Integration keys are 32 characters at PagerDuty, and sluice's routing keys too.
pub const ROUTING_KEY_LENGTH: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventAction {
    Trigger,
    Acknowledge,
    Resolve,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Critical,
    Error,
    Warning,
    Info,
}

/// What a trigger says about the alert (`payload`).
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub summary: String,
    pub source: String,
    pub severity: Severity,
}

/// A valid event: its action, its de-duplication key (sent or generated) and the row document.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub action: EventAction,
    pub dedup_key: String,
    /// Whether sluice generated `dedup_key` (a trigger without one).
    pub generated_key: bool,
    /// Only on trigger.
    pub alert: Option<Alert>,
    pub document: Map<String, Value>,
}

/// The `routing_key` of an event body, or PagerDuty's message for its absence or length.
pub fn routing_key(body: &Map<String, Value>) -> Result<&str, String> {
    match body.get("routing_key") {
        Some(Value::String(key)) if key.chars().count() == ROUTING_KEY_LENGTH => Ok(key),
        Some(Value::String(key)) if !key.trim().is_empty() => {
            Err(format!("Length of 'routing_key' is incorrect (should be {ROUTING_KEY_LENGTH} characters)"))
        }
        Some(Value::String(_)) | None | Some(Value::Null) => Err("'routing_key' is missing or blank".into()),
        Some(_) => Err("'routing_key' must be a string".into()),
    }
}

/// Checks an event body (its `routing_key` already checked) with every problem in PagerDuty's
/// wording, field names quoted as PagerDuty does (`'payload.summary'`).
pub fn parse(mut body: Map<String, Value>) -> Result<Event, Vec<String>> {
    let mut errors = Vec::new();
    let action = match body.get("event_action") {
        Some(Value::String(a)) if a == "trigger" => Some(EventAction::Trigger),
        Some(Value::String(a)) if a == "acknowledge" => Some(EventAction::Acknowledge),
        Some(Value::String(a)) if a == "resolve" => Some(EventAction::Resolve),
        None | Some(Value::Null) => {
            errors.push("'event_action' is missing or blank".into());
            None
        }
        Some(_) => {
            errors.push("'event_action' is invalid (must be one of trigger, acknowledge, resolve)".into());
            None
        }
    };
    let dedup_key = match body.get("dedup_key") {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) if k.trim().is_empty() => None,
        Some(Value::String(k)) if k.chars().count() > MAX_DEDUP_KEY => {
            errors.push(format!("Length of 'dedup_key' is incorrect (should be at most {MAX_DEDUP_KEY} characters)"));
            None
        }
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => {
            errors.push("'dedup_key' must be a string".into());
            None
        }
    };
    if dedup_key.is_none() && matches!(action, Some(EventAction::Acknowledge | EventAction::Resolve)) {
        errors.push("'dedup_key' is missing or blank (required unless event_action is trigger)".into());
    }
    let alert = match action {
        Some(EventAction::Trigger) => alert(body.get("payload"), &mut errors),
        _ => None,
    };
    for key in ["client", "client_url"] {
        if !matches!(body.get(key), None | Some(Value::Null | Value::String(_))) {
            errors.push(format!("'{key}' must be a string"));
        }
    }
    check_list(&body, "links", "href", &mut errors);
    check_list(&body, "images", "src", &mut errors);
    let Some(action) = action.filter(|_| errors.is_empty()) else { return Err(errors) };

    body.remove("routing_key");
    let generated_key = dedup_key.is_none();
    let dedup_key = dedup_key.unwrap_or_else(generate_dedup_key);
    if generated_key {
        body.insert("dedup_key".into(), Value::String(dedup_key.clone()));
    }
    Ok(Event { action, dedup_key, generated_key, alert, document: body })
}

/// A trigger's `payload`: summary, source and severity required, the rest of the right types.
fn alert(payload: Option<&Value>, errors: &mut Vec<String>) -> Option<Alert> {
    let Some(Value::Object(p)) = payload else {
        errors.push("'payload' is missing or not an object (required when event_action is trigger)".into());
        return None;
    };
    let text = |key: &str, errors: &mut Vec<String>| match p.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        None | Some(Value::Null) | Some(Value::String(_)) => {
            errors.push(format!("'payload.{key}' is missing or blank"));
            None
        }
        Some(_) => {
            errors.push(format!("'payload.{key}' must be a string"));
            None
        }
    };
    let summary = text("summary", errors);
    if summary.as_ref().is_some_and(|s| s.chars().count() > MAX_SUMMARY) {
        errors.push(format!("Length of 'payload.summary' is incorrect (should be at most {MAX_SUMMARY} characters)"));
    }
    let source = text("source", errors);
    let severity = match p.get("severity").and_then(Value::as_str) {
        Some("critical") => Some(Severity::Critical),
        Some("error") => Some(Severity::Error),
        Some("warning") => Some(Severity::Warning),
        Some("info") => Some(Severity::Info),
        None if matches!(p.get("severity"), None | Some(Value::Null)) => {
            errors.push("'payload.severity' is missing or blank".into());
            None
        }
        _ => {
            errors.push("'payload.severity' is invalid (must be one of critical, error, warning, info)".into());
            None
        }
    };
    for key in ["timestamp", "component", "group", "class"] {
        if !matches!(p.get(key), None | Some(Value::Null | Value::String(_))) {
            errors.push(format!("'payload.{key}' must be a string"));
        }
    }
    if !matches!(p.get("custom_details"), None | Some(Value::Null | Value::Object(_))) {
        errors.push("'payload.custom_details' must be an object".into());
    }
    Some(Alert { summary: summary?.chars().take(MAX_SUMMARY).collect(), source: source?, severity: severity? })
}

/// `links` and `images`: arrays of objects, each with its required text (`href`, `src`).
fn check_list(body: &Map<String, Value>, key: &str, required: &str, errors: &mut Vec<String>) {
    match body.get(key) {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                match item.get(required) {
                    Some(Value::String(s)) if !s.is_empty() => {}
                    _ => errors.push(format!("'{key}[{i}].{required}' is missing or blank")),
                }
            }
        }
        Some(_) => errors.push(format!("'{key}' must be an array")),
    }
}

/// A generated key: 128 random bits as a UUID's text (8-4-4-4-12 hexadecimal digits).
fn generate_dedup_key() -> String {
    let hex = SysId::generate().into_string();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(v: Value) -> Result<Event, Vec<String>> {
        let Value::Object(body) = v else { panic!("object") };
        parse(body)
    }

    #[test]
    fn a_trigger_without_dedup_key_gets_one_and_loses_its_routing_key() {
        let e = event(json!({
            "routing_key": "k".repeat(32), "event_action": "trigger",
            "payload": {"summary": "Disk full", "source": "db-01", "severity": "critical",
                        "custom_details": {"free": "2%"}},
            "links": [{"href": "https://example.com"}],
        }))
        .unwrap();
        assert_eq!(e.action, EventAction::Trigger);
        assert!(e.generated_key);
        assert_eq!(e.dedup_key.len(), 36, "{}", e.dedup_key);
        assert_eq!(e.dedup_key.matches('-').count(), 4);
        assert_eq!(e.document["dedup_key"], json!(e.dedup_key));
        assert!(!e.document.contains_key("routing_key"), "the credential is never staged");
        assert_eq!(e.alert.unwrap().severity, Severity::Critical);
        let mut keys: Vec<_> = e.document.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["dedup_key", "event_action", "links", "payload"]);
    }

    #[test]
    fn acknowledge_and_resolve_need_a_dedup_key_but_no_payload() {
        let ack = event(json!({"event_action": "acknowledge", "dedup_key": "srv01/HTTP"})).unwrap();
        assert_eq!(
            (ack.action, ack.dedup_key.as_str(), ack.generated_key),
            (EventAction::Acknowledge, "srv01/HTTP", false)
        );
        assert_eq!(ack.alert, None);
        let errors = event(json!({"event_action": "resolve"})).unwrap_err();
        assert_eq!(errors, ["'dedup_key' is missing or blank (required unless event_action is trigger)"]);
    }

    #[test]
    fn every_problem_is_named() {
        let errors = event(json!({
            "event_action": "trigger", "dedup_key": "x".repeat(256),
            "payload": {"summary": "s".repeat(1025), "severity": "fatal", "custom_details": "text", "group": 7},
            "links": [{"text": "no href"}], "images": "none", "client": 1,
        }))
        .unwrap_err();
        assert_eq!(
            errors,
            [
                "Length of 'dedup_key' is incorrect (should be at most 255 characters)",
                "Length of 'payload.summary' is incorrect (should be at most 1024 characters)",
                "'payload.source' is missing or blank",
                "'payload.severity' is invalid (must be one of critical, error, warning, info)",
                "'payload.group' must be a string",
                "'payload.custom_details' must be an object",
                "'client' must be a string",
                "'links[0].href' is missing or blank",
                "'images' must be an array",
            ]
        );
        assert_eq!(
            event(json!({"event_action": "page"})).unwrap_err(),
            ["'event_action' is invalid (must be one of trigger, acknowledge, resolve)"]
        );
        assert_eq!(
            event(json!({"event_action": "trigger"})).unwrap_err(),
            ["'payload' is missing or not an object (required when event_action is trigger)"]
        );
    }

    #[test]
    fn routing_keys_are_32_characters() {
        let body = |v: Value| json!({ "routing_key": v }).as_object().unwrap().clone();
        assert_eq!(routing_key(&body(json!("a".repeat(32)))), Ok("a".repeat(32).as_str()));
        assert_eq!(
            routing_key(&body(json!("short"))),
            Err("Length of 'routing_key' is incorrect (should be 32 characters)".into())
        );
        assert_eq!(routing_key(&body(json!(""))), Err("'routing_key' is missing or blank".into()));
        assert_eq!(routing_key(&Map::new()), Err("'routing_key' is missing or blank".into()));
        assert_eq!(routing_key(&body(json!(7))), Err("'routing_key' must be a string".into()));
    }
}
