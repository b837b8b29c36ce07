//! What a sender posts: the `format` of an integration and, for the sender formats, the table of
//! staging field → JSON Pointer (RFC 6901) that says where each field sits in a row's document.
//! The splitting of a body into row documents is [`crate::sender`].

use std::fmt;

use serde::Deserialize;
use serde_json::Value;

use super::{Definition, DefinitionProblem, FieldSpec, FieldType};

/// The `format` key of a definition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SenderFormat {
    /// ServiceNow's Import Set API (`/api/now/import/{staging_table}`): the default.
    #[default]
    ServicenowImport,
    /// Prometheus Alertmanager's webhook (payload version 4): one row per alert.
    Alertmanager,
    /// Any JSON object, or an array of objects (one row each).
    GenericJson,
    /// PagerDuty Events API v2 (`POST /v2/enqueue`): one row per event.
    PagerdutyEventsV2,
}

impl SenderFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ServicenowImport => "servicenow-import",
            Self::Alertmanager => "alertmanager",
            Self::GenericJson => "generic-json",
            Self::PagerdutyEventsV2 => "pagerduty-events-v2",
        }
    }

    /// Whether rows of this format are a sender's own documents, staged by pointers.
    pub fn is_sender(self) -> bool {
        !matches!(self, Self::ServicenowImport)
    }

    /// Whether rows of this format arrive at the sender hook (`/api/sluice/v1/hooks/{name}`);
    /// PagerDuty events arrive at `/v2/enqueue` instead.
    pub fn at_hook(self) -> bool {
        matches!(self, Self::Alertmanager | Self::GenericJson)
    }
}

impl fmt::Display for SenderFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Definition {
    /// Whether an object or array at this field's place is staged as its JSON text (a text field
    /// of a sender format, e.g. a label set) rather than refused as `wrong_type`.
    pub fn stages_json_text(&self, field: &FieldSpec) -> bool {
        self.format.is_sender() && field.kind == FieldType::String
    }
}

/// A parsed JSON Pointer with at least one reference token, none empty (`/labels/alertname`);
/// `~1` and `~0` are unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPointer {
    text: String,
    tokens: Vec<String>,
}

/// Why a text is not a [`JsonPointer`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PointerError {
    #[error("{0:?} does not start with / (a JSON Pointer such as /labels/alertname)")]
    NoLeadingSlash(String),
    #[error("{0:?} has an empty reference token")]
    EmptyToken(String),
    #[error("{0:?} has a ~ not followed by 0 or 1")]
    BadEscape(String),
}

impl JsonPointer {
    pub fn parse(text: &str) -> Result<Self, PointerError> {
        let Some(rest) = text.strip_prefix('/') else { return Err(PointerError::NoLeadingSlash(text.to_owned())) };
        let mut tokens = Vec::new();
        for raw in rest.split('/') {
            if raw.is_empty() {
                return Err(PointerError::EmptyToken(text.to_owned()));
            }
            let mut token = String::with_capacity(raw.len());
            let mut chars = raw.chars();
            while let Some(c) = chars.next() {
                if c != '~' {
                    token.push(c);
                    continue;
                }
                match chars.next() {
                    Some('0') => token.push('~'),
                    Some('1') => token.push('/'),
                    _ => return Err(PointerError::BadEscape(text.to_owned())),
                }
            }
            tokens.push(token);
        }
        Ok(Self { text: text.to_owned(), tokens })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The value it points at in `document`, if any.
    pub fn get<'v>(&self, document: &'v Value) -> Option<&'v Value> {
        self.tokens.iter().try_fold(document, |at, token| match at {
            Value::Object(map) => map.get(token),
            Value::Array(items) => items.get(token.parse::<usize>().ok()?),
            _ => None,
        })
    }
}

impl fmt::Display for JsonPointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Checks the format and its pointer table, and makes each pointer its field's `source` (so
/// staging, the contract and the published schema read the field there).
pub(super) fn apply_pointers(
    d: &mut Definition,
    problem: &dyn Fn(&str, String) -> DefinitionProblem,
) -> Vec<DefinitionProblem> {
    let mut problems = Vec::new();
    match d.format {
        SenderFormat::ServicenowImport if !d.pointers.is_empty() => problems.push(problem(
            "pointers",
            "pointers are for sender formats (alertmanager, generic-json, pagerduty-events-v2); give fields a source instead".into(),
        )),
        _ => {}
    }
    for (name, text) in &d.pointers {
        let key = format!("pointers.{name}");
        let pointer = match JsonPointer::parse(text) {
            Ok(p) => p,
            Err(e) => {
                problems.push(problem(&key, e.to_string()));
                continue;
            }
        };
        match d.fields.iter_mut().find(|f| f.name == *name) {
            None => problems.push(problem(&key, format!("{name} is not one of the fields"))),
            Some(f) if f.source.is_some() => {
                problems.push(problem(&key, format!("{name} also has a source: give one or the other")))
            }
            Some(f) => f.source = Some(pointer.as_str().to_owned()),
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pointers_find_values_through_objects_and_arrays() {
        let doc = json!({
            "labels": {"alertname": "DiskFull", "a/b": "slash", "m~n": "tilde"},
            "value": 2.0,
            "up": false,
            "list": [{"x": 1}],
        });
        let read = |p: &str| JsonPointer::parse(p).unwrap().get(&doc).cloned();
        assert_eq!(read("/labels/alertname"), Some(json!("DiskFull")));
        assert_eq!(read("/labels/a~1b"), Some(json!("slash")));
        assert_eq!(read("/labels/m~0n"), Some(json!("tilde")));
        assert_eq!(read("/value"), Some(json!(2.0)));
        assert_eq!(read("/up"), Some(json!(false)));
        assert_eq!(read("/list/0/x"), Some(json!(1)));
        assert_eq!(read("/labels/missing"), None);
        assert_eq!(read("/list/7"), None);
        assert_eq!(read("/value/deeper"), None);
        // The same values as serde_json's own reading of RFC 6901.
        assert_eq!(read("/labels/a~1b").as_ref(), doc.pointer("/labels/a~1b"));
    }

    #[test]
    fn malformed_pointers_are_refused_with_their_reason() {
        assert_eq!(JsonPointer::parse("labels"), Err(PointerError::NoLeadingSlash("labels".into())));
        assert_eq!(JsonPointer::parse("/labels//x"), Err(PointerError::EmptyToken("/labels//x".into())));
        assert_eq!(JsonPointer::parse("/"), Err(PointerError::EmptyToken("/".into())));
        assert_eq!(JsonPointer::parse("/a~2"), Err(PointerError::BadEscape("/a~2".into())));
    }
}
