//! `GET /api/sluice/v1/openapi.json`: a structurally valid OpenAPI 3.1 document, the same as the
//! checked-in snapshot for the built-in integration (`SLUICE_UPDATE_SNAPSHOTS=1` rewrites it),
//! agreeing route for route and method for method with what the server answers.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::helpers::*;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn snapshot_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/api/snapshots/openapi.json")
}

/// Every `$ref` in the document resolves inside it.
fn assert_refs_resolve(doc: &Value, value: &Value) {
    match value {
        Value::Object(o) => {
            for (k, v) in o {
                if k == "$ref" {
                    let target = v.as_str().expect("a $ref is a string");
                    let pointer = target.strip_prefix('#').unwrap_or_else(|| panic!("non-local $ref {target}"));
                    assert!(doc.pointer(pointer).is_some(), "$ref {target} resolves to nothing");
                } else {
                    assert_refs_resolve(doc, v);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| assert_refs_resolve(doc, v)),
        _ => {}
    }
}

fn assert_well_formed(doc: &Value) {
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() > 30, "{} paths", paths.len());
    for (path, item) in paths {
        assert!(path.starts_with('/'), "{path}");
        for (method, op) in item.as_object().unwrap() {
            assert!(METHODS.contains(&method.as_str()), "{path}: {method}");
            assert!(op["operationId"].is_string(), "{method} {path}");
            let responses = op["responses"].as_object().expect("responses");
            assert!(responses.keys().any(|s| s.starts_with('2')), "{method} {path}: no success response");
        }
    }
    assert_refs_resolve(doc, doc);
}

async fn document(s: &Server) -> Value {
    let (status, doc) = s.get("/api/sluice/v1/openapi.json").await;
    assert_eq!(status, 200, "{doc}");
    doc
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_matches_the_snapshot() {
    let s = Server::start();
    let doc = document(&s).await;
    assert_well_formed(&doc);
    // The built-in integration's payload schema, referenced from its own import path.
    let op = &doc["paths"][format!("/api/now/import/{STAGING}")]["post"];
    assert_eq!(
        op["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        format!("#/components/schemas/payload.{STAGING}")
    );
    let (_, schema) = s.get(&format!("/api/sluice/v1/integrations/{STAGING}/schema.json")).await;
    assert_eq!(
        doc["components"]["schemas"][format!("payload.{STAGING}")]["properties"],
        schema["properties"],
        "the same schema as schema.json"
    );

    let path = snapshot_path();
    if std::env::var_os("SLUICE_UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
    }
    let text = std::fs::read_to_string(&path).expect("snapshot (run with SLUICE_UPDATE_SNAPSHOTS=1 to create it)");
    let expected: Value = serde_json::from_str(&text).unwrap();
    assert!(
        expected == doc,
        "openapi.json differs from {}; review and run with SLUICE_UPDATE_SNAPSHOTS=1",
        path.display()
    );
}

/// Each documented operation reaches a handler (unauthenticated: 401, never the 400 of an
/// unknown path or the 405 of an unknown method); every method the document leaves out of a
/// path is answered 405. Path parameters get placeholder values.
#[tokio::test]
async fn every_documented_route_is_served_and_nothing_else_on_its_paths() {
    let s = Server::start();
    let doc = document(&s).await;
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete: String = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "0123456789abcdef0123456789abcdef" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        for method in METHODS {
            let request = s.http.request(method.to_uppercase().parse().unwrap(), s.url(&concrete));
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            match item.get(method) {
                Some(op) => {
                    let pagerduty = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                        == "#/components/schemas/PagerDutyEvent";
                    if pagerduty {
                        // Public too, but an empty body is PagerDuty's unrecognized object.
                        assert_eq!((status, &body["status"]), (400, &json!("Unrecognized object")), "{path}");
                    } else {
                        let expected = if op["x-sluice-auth"] == "public" { 200 } else { 401 };
                        assert_eq!(status, expected, "{method} {path}: {body}");
                    }
                    checked += 1;
                }
                None => assert_eq!(status, 405, "{method} {path} is not documented but answered {status}: {body}"),
            }
        }
    }
    assert!(checked > 50, "{checked} operations");
}

#[tokio::test]
async fn any_account_reads_it_but_only_with_the_integrations_it_may_see() {
    let s = Server::start();
    let password = s.add_account("reader", &["itil"]);
    let r =
        s.http.get(s.url("/api/sluice/v1/openapi.json")).basic_auth("reader", Some(&password)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let doc: Value = r.json().await.unwrap();
    assert_well_formed(&doc);
    assert!(doc["components"]["schemas"].get(format!("payload.{STAGING}")).is_none(), "not bound to it");
    assert!(doc["paths"].get(format!("/api/now/import/{STAGING}")).is_none());
    assert!(doc["paths"].get("/api/now/import/{table}").is_some());

    let r = s.http.get(s.url("/api/sluice/v1/openapi.json")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

/// The schema the document gives `method path` for `status` (JSON), as a validator.
fn answer_schema(doc: &Value, path: &str, method: &str, status: u16) -> jsonschema::Validator {
    let op = &doc["paths"][path][method];
    assert!(op.is_object(), "{method} {path} is not documented");
    let schema = &op["responses"][status.to_string()]["content"]["application/json"]["schema"];
    assert!(schema.is_object(), "{method} {path} documents no JSON answer for {status}");
    let root = serde_json::json!({"$ref": schema["$ref"], "components": doc["components"]});
    jsonschema::draft202012::new(&root).unwrap()
}

async fn assert_documented(doc: &Value, path: &str, method: &str, r: reqwest::Response) -> Value {
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    let validator = answer_schema(doc, path, method, status);
    let problems: Vec<String> = validator.iter_errors(&body).map(|e| format!("{}: {e}", e.instance_path())).collect();
    assert!(problems.is_empty(), "{method} {path} {status}: {problems:?} in {body}");
    body
}

/// Real answers, successes and errors, are what the served document says of their route and
/// status.
#[tokio::test]
async fn real_answers_validate_against_the_served_schemas() {
    let s = Server::start();
    let doc = document(&s).await;
    let import = format!("/api/now/import/{STAGING}");
    let generic = "/api/now/import/{table}";
    let post = |body: Value| s.admin(s.http.post(s.url(&import))).json(&body).send();

    let r = post(serde_json::json!({"u_short_description": "Disk full", "u_correlation_id": "oas:1"})).await.unwrap();
    assert_eq!(r.status(), 201);
    let created = assert_documented(&doc, &import, "post", r).await;
    assert_eq!(created["result"][0]["status"], "inserted");
    let r = post(serde_json::json!({"u_short_description": "Disk full", "u_urgency": "9"})).await.unwrap();
    let failed = assert_documented(&doc, generic, "post", r).await;
    assert_eq!(failed["result"][0]["status"], "error", "{failed}");
    assert!(failed["result"][0]["errors"][0]["code"].is_string(), "{failed}");

    let staged = created["result"][0]["staging_sys_id"].as_str().unwrap();
    let r = s.admin(s.http.get(s.url(&format!("{import}/{staged}")))).send().await.unwrap();
    assert_documented(&doc, "/api/now/import/{table}/{sys_id}", "get", r).await;

    // Errors: unauthenticated, unknown table, malformed JSON, an invalid parameter.
    let r = s.http.post(s.url(&import)).json(&serde_json::json!({})).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_envelope(&assert_documented(&doc, &import, "post", r).await, "unauthenticated");
    let r = s.admin(s.http.post(s.url("/api/now/import/u_nope"))).json(&serde_json::json!({})).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_envelope(&assert_documented(&doc, generic, "post", r).await, "invalid_table");
    let r = s.admin(s.http.post(s.url(&import))).header("content-type", "application/json").body("{").send();
    let r = r.await.unwrap();
    assert_eq!(r.status(), 400);
    assert_envelope(&assert_documented(&doc, &import, "post", r).await, "malformed_json");
    let r = s.admin(s.http.get(s.url("/api/now/table/incident?sysparm_limit=x"))).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_envelope(&assert_documented(&doc, "/api/now/table/{table}", "get", r).await, "invalid_parameter");

    // The Aggregate API's two shapes and its field error.
    let stats = "/api/now/stats/{table}";
    for (query, grouped) in [
        ("sysparm_count=true&sysparm_avg_fields=priority", false),
        ("sysparm_count=true&sysparm_group_by=priority&sysparm_display_value=all", true),
    ] {
        let r = s.admin(s.http.get(s.url(&format!("/api/now/stats/incident?{query}")))).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let body = assert_documented(&doc, stats, "get", r).await;
        assert_eq!(body["result"].is_array(), grouped, "{body}");
    }
    let r = s.admin(s.http.get(s.url("/api/now/stats/incident?sysparm_group_by=nope"))).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_envelope(&assert_documented(&doc, stats, "get", r).await, "invalid_aggregate");
}
