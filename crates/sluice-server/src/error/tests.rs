use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};
use sluice_core::integration::DefinitionProblem;
use sluice_core::validate::{ErrorCode, FieldError};

use super::*;
use crate::throttle::{Rate, Refusal};

const ERRORS_MD: &str = include_str!("../../../../docs/errors.md");

/// One error of every kind, each with every optional part filled in (the OpenAPI tests validate
/// their bodies). A new kind fails [`every_kind_is_answered`] until it has one here.
pub(crate) fn one_of_each() -> Vec<ApiError> {
    let field = FieldError {
        code: ErrorCode::DataPolicy,
        field: "close_code".into(),
        message: "is mandatory when the state is Resolved or Closed".into(),
        path: Some("/close_code".into()),
    };
    let problem = DefinitionProblem { file: "a.toml".into(), key: "staging_table".into(), message: "missing".into() };
    let refusal = Refusal {
        scope: "account",
        rate: Rate { per_second: 2.0, burst: 3.0 },
        retry_after: Duration::from_millis(1500),
    };
    vec![
        ApiError::Unauthenticated,
        ApiError::SignatureMissing("X-Grafana-Alerting-Signature".into()),
        ApiError::SignatureInvalid("X-Hub-Signature-256".into()),
        ApiError::SignatureStale { header: "X-Grafana-Alerting-Timestamp".into(), tolerance_seconds: 300 },
        ApiError::forbidden("ACL Exception Insert Failed due to security constraints"),
        ApiError::SourceNotAllowed,
        ApiError::NetworkForbidden,
        ApiError::HeadersTooLarge(32768),
        ApiError::InvalidTable("u_nope".into()),
        ApiError::RecordNotFound,
        ApiError::NoSuchResource,
        ApiError::MethodNotAllowed,
        ApiError::MalformedJson("EOF while parsing".into()),
        ApiError::BodyNotObject,
        ApiError::MalformedXml("unbalanced".into()),
        ApiError::XmlDtd,
        ApiError::BodyTooLarge(1024),
        ApiError::UnsupportedMediaType,
        ApiError::Timeout,
        ApiError::DataPolicy { detail: "Data Policy Exception".into(), errors: vec![field.clone()] },
        ApiError::InvalidFields(vec![field]),
        ApiError::InvalidDefinitions(vec![problem]),
        ApiError::Busy,
        ApiError::StoreUnavailable("connection refused".into()),
        ApiError::RateLimited(refusal),
        ApiError::InvalidIdempotencyKey,
        ApiError::KeyReused,
        ApiError::InvalidAccount("unknown role root".into()),
        ApiError::AccountExists("account eve already exists".into()),
        ApiError::LastAdmin,
        ApiError::JsonTooDeep(32),
        ApiError::TooManyFields(1000),
        ApiError::QueryTooLong(8192),
        ApiError::InvalidRecords("records[3] is not an object".into()),
        ApiError::TooManyRecords(10_000),
        ApiError::BatchAnswerTooLarge { budget: 10_485_760, answered: 200 },
        ApiError::InvalidParameter("limit is not a whole number".into()),
        ApiError::InvalidQuery(
            sluice_core::query::parse("a~1", sluice_core::DateTime::from_unix(0)).expect_err("an unknown operator"),
        ),
        ApiError::InvalidAggregate(sluice_store::AggregateProblem {
            parameter: "sysparm_avg_fields",
            field: "short_description".into(),
            problem: "avg(short_description) needs a number field; short_description is not one".into(),
        }),
        ApiError::MissingParameter("table_sys_id"),
        ApiError::AttachmentsNotAllowed("sys_audit".into()),
        ApiError::ParentNotFound { table: "incident".into(), sys_id: "0123456789abcdef0123456789abcdef".into() },
        ApiError::AttachmentTooLarge(26_214_400),
        ApiError::MalformedMultipart("the file part must be the last part".into()),
        ApiError::Internal("disk on fire".into()),
    ]
}

#[test]
fn every_kind_is_answered() {
    let answered: BTreeSet<ErrorKind> = one_of_each().iter().map(ApiError::kind).collect();
    let all: BTreeSet<ErrorKind> = ErrorKind::ALL.iter().copied().collect();
    assert_eq!(answered, all, "a kind no error answers, or one missing from one_of_each");
    let codes: BTreeSet<&str> = ErrorKind::ALL.iter().map(|k| k.code()).collect();
    assert_eq!(codes.len(), ErrorKind::ALL.len(), "one kind per code");
    for kind in ErrorKind::ALL {
        assert_eq!(ErrorKind::from_code(kind.code()), Some(*kind));
        assert!(kind.status().is_client_error() || kind.status().is_server_error(), "{kind}");
    }
}

/// One row of the HTTP error table of docs/errors.md.
struct DocRow<'a> {
    status: &'a str,
    anchor: &'a str,
    code: &'a str,
    message: &'a str,
}

fn doc_rows() -> Vec<DocRow<'static>> {
    let section = ERRORS_MD.split("## HTTP errors").nth(1).expect("an HTTP errors section");
    let section = section.split("\n## ").next().unwrap_or_default();
    let mut rows = Vec::new();
    for line in section.lines().filter(|l| l.starts_with("| ") && l.as_bytes().get(2).is_some_and(u8::is_ascii_digit)) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (status, code_cell, message) = (cells[1], cells[2], cells[3]);
        let anchor = code_cell
            .strip_prefix("<a id=\"")
            .and_then(|rest| rest.split_once("\"></a>"))
            .unwrap_or_else(|| panic!("{line}: the code cell starts with its <a id=\"…\"></a> anchor"));
        let code = anchor.1.trim_matches('`');
        rows.push(DocRow { status, anchor: anchor.0, code, message });
    }
    rows
}

#[test]
fn the_error_catalogue_documents_every_kind_as_the_table_declares_it() {
    let rows = doc_rows();
    let documented: BTreeSet<&str> = rows.iter().map(|r| r.code).collect();
    let declared: BTreeSet<&str> = ErrorKind::ALL.iter().map(|k| k.code()).collect();
    assert_eq!(documented, declared, "docs/errors.md and the kind table list different codes");
    assert_eq!(rows.len(), declared.len(), "a code documented twice");
    for row in &rows {
        let kind = ErrorKind::from_code(row.code).unwrap();
        assert_eq!(row.status, kind.status().as_str(), "{}", row.code);
        assert_eq!(row.message, kind.message(), "{}", row.code);
        assert_eq!(row.anchor, row.code, "the anchor of {}", row.code);
        assert_eq!(kind.link(), format!("docs/errors.md#{}", row.anchor));
    }
    // Each anchor once in the whole file, so links land on the row.
    for kind in ErrorKind::ALL {
        let anchor = format!("<a id=\"{}\"></a>", kind.code());
        assert_eq!(ERRORS_MD.matches(&anchor).count(), 1, "{anchor}");
    }
}

#[test]
fn bodies_keep_servicenow_texts_and_carry_the_link() {
    let body = ApiError::Unauthenticated.body("fb51c62d17096695");
    assert_eq!(
        body,
        json!({"error": {
            "message": "User Not Authenticated",
            "detail": "Required to provide Auth information",
            "code": "unauthenticated",
            "request_id": "fb51c62d17096695",
            "link": "docs/errors.md#unauthenticated",
        }, "status": "failure"})
    );
    let keys: Vec<&String> = body["error"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["message", "detail", "code", "request_id", "link"], "ServiceNow's fields first, in order");

    let body = ApiError::InvalidTable("u_nope".into()).body("r");
    assert_eq!((&body["error"]["message"], &body["error"]["detail"]), (&json!("Invalid table u_nope"), &Value::Null));
    let read = ApiError::Forbidden {
        message: "Insufficient rights to query records",
        detail: "ACL Exception Read Failed due to security constraints".into(),
    };
    assert_eq!(read.body("r")["error"]["message"], "Insufficient rights to query records");
    assert_eq!(ApiError::forbidden("x").body("r")["error"]["message"], "Operation Failed");

    let internal = ApiError::Internal("disk on fire at /var/lib/sluice".into()).body("r");
    assert_eq!(internal["error"]["message"], "Internal server error");
    assert!(!internal.to_string().contains("disk on fire"), "no internal cause to clients: {internal}");

    for e in one_of_each() {
        let body = e.body("r");
        assert_eq!(body["status"], "failure");
        assert_eq!(body["error"]["code"], e.code());
        assert_eq!(body["error"]["link"], e.kind().link());
        assert!(body["error"]["message"].is_string() && body["error"].get("detail").is_some(), "{body}");
    }
    let limited = one_of_each().into_iter().find(|e| matches!(e, ApiError::RateLimited(_))).unwrap();
    assert_eq!(
        limited.body("r")["error"]["limit"],
        json!({"scope": "account", "requests_per_second": 2.0, "burst": 3.0, "retry_after_ms": 1500})
    );
}

#[test]
fn store_errors_map_to_kinds() {
    assert_eq!(ApiError::from(StoreError::Busy).kind(), ErrorKind::Busy);
    assert_eq!(ApiError::from(StoreError::KeyReused).kind(), ErrorKind::IdempotencyKeyReused);
    assert_eq!(ApiError::from(StoreError::LastAdmin).kind(), ErrorKind::LastAdmin);
    assert_eq!(ApiError::from(StoreError::Closed).kind(), ErrorKind::Internal);
}
