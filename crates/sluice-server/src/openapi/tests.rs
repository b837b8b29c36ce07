use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::*;

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
fn every_route_documents_its_error_kinds_by_status() {
    let doc = document(&[]);
    for route in routes() {
        for (path, _) in route.mounts() {
            let op = &doc["paths"][&path][route.verb.key()];
            let kinds = route.error_kinds(crate::xml::applies(&path));
            let codes: Vec<&str> = kinds.iter().map(|k| k.code()).collect();
            assert_eq!(op["x-sluice-error-codes"], json!(codes), "{path}");
            for kind in kinds {
                let response = &op["responses"][kind.status().as_str()];
                let description = response["description"].as_str().unwrap_or_default();
                assert!(description.contains(kind.code()), "{path}: {kind} not under {}", kind.status());
                assert_eq!(response["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/Error");
            }
        }
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
