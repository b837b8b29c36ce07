//! Micro-benchmarks of the CPU-bound steps every inbound row goes through: stage, validate
//! (schema and typed), transform, business rules, and encoded-query parsing.
//! Run with `cargo bench -p sluice-core`.

use std::collections::BTreeMap;

use divan::{Bencher, black_box};
use serde_json::{Map, Value, json};
use sluice_core::integration::Integration;
use sluice_core::rules::{self, Actor};
use sluice_core::tables::{self, Catalog};
use sluice_core::{DateTime, SysId, contract, query, staging, transform, validate};

fn main() {
    divan::main();
}

fn payload() -> Map<String, Value> {
    json!({
        "u_short_description": "Disk usage above 95% on db-prod-01",
        "u_description": "Filesystem /var/lib/pgsql at 96% (threshold 95%)",
        "u_caller": "monitoring.bot",
        "u_category": "database",
        "u_impact": "2",
        "u_urgency": 1,
        "u_correlation_id": "alertmanager:7c1e0f5a3b9d4e21",
        "u_assignment_group": "Database",
        "u_cmdb_ci": "db-prod-01",
        "u_contact_type": "monitoring"
    })
    .as_object()
    .cloned()
    .expect("an object")
}

#[divan::bench]
fn stage_validate_transform(bencher: Bencher) {
    let integration = Integration::builtin_default(&Catalog::builtin());
    let payload = payload();
    bencher.bench(|| {
        let staged = staging::stage(&integration, black_box(&payload));
        validate::validate(&integration, &staged).and_then(|row| transform::plan(&integration, &row))
    });
}

#[divan::bench]
fn schema_and_typed_verdict(bencher: Bencher) {
    let integration = Integration::builtin_default(&Catalog::builtin());
    let payload = payload();
    bencher.bench(|| {
        let staged = staging::stage(&integration, black_box(&payload));
        contract::verdict(&integration, &payload, &staged)
    });
}

#[divan::bench]
fn business_rules_insert(bencher: Bencher) {
    let schema = tables::incident();
    let actor = Actor { user_name: "integration.alerts".into(), sys_id: SysId::generate() };
    let set: BTreeMap<String, String> = [("short_description", "Disk full"), ("impact", "2"), ("urgency", "1")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    bencher.bench(|| rules::insert_incident(&schema, black_box(&set), &actor, DateTime::from_unix(1_714_558_502)));
}

#[divan::bench]
fn parse_encoded_query(bencher: Bencher) {
    let text = "active=true^priority<=2^ORpriority=5^short_descriptionSTARTSWITHdisk^caller_id.user_name=bob\
                ^NQcategoryINdatabase,network^sys_created_on>2024-01-01 00:00:00^ORDERBYDESCsys_created_on";
    bencher.bench(|| query::parse(black_box(text), DateTime::from_unix(1_714_558_502)));
}
