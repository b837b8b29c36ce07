use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::*;
use crate::error::{ApiError, ErrorKind};

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

/// A validator of the document's component schema `name` (its `$ref`s resolved in the document).
fn validator(doc: &Value, name: &str) -> jsonschema::Validator {
    let schema = json!({"$ref": format!("#/components/schemas/{name}"), "components": doc["components"]});
    jsonschema::draft202012::new(&schema).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn assert_valid(validator: &jsonschema::Validator, name: &str, body: &Value) {
    let problems: Vec<String> = validator.iter_errors(body).map(|e| format!("{}: {e}", e.instance_path())).collect();
    assert!(problems.is_empty(), "{name} does not describe {body}: {problems:?}");
}

/// The property names and the required ones of an object schema.
fn fields(schema: &Value) -> (BTreeSet<&str>, BTreeSet<&str>) {
    let properties = schema["properties"].as_object().expect("an object schema").keys().map(String::as_str).collect();
    let required = schema["required"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    (properties, required)
}

fn keys(value: &Value) -> BTreeSet<&str> {
    value.as_object().expect("an object").keys().map(String::as_str).collect()
}

/// The schema is the structs': every body validates, the bodies together use every property
/// and no other, and a body with nothing optional has exactly the required ones.
fn assert_describes(schema: &Value, bodies: &[&Value], least: &Value, what: &str) {
    let (properties, required) = fields(schema);
    let used: BTreeSet<&str> = bodies.iter().flat_map(|b| keys(b)).collect();
    assert_eq!(used, properties, "{what}: the bodies' fields and the schema's properties");
    assert_eq!(keys(least), required, "{what}: a body with nothing optional and the required fields");
}

#[test]
fn every_error_body_is_what_the_error_schema_says() {
    let doc = document(&[]);
    let v = validator(&doc, "Error");
    let errors = crate::error::tests::one_of_each();
    let bodies: Vec<Value> = errors.iter().map(|e| e.body("fb51c62d17096695")).collect();
    for body in &bodies {
        assert_valid(&v, "Error", body);
    }
    let schema = &doc["components"]["schemas"]["Error"];
    let inner: Vec<&Value> = bodies.iter().map(|b| &b["error"]).collect();
    let least = ApiError::Unauthenticated.body("r");
    assert_describes(&schema["properties"]["error"], &inner, &least["error"], "Error.error");
    assert_describes(schema, &bodies.iter().collect::<Vec<_>>(), &least, "Error");
    let codes: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.code()).collect();
    assert_eq!(schema["properties"]["error"]["properties"]["code"]["enum"], json!(codes));
    // The parts: a definition problem and a rate limit, field for field.
    let part = |code: &str, key: &str| {
        bodies.iter().find(|b| b["error"]["code"] == code).map(|b| b["error"][key].clone()).unwrap()
    };
    let problem = &part("invalid_definition", "errors")[0];
    let definition = &doc["components"]["schemas"]["DefinitionError"];
    assert_describes(definition, &[problem], problem, "DefinitionError");
    let limit = part("rate_limited", "limit");
    assert_describes(&doc["components"]["schemas"]["RateLimit"], &[&limit], &limit, "RateLimit");
}

#[test]
fn import_set_answers_are_what_their_schemas_say() {
    use sluice_core::staging::RowState;
    use sluice_core::validate::{ErrorCode, FieldError};
    use sluice_store::ImportOutcome;

    use crate::routes::answer::{ImportResult, ImportSetAnswer};

    let catalog = sluice_core::tables::Catalog::builtin();
    let integration = Integration::builtin_default(&catalog);
    let staging = sluice_core::SysId::parse(&"a".repeat(32)).unwrap();
    let inserted = ImportOutcome {
        import_set: "ISET0010001".into(),
        staging_sys_id: staging.clone(),
        state: RowState::Inserted,
        target_sys_id: Some("b".repeat(32)),
        display_value: Some("INC0010001".into()),
        status_message: Some("set by on_after".into()),
        errors: Vec::new(),
        replayed: false,
    };
    let error = FieldError {
        code: ErrorCode::InvalidChoice,
        field: "u_impact".into(),
        message: "\"9\" is not one of 1, 2, 3".into(),
        path: Some("/u_impact".into()),
    };
    let failed = ImportOutcome {
        state: RowState::Error,
        target_sys_id: None,
        display_value: None,
        status_message: None,
        errors: vec![error],
        ..inserted.clone()
    };
    let skipped = ImportOutcome { state: RowState::Skipped, errors: Vec::new(), ..failed.clone() };
    let result = |o: &ImportOutcome| ImportResult::new(&integration, o, "http://sluice.test");
    let answer = ImportSetAnswer {
        import_set: "ISET0010001".into(),
        staging_table: integration.definition.staging_table.clone(),
        result: vec![result(&inserted), result(&failed), result(&skipped)],
    };
    let body = serde_json::to_value(&answer).unwrap();
    let doc = document(&[]);
    assert_valid(&validator(&doc, "ImportSetResponse"), "ImportSetResponse", &body);
    let schemas = &doc["components"]["schemas"];
    assert_describes(&schemas["ImportSetResponse"], &[&body], &body, "ImportSetResponse");
    let entries: Vec<&Value> = body["result"].as_array().unwrap().iter().collect();
    assert_describes(&schemas["ImportResult"], &entries, &body["result"][2], "ImportResult");
    assert_eq!(body["result"][1]["status_message"], "failure");
    assert_eq!(body["result"][1]["error_message"], "u_impact: \"9\" is not one of 1, 2, 3");
    assert_eq!(
        body["result"][0]["record_link"],
        format!("http://sluice.test/api/now/table/incident/{}", "b".repeat(32))
    );
}
