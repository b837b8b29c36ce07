use std::collections::BTreeSet;

use serde_json::Value;

use super::*;

const ERRORS_MD: &str = include_str!("../../../../docs/errors.md");

/// Every `$ref` in `value`, with where it was found.
fn refs<'a>(value: &'a Value, at: String, out: &mut Vec<(String, &'a str)>) {
    match value {
        Value::Object(o) => {
            for (k, v) in o {
                match (k.as_str(), v) {
                    ("$ref", Value::String(target)) => out.push((at.clone(), target)),
                    _ => refs(v, format!("{at}/{k}"), out),
                }
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                refs(v, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_reference_resolves_and_every_component_is_used() {
    let doc = document(&[]);
    let mut found = Vec::new();
    refs(&doc, String::new(), &mut found);
    assert!(!found.is_empty());
    let mut used = BTreeSet::new();
    for (at, target) in &found {
        let pointer = target.strip_prefix('#').unwrap_or_else(|| panic!("{at}: non-local $ref {target}"));
        assert!(doc.pointer(pointer).is_some(), "{at}: $ref {target} resolves to nothing");
        used.insert(pointer.to_owned());
    }
    for kind in ["schemas", "parameters"] {
        for name in doc["components"][kind].as_object().unwrap().keys() {
            let pointer = format!("/components/{kind}/{name}");
            assert!(used.contains(&pointer), "component {pointer} is never referenced");
        }
    }
}

#[test]
fn every_error_code_is_known_and_documented() {
    let known: BTreeSet<&str> = ApiError::every_kind().iter().map(|e| e.code()).collect();
    for route in routes() {
        for code in route.errors.iter().chain(EVERY_ROUTE) {
            assert!(known.contains(code), "{}: unknown error code {code}", route.id);
        }
    }
    for code in &known {
        assert!(ERRORS_MD.contains(&format!("`{code}`")), "{code} is not in docs/errors.md");
    }
}

#[test]
fn operation_ids_are_unique_and_paths_carry_their_parameters() {
    let doc = document(&[]);
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap().to_owned();
            assert!(ids.insert(id.clone()), "operationId {id} twice");
            let declared: Vec<&str> = op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| doc.pointer(p["$ref"].as_str().unwrap().trim_start_matches('#')).unwrap())
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            assert_eq!(declared, path_parameters(path), "{method} {path}");
            assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path}");
        }
    }
    // Three mounts of each ServiceNow route, one of each own route.
    let expected: usize = routes().map(|r| r.mounts().len()).sum();
    assert_eq!(ids.len(), expected);
}

/// Which variant an error is. Exhaustive on purpose: a new `ApiError` variant does not compile
/// here until it gets a name, and the test below then wants it in `ApiError::every_kind`.
fn variant(e: &ApiError) -> &'static str {
    use ApiError::*;
    match e {
        Unauthenticated => "Unauthenticated",
        Forbidden { .. } => "Forbidden",
        SourceNotAllowed => "SourceNotAllowed",
        NetworkForbidden => "NetworkForbidden",
        HeadersTooLarge(_) => "HeadersTooLarge",
        InvalidTable(_) => "InvalidTable",
        RecordNotFound => "RecordNotFound",
        NoSuchResource => "NoSuchResource",
        MethodNotAllowed => "MethodNotAllowed",
        MalformedJson(_) => "MalformedJson",
        BodyNotObject => "BodyNotObject",
        MalformedXml(_) => "MalformedXml",
        XmlDtd => "XmlDtd",
        BodyTooLarge(_) => "BodyTooLarge",
        UnsupportedMediaType => "UnsupportedMediaType",
        Timeout => "Timeout",
        DataPolicy { .. } => "DataPolicy",
        InvalidFields(_) => "InvalidFields",
        InvalidDefinitions(_) => "InvalidDefinitions",
        Busy => "Busy",
        RateLimited(_) => "RateLimited",
        InvalidIdempotencyKey => "InvalidIdempotencyKey",
        KeyReused => "KeyReused",
        InvalidAccount(_) => "InvalidAccount",
        Conflict { .. } => "Conflict",
        JsonTooDeep(_) => "JsonTooDeep",
        TooManyFields(_) => "TooManyFields",
        QueryTooLong(_) => "QueryTooLong",
        InvalidRecords(_) => "InvalidRecords",
        TooManyRecords(_) => "TooManyRecords",
        InvalidParameter(_) => "InvalidParameter",
        Internal(_) => "Internal",
    }
}

/// The number of arms above: raise it with each new arm.
const VARIANTS: usize = 32;

#[test]
fn every_kind_holds_every_variant() {
    let kinds = ApiError::every_kind();
    let names: BTreeSet<&str> = kinds.iter().map(variant).collect();
    assert_eq!(names.len(), VARIANTS, "every_kind misses a variant: it has {names:?}");
    let codes: BTreeSet<&str> = kinds.iter().map(ApiError::code).collect();
    assert_eq!(codes.len(), kinds.len(), "one entry per code");
}
