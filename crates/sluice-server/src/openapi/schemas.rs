//! The component schemas of the request and response bodies the route catalogue names. They
//! describe the bodies' documented fields; answers may carry more. `Error` (with
//! `DefinitionError`, `RateLimit`), `ImportSetResponse` and `ImportResult` are the typed bodies'
//! (`error::ErrorEnvelope`, `routes::answer`): `openapi::tests` serialises real ones and checks
//! that they validate and that the properties and required fields are exactly theirs.

use serde_json::{Map, Value, json};
use sluice_core::staging::RowState;

use crate::error::ErrorKind;

fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn object(properties: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": properties, "required": required})
}

/// `{"result": <schema>}`: how most answers are wrapped.
fn result(schema: Value) -> Value {
    object(json!({"result": schema}), &["result"])
}

fn list_of(name: &str) -> Value {
    result(json!({"type": "array", "items": r(name)}))
}

const STR: &str = "string";

fn s() -> Value {
    json!({"type": STR})
}

fn int() -> Value {
    json!({"type": "integer", "minimum": 0})
}

fn boolean() -> Value {
    json!({"type": "boolean"})
}

fn strings() -> Value {
    json!({"type": "array", "items": s()})
}

fn row_state() -> Value {
    json!({"type": STR, "enum": RowState::ALL.map(RowState::as_str)})
}

/// A `sys_attachment` record as the Attachment API answers it: every value a string.
fn attachment() -> Value {
    let fields = sluice_core::tables::sys_attachment();
    let mut properties: Map<String, Value> = fields.visible_fields().map(|f| (f.name.clone(), s())).collect();
    properties.insert("download_link".into(), s());
    let required: Vec<&str> = properties.keys().map(String::as_str).collect();
    object(Value::Object(properties.clone()), &required)
}

pub fn components() -> Map<String, Value> {
    let mut c = Map::new();
    let mut add = |name: &str, schema: Value| {
        c.insert(name.to_owned(), schema);
    };
    let codes: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.code()).collect();
    add(
        "Error",
        object(
            json!({
                "error": object(json!({
                    "message": s(), "detail": {"type": [STR, "null"]},
                    "code": {"type": STR, "enum": codes, "description": "The stable code (docs/errors.md)"},
                    "request_id": s(),
                    "link": {"type": STR, "description": "The code's entry: docs/errors.md#{code}"},
                    "errors": {"type": "array", "items": {"anyOf": [r("FieldError"), r("DefinitionError")]}},
                    "limit": r("RateLimit"),
                }), &["message", "detail", "code", "request_id", "link"]),
                "status": {"const": "failure"},
            }),
            &["error", "status"],
        ),
    );
    add(
        "DefinitionError",
        object(
            json!({"code": {"const": ErrorKind::InvalidDefinition.code()}, "file": s(), "key": s(), "message": s()}),
            &["code", "file", "key", "message"],
        ),
    );
    add(
        "RateLimit",
        object(
            json!({"scope": {"type": STR, "enum": ["ip", "account", "login_account", "login_address"]},
                "requests_per_second": {"type": "number"}, "burst": {"type": "number"}, "retry_after_ms": int()}),
            &["scope", "requests_per_second", "burst", "retry_after_ms"],
        ),
    );
    add(
        "FieldError",
        object(
            json!({"code": s(), "field": s(), "message": s(), "path": {"type": STR, "description": "JSON Pointer into the payload"}}),
            &["code", "field", "message"],
        ),
    );
    add(
        "ImportRow",
        json!({"type": "object", "description": "One payload: field names (or nested objects read through the integration's JSON Pointer paths) and values",
            "additionalProperties": true}),
    );
    add(
        "ImportRecords",
        object(json!({"records": {"type": "array", "minItems": 1, "items": r("ImportRow")}}), &["records"]),
    );
    add(
        "ImportResult",
        object(
            json!({
                "transform_map": s(), "table": s(), "display_name": s(), "display_value": s(),
                "record_link": s(), "status": row_state(), "sys_id": s(), "staging_sys_id": s(),
                "status_message": s(), "error_message": s(),
                "errors": {"type": "array", "items": r("FieldError")},
            }),
            &["transform_map", "table", "status", "sys_id", "staging_sys_id"],
        ),
    );
    add(
        "ImportSetResponse",
        object(
            json!({"import_set": s(), "staging_table": s(), "result": {"type": "array", "items": r("ImportResult")}}),
            &["import_set", "staging_table", "result"],
        ),
    );
    add(
        "ImportRowShow",
        object(
            json!({"import_set": s(), "staging_table": s(), "result": {"type": "array", "items": r("ImportResult")},
                "row": r("Record"), "payload": s()}),
            &["import_set", "staging_table", "result", "row"],
        ),
    );
    add(
        "SenderBody",
        json!({"description": "The integration's format: Alertmanager's webhook payload (version \"4\"; one row per alert) or, for generic-json, one JSON object or an array of objects (one row each)",
            "oneOf": [{"type": "object", "additionalProperties": true},
                      {"type": "array", "minItems": 1, "items": {"type": "object", "additionalProperties": true}}]}),
    );
    add(
        "SenderAnswer",
        object(
            json!({"integration": s(), "format": s(), "import_set": s(), "staging_table": s(),
                "truncated_alerts": {"type": "integer", "description": "Alertmanager's truncatedAlerts (alerts left out of the body)"},
                "result": {"type": "array", "items": r("ImportResult"), "description": "One per row, in the body's order"}}),
            &["integration", "format", "import_set", "staging_table", "truncated_alerts", "result"],
        ),
    );
    add(
        "PagerDutyEvent",
        object(
            json!({
                "routing_key": {"type": STR, "minLength": 32, "maxLength": 32, "description": "A sluice routing key (POST /api/sluice/v1/accounts/{name}/tokens with integration)"},
                "event_action": {"type": STR, "enum": ["trigger", "acknowledge", "resolve"]},
                "dedup_key": {"type": STR, "maxLength": 255, "description": "Required unless trigger; generated and answered when absent"},
                "payload": object(json!({
                    "summary": {"type": STR, "maxLength": 1024}, "source": s(),
                    "severity": {"type": STR, "enum": ["critical", "error", "warning", "info"]},
                    "timestamp": s(), "component": s(), "group": s(), "class": s(),
                    "custom_details": {"type": "object"},
                }), &["summary", "source", "severity"]),
                "client": s(), "client_url": s(),
                "links": {"type": "array", "items": object(json!({"href": s(), "text": s()}), &["href"])},
                "images": {"type": "array", "items": object(json!({"src": s(), "href": s(), "alt": s()}), &["src"])},
            }),
            &["routing_key", "event_action"],
        ),
    );
    add(
        "PagerDutyAnswer",
        object(
            json!({"status": {"type": STR, "description": "success; or invalid event, Unrecognized object, throttle event, unavailable"},
                "message": s(), "dedup_key": s(),
                "errors": {"type": "array", "items": s(), "description": "Refusals only: each problem, naming the field"}}),
            &["status", "message"],
        ),
    );
    add(
        "BulkAccepted",
        object(
            json!({"import_set_id": s(), "multi_import_set_id": s(),
                "import_set": {"type": STR, "description": "sysparm_sluice_sync=true only"},
                "staging_table": {"type": STR, "description": "sysparm_sluice_sync=true only"},
                "result": {"type": "array", "items": r("ImportResult"), "description": "sysparm_sluice_sync=true only"}}),
            &["import_set_id", "multi_import_set_id"],
        ),
    );
    add(
        "ImportSetProgress",
        result(object(
            json!({
                "import_set_id": s(), "number": s(), "multi_import_set_id": s(), "staging_table": s(),
                "integration": s(), "mode": s(), "state": s(), "created_on": s(), "complete": boolean(),
                "total": int(), "pending": int(), "inserted": int(), "updated": int(), "ignored": int(),
                "skipped": int(), "error": int(), "limit": int(), "offset": int(),
                "request_body": {"type": "string", "description": "A sender hook's request body exactly as received (absent for other import sets)"},
                "rows": {"type": "array", "items": object(json!({
                    "staging_sys_id": s(), "row": int(), "state": row_state(), "integration_version": s(),
                    "target_table": s(), "target_sys_id": s(), "display_value": s(), "record_link": s(),
                    "status_message": s(), "error_message": s(), "errors": {"type": "array", "items": r("FieldError")},
                }), &["staging_sys_id", "state"])},
            }),
            &["import_set_id", "number", "complete", "total", "rows"],
        )),
    );
    add(
        "Record",
        json!({"type": "object", "description": "Field names and values in ServiceNow's wire form (strings; references as {link, value}; with sysparm_display_value=all, {display_value, value})",
            "additionalProperties": true}),
    );
    add(
        "RecordInput",
        json!({"type": "object", "description": "Field names and values to set", "additionalProperties": true}),
    );
    add("RecordResponse", result(r("Record")));
    add("RecordList", list_of("Record"));
    let by_field = json!({"type": "object", "description": "Field name: value (a string; \"\" over no values)",
        "additionalProperties": s()});
    add(
        "AggregateStats",
        object(
            json!({"count": s(), "avg": by_field.clone(), "min": by_field.clone(), "max": by_field.clone(), "sum": by_field}),
            &[],
        ),
    );
    add(
        "AggregateGroup",
        object(
            json!({"stats": r("AggregateStats"), "groupby_fields": {"type": "array", "items": object(
                json!({"field": s(), "value": s(), "display_value": s()}), &["field", "value"])}}),
            &["stats", "groupby_fields"],
        ),
    );
    add(
        "AggregateResponse",
        result(json!({"oneOf": [
            object(json!({"stats": r("AggregateStats")}), &["stats"]),
            {"type": "array", "items": r("AggregateGroup")},
        ]})),
    );
    add(
        "BatchRequest",
        object(
            json!({"batch_request_id": s(), "rest_requests": {"type": "array", "items": object(json!({
                "id": s(), "method": s(), "url": s(),
                "headers": {"type": "array", "items": object(json!({"name": s(), "value": s()}), &["name", "value"])},
                "body": {"type": STR, "description": "base64"}, "exclude_response_headers": boolean(),
            }), &["id", "method", "url"])}}),
            &["rest_requests"],
        ),
    );
    add(
        "BatchResponse",
        object(
            json!({"batch_request_id": s(), "serviced_requests": {"type": "array", "items": object(json!({
                "id": s(), "status_code": int(), "status_text": s(), "headers": {"type": "array"},
                "body": {"type": STR, "description": "base64"}, "execution_time": int(), "error_message": s(),
            }), &["id", "status_code", "body"])}, "unserviced_requests": strings()}),
            &["serviced_requests", "unserviced_requests"],
        ),
    );
    add("Attachment", attachment());
    add("AttachmentResponse", result(r("Attachment")));
    add("AttachmentList", list_of("Attachment"));
    add(
        "AttachmentForm",
        object(
            json!({"table_name": s(), "table_sys_id": s(),
                "uploadFile": {"type": STR, "format": "binary", "description": "The file part, last; its filename is the attachment's"}}),
            &["table_name", "table_sys_id"],
        ),
    );
    add("Binary", json!({"type": STR, "format": "binary"}));
    add("Health", object(json!({"status": s()}), &["status"]));
    add("Text", s());
    add("JsonSchema", json!({"type": "object", "description": "A JSON Schema (draft 2020-12) document"}));
    add("OpenApiDocument", json!({"type": "object", "description": "An OpenAPI 3.1 document"}));
    add(
        "Integration",
        object(
            json!({
                "name": s(), "description": s(), "version": s(), "staging_table": s(), "target_table": s(),
                "endpoint": s(), "transform_map": s(), "contact": {"type": ["object", "null"]},
                "accounts": strings(), "networks": strings(), "protocols": strings(),
                "fields": {"type": "array", "items": {"type": "object"}},
            }),
            &["name", "version", "staging_table", "target_table", "endpoint"],
        ),
    );
    add("IntegrationList", list_of("Integration"));
    add("IntegrationResponse", result(r("Integration")));
    add(
        "ReloadResult",
        result(object(
            json!({"reloaded": boolean(), "integrations": {"type": "array", "items": r("Integration")}}),
            &["reloaded"],
        )),
    );
    add(
        "DryRunResponse",
        result(
            json!({"type": "object", "description": "What would happen: the action (insert or update of which record) and the resulting values, or every error"}),
        ),
    );
    add("ReplayRequest", object(json!({"state": s(), "since": s()}), &[]));
    add(
        "ReplayResponse",
        result(object(
            json!({"integration": s(), "version": s(), "state": s(), "since": {"type": [STR, "null"]},
                "matched": int(), "replayed": int(), "not_replayed": int(), "inserted": int(), "updated": int(),
                "ignored": int(), "skipped": int(), "error": int()}),
            &["integration", "matched", "replayed"],
        )),
    );
    add(
        "OutboxDelivery",
        object(
            json!({"record_sys_id": s(), "table": s(), "staging_sys_id": s(), "state": {"type": STR, "enum": ["pending", "delivered", "dead"]},
                "version": int(), "attempts": int(), "next_attempt": {"type": [STR, "null"]}, "last_error": s(),
                "upstream_number": s(), "upstream_sys_id": s(), "queued_on": s(), "updated_on": s()}),
            &["record_sys_id", "state", "attempts", "upstream_number", "upstream_sys_id"],
        ),
    );
    add(
        "OutboxResponse",
        result(object(
            json!({"integration": s(), "upstream": object(json!({"kind": s(), "endpoint": s()}), &["kind", "endpoint"]),
                "counts": object(json!({"pending": int(), "delivered": int(), "dead": int(),
                    "oldest_pending_age_seconds": {"type": ["integer", "null"]}}), &["pending", "delivered", "dead"]),
                "deliveries": {"type": "array", "items": r("OutboxDelivery")}}),
            &["integration", "counts", "deliveries"],
        )),
    );
    add("OutboxDeliveryResponse", result(r("OutboxDelivery")));
    add("OutboxRetryRequest", object(json!({"record_sys_id": s()}), &[]));
    add(
        "OutboxRetryResponse",
        result(object(
            json!({"integration": s(), "record_sys_id": {"type": [STR, "null"]}, "queued": int()}),
            &["integration", "queued"],
        )),
    );
    add(
        "PurgeResponse",
        result(object(
            json!({"retention_days": int(), "before": s(), "rows": int(), "import_sets": int()}),
            &["rows", "import_sets"],
        )),
    );
    add(
        "Submission",
        object(
            json!({"received": s(), "integration": s(), "staging_table": s(), "staging_sys_id": s(),
                "state": row_state(), "target_sys_id": s(), "number": s(), "status_message": s(),
                "errors": {"type": "array", "items": r("FieldError")}, "integration_version": s()}),
            &["received", "integration", "staging_sys_id", "state"],
        ),
    );
    add("SubmissionList", list_of("Submission"));
    let counters = json!({
        "received": int(), "inserted": int(), "updated": int(), "ignored": int(), "skipped": int(),
        "error": int(), "errors_by_code": {"type": "object", "additionalProperties": int()},
        "unauthorized": int(), "forbidden": int(), "throttled": int(),
        "latency_ms": {"type": "object", "properties": {"p50": {"type": ["number", "null"]},
            "p90": {"type": ["number", "null"]}, "p99": {"type": ["number", "null"]}}},
        "first_seen": {"type": [STR, "null"]}, "last_seen": {"type": [STR, "null"]},
    });
    add("StatsCounters", object(counters.clone(), &["received", "error", "unauthorized", "forbidden", "throttled"]));
    let with = |name_key: &str, by: &str| {
        let mut properties = counters.clone();
        properties[name_key] = s();
        properties["window"] = s();
        properties[by] = json!({"type": "object", "additionalProperties": r("StatsCounters")});
        result(object(properties, &[name_key, "window", "received"]))
    };
    add("AccountStats", with("account", "integrations"));
    let mut integration_stats = with("integration", "accounts");
    let latency = json!({"type": "object", "properties": {"p50": {"type": ["number", "null"]},
        "p90": {"type": ["number", "null"]}, "p99": {"type": ["number", "null"]}}});
    integration_stats["properties"]["result"]["properties"]["forwarding"] = object(
        json!({"delivered": int(), "retried": int(), "dead_lettered": int(), "delivery_latency_ms": latency,
            "outbox": {"type": "object", "description": "The outbox now: pending, delivered, dead, oldest_pending_age_seconds"}}),
        &["delivered", "retried", "dead_lettered", "outbox"],
    );
    add("IntegrationStats", integration_stats);
    add(
        "Token",
        object(
            json!({"id": s(), "label": s(), "created_on": s(), "created_by": s(),
                "token": {"type": STR, "description": "The secret: only in the answer that creates it"}}),
            &["id", "label", "created_on"],
        ),
    );
    add(
        "Account",
        object(
            json!({"name": s(), "sys_id": s(), "roles": strings(), "active": boolean(), "web_service_only": boolean(),
                "networks": strings(), "rate": r("AccountRate"),
                "password": {"type": STR, "description": "A generated password: only in the answer that sets it"},
                "tokens": {"type": "array", "items": r("Token")}}),
            &["name", "sys_id", "roles", "active"],
        ),
    );
    add("AccountList", list_of("Account"));
    add("AccountResponse", result(r("Account")));
    add(
        "NewAccount",
        json!({"type": "object", "additionalProperties": false, "required": ["name", "roles"],
            "properties": {"name": s(), "roles": strings(), "password": s(), "web_service_only": boolean(),
                "networks": strings(), "rate": r("AccountRate")}}),
    );
    add(
        "AccountUpdate",
        json!({"type": "object", "additionalProperties": false,
            "properties": {"active": boolean(), "roles": strings(), "web_service_only": boolean(),
                "networks": strings(), "rate": r("AccountRate")}}),
    );
    add(
        "AccountRate",
        json!({"type": ["object", "null"], "description": "The account's own limit; null: the server's default",
            "required": ["per_second", "burst"],
            "properties": {"per_second": {"type": "number"}, "burst": {"type": "number"}}}),
    );
    add("PasswordRotation", json!({"type": "object", "additionalProperties": false, "properties": {"password": s()}}));
    add("NewToken", json!({"type": "object", "additionalProperties": false, "properties": {"label": s()}}));
    add("TokenList", list_of("Token"));
    add("TokenResponse", result(r("Token")));
    add(
        "AdminAuditEntry",
        object(
            json!({"id": int(), "created_on": s(), "actor": s(), "action": s(), "target": s(), "details": {}}),
            &["id", "created_on", "actor", "action", "target"],
        ),
    );
    add("AdminAuditList", list_of("AdminAuditEntry"));
    c
}
