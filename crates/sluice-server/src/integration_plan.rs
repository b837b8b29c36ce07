//! The integration plan: everything the people on both sides of an integration need to agree on,
//! generated from the definition and the running configuration, so it cannot drift from what
//! sluice does. Served as Markdown or HTML (`GET /api/sluice/v1/integrations/{name}/plan`) and
//! printed by `sluice integrations plan NAME`.
//!
//! The plan is built as a small document ([`Block`]s of [`Inline`]s) and rendered twice; both
//! renderings escape every piece of text taken from a definition.

use std::time::Duration;

use serde_json::{Value, json};
use sluice_core::contract;
use sluice_core::incident;
use sluice_core::integration::{FieldType, Integration, OnUnknown};

use crate::error::ApiError;

/// What the plan says about the running service.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Base of the URLs senders use (`https://sluice.example.com`).
    pub base_url: String,
    /// The address and port sluice listens on.
    pub listen: String,
    /// Served over TLS by sluice itself.
    pub https: bool,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
}

impl Settings {
    /// Without a public URL, links are built from the listening address.
    pub fn new(
        public_url: Option<&str>,
        listen: &str,
        https: bool,
        max_body_bytes: usize,
        request_timeout: Duration,
    ) -> Self {
        let scheme = if https { "https" } else { "http" };
        let base_url = match public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("{scheme}://{listen}"),
        };
        Self { base_url, listen: listen.to_owned(), https, max_body_bytes, request_timeout }
    }
}

#[derive(Debug, Clone)]
pub enum Inline {
    Text(String),
    Code(String),
    Strong(String),
}

#[derive(Debug, Clone)]
pub enum Block {
    Heading(u8, String),
    Paragraph(Vec<Inline>),
    List(Vec<Vec<Inline>>),
    Table(Vec<String>, Vec<Vec<Vec<Inline>>>),
    CodeBlock(&'static str, String),
}

fn t(s: impl Into<String>) -> Inline {
    Inline::Text(s.into())
}

fn c(s: impl Into<String>) -> Inline {
    Inline::Code(s.into())
}

fn b(s: impl Into<String>) -> Inline {
    Inline::Strong(s.into())
}

fn para(parts: Vec<Inline>) -> Block {
    Block::Paragraph(parts)
}

fn cell(parts: Vec<Inline>) -> Vec<Inline> {
    parts
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

fn kind_name(kind: FieldType) -> &'static str {
    match kind {
        FieldType::String => "string",
        FieldType::Integer => "integer",
        FieldType::Boolean => "boolean",
        FieldType::Choice => "choice",
        FieldType::DateTime => "date_time",
        FieldType::Reference => "reference",
    }
}

/// Where a ticket goes after sluice: the local incident table only, or on to an upstream.
fn forwarding(integration: &Integration, own_url: &str) -> Block {
    let d = &integration.definition;
    let Some(f) = &integration.forward else {
        return para(vec![
            t("Sender → sluice (staging table "),
            c(d.staging_table.clone()),
            t(", contract, transform) → the "),
            c(d.target_table.clone()),
            t(" table here. Nothing is forwarded."),
        ]);
    };
    Block::List(vec![
        vec![
            b("Path: "),
            t("sender → sluice (staged, validated, transformed, committed: the sender's answer) → outbox → "),
            t(format!("{} upstream", f.kind.as_str())),
        ],
        vec![
            b("Forwarding target: "),
            c(format!("POST {}", f.endpoint())),
            t(format!(", signed in with {}", f.auth.describe())),
        ],
        vec![
            b("Correlation: "),
            t("the upstream field "),
            c(f.correlation_field.clone()),
            t(" carries "),
            c("sluice:{sys_id}"),
            t(
                " of the local record; the upstream coalesces on it, so a repeated delivery updates instead of duplicating. Every request also carries an ",
            ),
            c("Idempotency-Key"),
            t("."),
        ],
        vec![
            b("Fields sent: "),
            t(f.fields.iter().map(|(up, local)| format!("{up} ← {local}")).collect::<Vec<_>>().join(", ")),
        ],
        vec![
            b("Delivery: "),
            t(format!(
                "after the local commit, at most {} at once per node ({} started per second while the node is busy answering senders); network errors, timeouts ({} s), 408, 425, 429 and 5xx are retried with backoff ({} s doubling to {} s, with jitter, honouring Retry-After); other refusals and the {}th failed attempt make the row dead until retried.",
                f.concurrency,
                f.busy_rate,
                f.timeout.as_secs(),
                f.backoff_initial.as_secs(),
                f.backoff_max.as_secs(),
                f.max_attempts
            )),
        ],
        vec![
            b("Upstream ticket: "),
            t("its number and sys_id are written onto the local incident ("),
            c(sluice_core::tables::UPSTREAM_NUMBER),
            t(", "),
            c(sluice_core::tables::UPSTREAM_SYS_ID),
            t("); one record's delivery: "),
            c(format!("GET {own_url}/outbox/{{sys_id}}")),
            t("."),
        ],
    ])
}

/// The plan of one integration as a document.
pub fn document(integration: &Integration, settings: &Settings) -> Vec<Block> {
    let d = &integration.definition;
    let base = &settings.base_url;
    let import_url = format!("{base}/api/now/import/{}", d.staging_table);
    let own_url = format!("{base}/api/sluice/v1/integrations/{}", d.name);
    let mut doc = vec![Block::Heading(1, format!("Integration plan: {}", d.name))];
    if !d.description.is_empty() {
        doc.push(para(vec![t(d.description.clone())]));
    }
    doc.push(Block::List(vec![
        vec![b("Integration: "), c(d.name.clone())],
        vec![b("Version: "), c(d.version.clone())],
        vec![b("Staging table: "), c(d.staging_table.clone())],
        vec![b("Target table: "), c(d.target_table.clone())],
        vec![b("Transform map: "), t(d.transform.name.clone())],
        vec![b("Gateway: "), t(format!("sluice {}", env!("CARGO_PKG_VERSION")))],
    ]));

    doc.push(Block::Heading(2, "Point of contact".into()));
    match &d.contact {
        Some(contact) => {
            let mut items = vec![vec![b("Name: "), t(contact.name.clone())]];
            if let Some(e) = &contact.email {
                items.push(vec![b("E-mail: "), t(e.clone())]);
            }
            if let Some(p) = &contact.phone {
                items.push(vec![b("Phone: "), t(p.clone())]);
            }
            doc.push(Block::List(items));
        }
        None => doc.push(para(vec![t("The definition names no point of contact.")])),
    }

    doc.push(Block::Heading(2, "Endpoints".into()));
    doc.push(Block::List(vec![
        vec![b("Send one row: "), c(format!("POST {import_url}")), t(" (also under "), c("/api/now/v1/import/"), t(" and "), c("/api/now/v2/import/"), t(", as in ServiceNow).")],
        vec![b("Read a row's outcome back: "), c(format!("GET {import_url}/{{staging_sys_id}}"))],
        vec![
            b("Bulk: "),
            t("one row per request. Requests may run concurrently: sluice commits the rows waiting at the same moment in one transaction, each answered only once it is on disk. Send each row's own "),
            c("Idempotency-Key"),
            t(" so a retried request never creates a second ticket."),
        ],
        vec![
            b("SOAP (as ServiceNow's web service import sets): "),
            c(format!("POST {}", crate::soap::endpoint(base, &d.staging_table))),
            t(" with "),
            c("insert"),
            t(", "),
            c("insertMultiple"),
            t(", "),
            c("get"),
            t(" or "),
            c("getRecords"),
            t(", SOAP 1.1 or 1.2; a row that fails its contract on "),
            c("insert"),
            t(" answers a SOAP Fault (docs/soap.md)."),
        ],
        vec![b("WSDL: "), c(format!("GET {base}/{}.do?WSDL", d.staging_table))],
        vec![b("Payload schema (JSON Schema 2020-12): "), c(format!("GET {own_url}/schema.json"))],
        vec![b("Dry run (writes nothing): "), c(format!("POST {own_url}/validate"))],
        vec![b("This plan: "), c(format!("GET {own_url}/plan")), t(" (Markdown, or HTML for "), c("Accept: text/html"), t(")")],
    ]));

    doc.push(Block::Heading(2, "Protocol and content types".into()));
    let mut protocol = vec![
        vec![
            t(if settings.https { "HTTPS (HTTP/1.1 over TLS 1.2 or 1.3)." } else { "HTTP/1.1 without TLS at sluice." }),
            t(" Agreed protocols: "),
            t(if d.protocols.is_empty() { "none listed".to_owned() } else { d.protocols.join(", ") }),
            t("."),
        ],
        vec![
            t("Request body: one JSON object, UTF-8, "),
            c("Content-Type: application/json"),
            t(" ("),
            c("application/*+json"),
            t(" is accepted too; a missing Content-Type is read as JSON), or the same fields as XML elements ("),
            c("Content-Type: application/xml"),
            t(" or "),
            c("text/xml"),
            t("; no "),
            c("<!DOCTYPE>"),
            t("); any other type is refused with 415."),
        ],
        vec![
            t("Answers: "),
            c("application/json"),
            t(" ("),
            c("application/xml"),
            t(" when "),
            c("Accept"),
            t(" prefers it), ServiceNow's Import Set body, "),
            c("201 Created"),
            t(" also when the row itself has errors (see below)."),
        ],
        vec![
            t("Safe retries: an "),
            c("Idempotency-Key"),
            t(" header (1 to 255 visible ASCII characters, unique per row) makes a retry return the first answer ("),
            c("Idempotent-Replayed: true"),
            t(") instead of creating anything."),
        ],
    ];
    if !settings.https {
        protocol.push(vec![t(
            "Without TLS at sluice, put it behind a TLS-terminating proxy before any sender reaches it over an untrusted network: Basic credentials travel in every request.",
        )]);
    }
    doc.push(Block::List(protocol));

    doc.push(Block::Heading(2, "Authentication".into()));
    let accounts = if d.accounts.is_empty() {
        vec![t("Any account with the role "), c("import_set_loader"), t(" may post (no dedicated account is named).")]
    } else {
        let mut parts = vec![t("Dedicated account(s): ")];
        for (i, a) in d.accounts.iter().enumerate() {
            if i > 0 {
                parts.push(t(", "));
            }
            parts.push(c(a.clone()));
        }
        parts.push(t(", each with the role "));
        parts.push(c("import_set_loader"));
        parts.push(t(". Other accounts are refused with 403."));
        parts
    };
    doc.push(Block::List(vec![
        vec![
            t("HTTP Basic authentication on every request ("),
            c("Authorization: Basic ..."),
            t("); no sessions, no cookies."),
        ],
        accounts,
        vec![
            t("Accounts with the role "),
            c("admin"),
            t(" may always post. Accounts are created with "),
            c("sluice account add NAME --role import_set_loader"),
            t("; passwords are stored as argon2id hashes only."),
        ],
        vec![t("A missing or wrong credential is answered 401 with "), c("WWW-Authenticate: Basic realm=\"sluice\"")],
    ]));

    doc.push(Block::Heading(2, "Firewall".into()));
    let port = settings.listen.rsplit(':').next().unwrap_or_default().to_owned();
    let networks = if d.networks.is_empty() {
        vec![t("Allowed source networks: any (the definition restricts none).")]
    } else {
        let mut parts = vec![t("Allowed source networks: ")];
        for (i, n) in d.networks.iter().enumerate() {
            if i > 0 {
                parts.push(t(", "));
            }
            parts.push(c(n.clone()));
        }
        parts.push(t(". Requests from elsewhere are refused with 403 "));
        parts.push(c("source_not_allowed"));
        parts.push(t("."));
        parts
    };
    doc.push(Block::List(vec![
        vec![
            t("sluice listens on "),
            c(settings.listen.clone()),
            t(format!(" (TCP port {port}); senders reach it as ")),
            c(base.clone()),
            t("."),
        ],
        vec![t(format!("TLS: {}.", if settings.https { "yes, terminated by sluice" } else { "no, not at sluice" }))],
        networks,
        vec![t("Direction: inbound only, from the sender to sluice. sluice opens no connection to the sender.")],
    ]));

    doc.push(Block::Heading(2, "Fields".into()));
    doc.push(para(vec![
        t("Each field is read from its place in the posted JSON object (a JSON Pointer). White space around a value is ignored; "),
        c("null"),
        t(" and blank values count as missing; JSON numbers and booleans are taken as their text where the type allows. Keys not listed are ignored (they stay in the stored payload)."),
    ]));
    let mut rows = Vec::new();
    for (i, f) in d.fields.iter().enumerate() {
        let mut rules = Vec::new();
        if let Some(m) = f.max_length {
            rules.push(t(format!("at most {m} characters")));
        }
        if let Some(p) = &f.pattern {
            if !rules.is_empty() {
                rules.push(t("; "));
            }
            rules.push(t("matches "));
            rules.push(c(p.clone()));
        }
        if !f.choices.is_empty() {
            if !rules.is_empty() {
                rules.push(t("; "));
            }
            rules.push(t("one of "));
            for (k, choice) in f.choices.iter().enumerate() {
                if k > 0 {
                    rules.push(t(", "));
                }
                rules.push(c(choice.clone()));
            }
        }
        let required = match (&f.default, f.required) {
            (Some(v), _) => vec![t("no, default "), c(v.clone())],
            (None, true) => vec![b("yes")],
            (None, false) => vec![t("no")],
        };
        rows.push(vec![
            cell(vec![c(f.name.clone())]),
            cell(vec![t(f.label.clone().unwrap_or_default())]),
            cell(vec![c(integration.contract.pointer(i).to_owned())]),
            cell(vec![t(kind_name(f.kind))]),
            cell(required),
            cell(rules),
        ]);
    }
    doc.push(Block::Table(
        ["Field", "Label", "Source (JSON Pointer)", "Type", "Required", "Rules"].map(String::from).to_vec(),
        rows,
    ));
    if let Some(example) = contract::example_payload(integration) {
        doc.push(para(vec![t("A payload that passes:")]));
        doc.push(Block::CodeBlock("json", pretty(&example)));
    }

    doc.push(Block::Heading(2, "Middleware path".into()));
    doc.push(forwarding(integration, &own_url));

    doc.push(Block::Heading(2, "Transform map".into()));
    let t_spec = &d.transform;
    let target = &integration.target;
    let mut rows = Vec::new();
    for m in &t_spec.field_map {
        let label = target.field(&m.target).map(|f| f.label.clone()).unwrap_or_default();
        let mut how = Vec::new();
        if !m.value_map.is_empty() {
            how.push(t("value map (any case): "));
            for (k, (from, to)) in m.value_map.iter().enumerate() {
                if k > 0 {
                    how.push(t(", "));
                }
                how.push(c(format!("{from} → {to}")));
            }
        }
        if let Some(r) = &m.reference {
            let table = target.field(&m.target).and_then(|f| f.reference_table()).unwrap_or_default().to_owned();
            if !how.is_empty() {
                how.push(t("; "));
            }
            how.push(t(format!("reference to {table}: a sys_id, else the first record whose ")));
            how.push(t(r.match_fields.join(" or ")));
            how.push(t(match r.on_unknown {
                OnUnknown::Create => " equals the value (any case); none: the record is created",
                OnUnknown::Ignore => {
                    " equals the value (any case); none: the field stays empty (noted in status_message)"
                }
                OnUnknown::Reject => " equals the value (any case); none: the row fails with unknown_reference",
            }));
        }
        if how.is_empty() {
            how.push(t("copied"));
        }
        rows.push(vec![
            cell(vec![c(m.source.clone())]),
            cell(vec![c(m.target.clone()), t(format!(" ({label})"))]),
            cell(how),
        ]);
    }
    doc.push(para(vec![t(format!("Name: {}. Target table: ", t_spec.name)), c(d.target_table.clone()), t(".")]));
    doc.push(Block::Table(["Source field", "Target field", "How"].map(String::from).to_vec(), rows));
    let mut notes = Vec::new();
    if !t_spec.constants.is_empty() {
        let mut parts = vec![t("Constants on every row: ")];
        for (k, (field, value)) in t_spec.constants.iter().enumerate() {
            if k > 0 {
                parts.push(t(", "));
            }
            parts.push(c(format!("{field} = {value}")));
        }
        notes.push(parts);
    }
    if t_spec.coalesce.is_empty() {
        notes.push(vec![t("No coalesce: every row inserts a new record.")]);
    } else {
        notes.push(vec![
            t("Coalesce on "),
            c(t_spec.coalesce.join(", ")),
            t(format!(
                ": a row whose values match {} record (any case) updates it; otherwise a new record is inserted. A re-send that changes nothing answers ",
                if t_spec.coalesce_active_only { "an active" } else { "a" }
            )),
            c("ignored"),
            t("."),
        ]);
        notes.push(vec![t(if t_spec.create_on_empty_coalesce {
            "A row without coalesce values inserts a new record."
        } else {
            "A row without coalesce values is answered skipped and creates nothing."
        })]);
    }
    notes.push(vec![t(if t_spec.run_business_rules {
        "Business rules run and every change is audited (sys_audit)."
    } else {
        "Changes by this map are not audited (run_business_rules = false); the incident's own rules still apply."
    })]);
    doc.push(Block::List(notes));
    if d.target_table == sluice_core::tables::INCIDENT {
        doc.push(para(vec![
            t("Incident rules on every insert and update: impact and urgency default to 3; priority is computed from them; a new incident gets state 1 (New), category inquiry, opened_at now, opened_by the posting account and a number INC + 7 digits; resolving (state 6) or closing (7) needs close_code and close_notes."),
        ]));
        let mut rows = Vec::new();
        for impact in 1..=3u8 {
            let mut row = vec![cell(vec![t(format!("impact {impact}"))])];
            for urgency in 1..=3u8 {
                row.push(cell(vec![t(incident::priority(impact, urgency).to_string())]));
            }
            rows.push(row);
        }
        doc.push(Block::Table(["Priority", "urgency 1", "urgency 2", "urgency 3"].map(String::from).to_vec(), rows));
    }

    doc.push(Block::Heading(2, "Answers and errors".into()));
    doc.push(para(vec![t("A row that was processed is answered 201 with one result:")]));
    let example_id = "01a21f2c6e1a4b7f9d3e5c8a2b4d6f10";
    doc.push(Block::CodeBlock(
        "json",
        pretty(&json!({
            "import_set": "ISET0010001",
            "staging_table": d.staging_table,
            "result": [{
                "transform_map": t_spec.name,
                "table": d.target_table,
                "display_name": target.display_field,
                "display_value": "INC0010001",
                "record_link": format!("{base}/api/now/table/{}/{example_id}", d.target_table),
                "status": "inserted",
                "sys_id": example_id,
                "staging_sys_id": "01a21f2c6e0f83d2c4b1a9e7f5d3c2b1",
            }]
        })),
    ));
    doc.push(para(vec![
        t("status is one of "),
        c("inserted"),
        t(", "),
        c("updated"),
        t(", "),
        c("ignored"),
        t(" (nothing changed), "),
        c("skipped"),
        t(" (no coalesce values) or "),
        c("error"),
        t(". A row with errors is still answered 201: it is kept in the staging table with every problem and creates nothing. Each error has a stable code, the staging field, the value's place in the payload ("),
        c("path"),
        t(") and a message:"),
    ]));
    let errors = row_error_example(integration);
    if let Some(errors) = errors {
        doc.push(Block::CodeBlock("json", pretty(&errors)));
    }
    let mut rows = Vec::new();
    for (code, meaning, fields) in row_error_catalogue(integration) {
        let mut names = Vec::new();
        for (k, f) in fields.iter().enumerate() {
            if k > 0 {
                names.push(t(", "));
            }
            names.push(c(f.clone()));
        }
        if names.is_empty() {
            names.push(t("—"));
        }
        rows.push(vec![cell(vec![c(code.as_str())]), cell(vec![t(meaning)]), cell(names)]);
    }
    doc.push(Block::Table(["Code", "Meaning", "Fields here"].map(String::from).to_vec(), rows));
    doc.push(para(vec![
        t("Requests that cannot be processed are answered with an HTTP error in ServiceNow's envelope, with a stable "),
        c("code"),
        t(" and the "),
        c("request_id"),
        t(" (also in "),
        c("X-Request-Id"),
        t("; quote it when reporting a problem). Nothing is stored:"),
    ]));
    let catalogue = ApiError::sender_catalogue(settings.max_body_bytes);
    let mut rows = Vec::new();
    for e in &catalogue {
        let body = e.body("");
        let message = body["error"]["message"].as_str().unwrap_or_default().to_owned();
        let detail = body["error"]["detail"].as_str().unwrap_or_default().to_owned();
        rows.push(vec![
            cell(vec![t(e.status().as_u16().to_string())]),
            cell(vec![c(e.code())]),
            cell(vec![t(message)]),
            cell(vec![t(detail)]),
        ]);
    }
    doc.push(Block::Table(["HTTP", "code", "message", "detail"].map(String::from).to_vec(), rows));
    doc.push(para(vec![t("For example (401):")]));
    doc.push(Block::CodeBlock("json", pretty(&ApiError::Unauthenticated.body("fb51c62d17096695"))));
    doc.push(para(vec![
        t("Retry on 503 "),
        c("busy"),
        t(" (after "),
        c("Retry-After"),
        t("), 408 and 500, with the same Idempotency-Key; do not retry other 4xx answers unchanged."),
    ]));

    doc.push(Block::Heading(2, "Throughput limits".into()));
    doc.push(Block::List(vec![
        vec![
            t(format!("Body size limit: {} bytes per request (413 ", settings.max_body_bytes)),
            c("body_too_large"),
            t(" above)."),
        ],
        vec![
            t(format!("Request timeout: {} s (408 ", settings.request_timeout.as_secs())),
            c("request_timeout"),
            t(" after)."),
        ],
        vec![
            t("Writes wait in one queue; when it is full the answer is 503 "),
            c("busy"),
            t(" with "),
            c("Retry-After: 1"),
            t("."),
        ],
        vec![t("One row per request; every answered row is durable (committed to disk before the answer).")],
    ]));

    doc.push(Block::Heading(2, "Version".into()));
    doc.push(para(vec![
        t("Contract version "),
        c(d.version.clone()),
        t(". Every staged row records the version that processed it ("),
        c("sys_integration_version"),
        t("). A new version changes this plan and the schema; agree on it before it is deployed."),
    ]));
    doc
}

// ---- Rendering ----------------------------------------------------------------------------

mod errors;
mod render;

use errors::{row_error_catalogue, row_error_example};

pub use render::{html, markdown, prefers_html};
