//! The OpenAPI 3.1 document of every route (`GET /api/sluice/v1/openapi.json`), generated from
//! the route catalogue ([`crate::routes::catalog::routes`]) that the router is built from, plus
//! each integration's payload schema (the same JSON Schema as its `schema.json`) under
//! `components.schemas`, referenced from its staging table's import paths.
//!
//! Hand-built rather than derived with utoipa: the integration schemas are only known at run
//! time, and one table drives both the router and this document with no macros to compile. The
//! component schemas of the typed bodies (the error envelope, `crate::error::ErrorEnvelope`; the
//! Import Set answer, `crate::routes::answer`) are checked against bodies serialised from those
//! structs, property for property (`tests.rs`); each route's error responses come from the
//! [`crate::error::ErrorKind`]s its catalogue entry lists.

mod schemas;

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use sluice_core::integration::Integration;

use crate::routes::catalog::{Api, Auth, Route, routes};

/// The component name of an integration's payload schema.
pub fn payload_schema_name(integration: &Integration) -> String {
    format!("payload.{}", integration.definition.staging_table)
}

/// The document, with the payload schemas of `integrations` (those the caller may see).
pub fn document(integrations: &[&Integration]) -> Value {
    let mut paths = Map::new();
    for route in routes() {
        for (path, id) in route.mounts() {
            let item = paths.entry(path.clone()).or_insert_with(|| json!({}));
            item[route.verb.key()] = operation(route, &path, &id);
        }
    }
    let mut components = schemas::components();
    let mut parameters = Map::new();
    for route in routes() {
        for p in path_parameters(route.path) {
            parameters.insert(
                format!("path.{p}"),
                json!({"name": p, "in": "path", "required": true, "description": parameter_description(p),
                    "schema": {"type": "string"}}),
            );
        }
        for q in route.query {
            parameters.insert(
                format!("query.{q}"),
                json!({"name": q, "in": "query", "required": false, "description": parameter_description(q),
                    "schema": {"type": "string"}}),
            );
        }
    }
    for integration in integrations {
        add_integration(&mut paths, &mut components, integration);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "sluice",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Incident intake gateway: ServiceNow-compatible Import Set, Table, Attachment and \
                Batch APIs under /api/now (also /api/now/v1 and /api/now/v2), and sluice's own API under \
                /api/sluice/v1. Errors use ServiceNow's envelope with a stable `code` (docs/errors.md).",
        },
        "tags": tags(),
        "security": [{"basicAuth": []}, {"bearerAuth": []}],
        "paths": paths,
        "components": {
            "schemas": components,
            "parameters": parameters,
            "securitySchemes": {
                "basicAuth": {"type": "http", "scheme": "basic"},
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "An API token of an account"},
                "hookSignature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Sluice-Signature",
                    "description": "Sender hook of an integration with a [signature] table: hex \
                        HMAC-SHA256 of the body as sent (with timestamp_header: of the timestamp, \":\" and the \
                        body) with the integration's secret, in the header its definition names (default \
                        X-Sluice-Signature, e.g. X-Grafana-Alerting-Signature, or X-Hub-Signature-256 with \
                        prefix sha256=). See docs/senders.md, Signed webhooks.",
                },
            },
        },
    })
}

fn tags() -> Value {
    let mut seen = Vec::new();
    for route in routes() {
        if !seen.contains(&route.tag) {
            seen.push(route.tag);
        }
    }
    seen.into_iter().map(|name| json!({"name": name})).collect()
}

fn reference(schema: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{schema}")})
}

/// The path's `{name}` parameters, in order.
pub fn path_parameters(path: &str) -> Vec<&str> {
    path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect()
}

fn parameter_description(name: &str) -> &'static str {
    match name {
        "table" => "A table name (Table API) or an integration's staging table (Import Set API)",
        "sys_id" => "A record's sys_id: 32 lower-case hexadecimal characters",
        "name" => "An integration's or an account's name",
        "id" => "An import set's sys_id or number (import sets), or an API token's id (tokens)",
        "sysparm_query" => "Encoded query, e.g. active=true^priority<=2^ORDERBYDESCsys_created_on",
        "sysparm_count" => "true: count the records (of each group)",
        "sysparm_group_by" => "Comma-separated fields to group by",
        "sysparm_avg_fields" | "sysparm_sum_fields" => "Comma-separated integer fields",
        "sysparm_min_fields" | "sysparm_max_fields" => "Comma-separated fields",
        "sysparm_having" => "Comma-separated aggregate^field^operator^value, e.g. count^priority^>^3",
        "sysparm_order_by" => "Comma-separated group-by fields or aggregates (COUNT, AVG^field), each optionally ^DESC",
        "sysparm_fields" => "Comma-separated fields to answer",
        "sysparm_limit" | "limit" => "Most records per page",
        "sysparm_offset" | "offset" => "Records to skip",
        "sysparm_display_value" => "true, false or all: stored values, display values or both",
        "sysparm_exclude_reference_link" => "true: references without a link",
        "sysparm_suppress_pagination_header" => "true: no Link header",
        "sysparm_no_count" => "true: no X-Total-Count",
        "sysparm_input_display_value" => "true: reference and choice values are given as display values",
        "sysparm_sluice_sync" => "true: transform the rows before answering, with one result per row",
        "multi_import_set_id" => "Add the import set to this multi import set (a sys_id)",
        "state" => "A staging row state: error, skipped, ignored, inserted or updated",
        "window" => "1h, 24h (the default), 7d or all (everything retained)",
        "since" => "Only rows staged at or after this date-time (yyyy-MM-dd HH:mm:ss, UTC)",
        "action" => "Only admin-audit entries of this action, e.g. account.create or integrations.reload",
        _ => "See the API's documentation",
    }
}

/// Content of a body: its own type, and XML too where XML is spoken ([`crate::xml::applies`]).
fn content(content_type: &str, schema: Value, xml: bool) -> Value {
    let mut c = Map::new();
    c.insert(content_type.to_owned(), json!({"schema": schema.clone()}));
    if xml && content_type == "application/json" {
        c.insert("application/xml".to_owned(), json!({"schema": schema}));
    }
    Value::Object(c)
}

/// One response per status of the route's errors, each naming its codes; the codes, in order.
fn error_responses(route: &Route, xml: bool, responses: &mut Map<String, Value>) -> Vec<&'static str> {
    let kinds = route.error_kinds(xml);
    let mut by_status: BTreeMap<u16, Vec<&str>> = BTreeMap::new();
    for kind in &kinds {
        by_status.entry(kind.status().as_u16()).or_default().push(kind.code());
    }
    for (status, codes) in by_status {
        responses.insert(
            status.to_string(),
            json!({
                "description": format!("Error: {}", codes.join(", ")),
                "content": content("application/json", reference("Error"), xml),
            }),
        );
    }
    kinds.iter().map(|k| k.code()).collect()
}

fn operation(route: &Route, path: &str, id: &str) -> Value {
    let xml = crate::xml::applies(path);
    let mut parameters: Vec<Value> = path_parameters(path)
        .into_iter()
        .map(|p| json!({"$ref": format!("#/components/parameters/path.{p}")}))
        .collect();
    parameters.extend(route.query.iter().map(|q| json!({"$ref": format!("#/components/parameters/query.{q}")})));
    let mut responses = Map::new();
    let success = match route.response {
        Some(body) => json!({
            "description": "Success",
            "content": content(body.content_type, reference(body.schema), xml),
        }),
        None => json!({"description": "Success, no body"}),
    };
    responses.insert(route.status.to_string(), success);
    let codes = error_responses(route, xml, &mut responses);
    if route.response.is_some_and(|b| b.schema == "PagerDutyAnswer") {
        // Its refusals are PagerDuty's bodies, as its senders read them.
        for (status, what) in [
            ("400", "invalid event (with errors[]) or Unrecognized object (not JSON)"),
            ("403", "the key's account may not post to its integration"),
            ("413", "the event is too large"),
            ("503", "nothing stored: retry after Retry-After"),
        ] {
            responses.insert(
                status.into(),
                json!({"description": format!("PagerDuty's answer: {what}"),
                    "content": content("application/json", reference("PagerDutyAnswer"), false)}),
            );
        }
        // 429 is also the per-address limit's, answered before the route in sluice's envelope.
        if let Some(Value::String(d)) = responses.get_mut("429").and_then(|r| r.get_mut("description")) {
            d.push_str("; the account's rate or a locked address: PagerDuty's throttle event (a PagerDutyAnswer)");
        }
    }
    let mut op = json!({
        "operationId": id,
        "tags": [route.tag],
        "summary": route.summary,
        "parameters": parameters,
        "responses": responses,
        "x-sluice-auth": match route.auth {
            Auth::Public => "public",
            Auth::Account => "account",
            Auth::Admin => "admin",
            Auth::AccountOrSignature => "account-or-signature",
        },
        "x-sluice-error-codes": codes,
    });
    if let Some(body) = route.request {
        op["requestBody"] = json!({
            "required": body.required,
            "content": content(body.content_type, reference(body.schema), xml),
        });
    }
    if route.auth == Auth::Public {
        op["security"] = json!([]);
    }
    if route.auth == Auth::AccountOrSignature {
        op["security"] = json!([{"basicAuth": []}, {"bearerAuth": []}, {"hookSignature": []}]);
    }
    op
}

/// The integration's payload schema under components, and its staging table's own import paths
/// (single row and insertMultiple) referencing it.
fn add_integration(paths: &mut Map<String, Value>, components: &mut Map<String, Value>, integration: &Integration) {
    let name = payload_schema_name(integration);
    let mut schema = integration.contract.schema().clone();
    if let Value::Object(o) = &mut schema {
        // Under components the document's dialect applies; the schema's own URL is in its
        // description.
        o.remove("$schema");
        o.insert(
            "description".into(),
            json!(format!(
                "Payload of integration {} version {} (also at /api/sluice/v1/integrations/{}/schema.json)",
                integration.name(),
                integration.definition.version,
                integration.name()
            )),
        );
    }
    components.insert(name.clone(), schema);
    let table = &integration.definition.staging_table;
    for route in routes().filter(|r| r.api == Api::Now && r.path.starts_with("/import/{table}")) {
        let Some(body) = route.request else { continue };
        let path = format!("/api/now{}", route.path.replace("{table}", table));
        let mut op = operation(route, &path, &format!("{}_{table}", route.id));
        op["summary"] = json!(format!("{} ({})", route.summary, integration.name()));
        op["x-sluice-route"] = json!(format!("/api/now{}", route.path));
        let request = if body.schema == "ImportRecords" {
            json!({"type": "object", "required": ["records"],
                "properties": {"records": {"type": "array", "minItems": 1, "items": reference(&name)}}})
        } else {
            reference(&name)
        };
        op["requestBody"]["content"] = content(body.content_type, request, true);
        paths.entry(path).or_insert_with(|| json!({}))[route.verb.key()] = op;
    }
}

#[cfg(test)]
mod tests;
