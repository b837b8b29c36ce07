//! Encoded queries through the store: a fixed data set imported through the [`Store`] trait (the
//! built-in integration, as `contract.rs` does), then a table of `sysparm_query` strings, each
//! with exactly the rows, in order, it must return. Then hostile input: SQL in field names and
//! values, LIKE wildcards, NUL bytes, backslashes, unicode, and very large queries.
//!
//! The checks are generic over the store: SQLite and PostgreSQL run the same table.

use std::sync::Arc;

use serde_json::json;
use sluice_core::account::Role;
use sluice_core::integration::Integration;
use sluice_core::query::{self, Clause, Condition, EncodedQuery, FieldPath, Group, Operator, OrderBy};
use sluice_core::rules::Actor;
use sluice_core::schema::TableSchema;
use sluice_core::staging::RowState;
use sluice_core::tables::{self, Catalog};
use sluice_core::{DateTime, Record, SysId, staging, transform, validate};
use sluice_store::{ImportJob, ListQuery, NewAccount, Store};

// ---------------------------------------------------------------------------------------------
// The data set
// ---------------------------------------------------------------------------------------------

/// 2024-05-01 10:15:02 UTC plus `secs`.
fn at(secs: i64) -> DateTime {
    DateTime::from_unix(1_714_558_502 + secs)
}

/// Incident `n` (1-based) is created at `created(n)`, one minute apart.
fn created(n: usize) -> DateTime {
    at(n as i64 * 60)
}

struct Row {
    short_description: &'static str,
    category: &'static str,
    impact: &'static str,
    urgency: &'static str,
    correlation_id: &'static str,
    caller: &'static str,
    description: &'static str,
}

const fn row(
    short_description: &'static str,
    category: &'static str,
    impact: &'static str,
    urgency: &'static str,
    correlation_id: &'static str,
    caller: &'static str,
    description: &'static str,
) -> Row {
    Row { short_description, category, impact, urgency, correlation_id, caller, description }
}

/// Incident n is `INC00100nn`, n = index + 1. Priority follows impact × urgency:
/// 1: p1, 2: p3, 3: p2, 4: p5, 5: p2, 6: p4, 7: p4, 8: p3, 9: p5, 10: p3, 11: p3, 12: p1.
const DATA: &[Row] = &[
    row("Disk full on db01", "database", "1", "1", "am:1", "alice", "root volume at 100%"),
    row("CPU hot on web01", "hardware", "2", "2", "am:2", "bob", ""),
    row("Network down in lab", "network", "1", "2", "50%_off", "alice", ""),
    row("Printer jam", "hardware", "3", "3", "", "carol", ""),
    row("VPN flapping", "network", "2", "1", "O'Brien \"quoted\"", "bob", ""),
    row("Password reset", "inquiry", "3", "2", "", "", ""),
    row("Disk slow on db02", "database", "2", "3", "a_b", "dave@example.com", ""),
    row("Mail queue stuck", "software", "3", "1", "back\\slash", "carol", ""),
    row("disk FULL on backup", "inquiry", "3", "3", "AM:9", "alice", ""),
    row("Latency 100% spike", "network", "1", "3", "100%", "bob", ""),
    row("App crash after upgrade", "software", "2", "2", "ab", "dave@example.com", "caf\u{e9} \u{2615} crash"),
    row("Database restore", "database", "1", "1", "a%b", "", ""),
];

fn number(n: usize) -> String {
    format!("INC{:07}", 10_000 + n)
}

fn table(name: &str) -> Arc<TableSchema> {
    Catalog::builtin().get(name).expect("built-in table").clone()
}

fn job(integration: &Integration, payload: serde_json::Value, now: DateTime) -> ImportJob {
    let object = payload.as_object().expect("payload is an object");
    let staged = staging::stage(integration, object);
    let verdict = validate::validate(integration, &staged).and_then(|row| transform::plan(integration, &row));
    let definition = &integration.definition;
    ImportJob {
        staging: integration.staging.clone(),
        target: integration.target.clone(),
        transform_map: definition.transform.name.clone(),
        integration_version: definition.version.clone(),
        staging_sys_id: SysId::generate(),
        payload: payload.to_string().into_bytes(),
        columns: staged.columns,
        verdict,
        actor: Actor { user_name: "integration.alerts".into(), sys_id: SysId::generate() },
        now,
        idempotency: None,
    }
}

/// Imports [`DATA`] in order; alice also gets credentials (a password hash no query may see).
async fn seed<S: Store + ?Sized>(store: &S) {
    let integration = Arc::new(Integration::builtin_default(&Catalog::builtin()));
    store.prepare_staging(integration.staging.clone()).await.expect("prepare staging");
    for (i, r) in DATA.iter().enumerate() {
        let mut payload = json!({
            "u_short_description": r.short_description,
            "u_category": r.category,
            "u_impact": r.impact,
            "u_urgency": r.urgency,
        });
        for (key, value) in
            [("u_correlation_id", r.correlation_id), ("u_caller", r.caller), ("u_description", r.description)]
        {
            if !value.is_empty() {
                payload[key] = json!(value);
            }
        }
        let outcome = store.import(job(&integration, payload, created(i + 1))).await.expect("import");
        assert_eq!(outcome.state, RowState::Inserted, "row {}: {outcome:?}", i + 1);
        assert_eq!(outcome.display_value, Some(number(i + 1)));
    }
    let account = NewAccount {
        user_name: "alice".into(),
        roles: vec![Role::Admin],
        password_hash: "$argon2id$v=19$secret".into(),
        created_by: "test".into(),
        now: at(0),
    };
    store.add_account(account).await.expect("alice gets credentials");
}

async fn list<S: Store + ?Sized>(store: &S, schema: Arc<TableSchema>, filter: EncodedQuery) -> (Vec<Record>, u64) {
    let page = store.list(schema, ListQuery { filter, limit: 10_000, offset: 0 }).await.expect("list");
    (page.records, page.total)
}

/// The incidents a filter returns, as their position in [`DATA`] (1-based), in the order returned.
async fn incidents<S: Store + ?Sized>(store: &S, filter: EncodedQuery) -> Vec<usize> {
    let (records, total) = list(store, table(tables::INCIDENT), filter).await;
    assert_eq!(total as usize, records.len(), "the total counts what the rows show");
    records
        .iter()
        .map(|r| {
            let n: usize = r["number"].trim_start_matches("INC").parse().expect("an incident number");
            n - 10_000
        })
        .collect()
}

fn all() -> Vec<usize> {
    (1..=DATA.len()).collect()
}

fn except(excluded: &[usize]) -> Vec<usize> {
    all().into_iter().filter(|n| !excluded.contains(n)).collect()
}

// ---------------------------------------------------------------------------------------------
// The checks, generic over the store
// ---------------------------------------------------------------------------------------------

mod checks {
    use super::*;

    /// The data set is what the table below assumes.
    pub async fn data_set_is_as_described<S: Store + ?Sized>(store: &S) {
        let (records, _) = list(store, table(tables::INCIDENT), EncodedQuery::default()).await;
        let priorities: Vec<&str> = records.iter().map(|r| r["priority"].as_str()).collect();
        assert_eq!(priorities, ["1", "3", "2", "5", "2", "4", "4", "3", "5", "3", "3", "1"]);
        for (r, expected) in records.iter().zip(DATA) {
            assert_eq!(r["short_description"], expected.short_description);
            assert_eq!(r["category"], expected.category);
            assert_eq!(r["correlation_id"], expected.correlation_id);
            assert_eq!(r["caller_id"].is_empty(), expected.caller.is_empty());
        }
        let (users, _) = list(store, table(tables::SYS_USER), EncodedQuery::default()).await;
        let names: Vec<&str> = users.iter().map(|u| u["user_name"].as_str()).collect();
        assert_eq!(names, ["alice", "bob", "carol", "dave@example.com"]);
    }

    /// Every operator, `^OR`, `^NQ`, ordering, `GOTO`, dot-walking, unknown fields, numbers,
    /// dates and literal wildcards: each query returns exactly these incidents, in this order.
    pub async fn encoded_queries<S: Store + ?Sized>(store: &S) {
        let t = |n: usize| created(n).to_string();
        let cases: Vec<(String, Vec<usize>)> = vec![
            // Equality, case-insensitive as on ServiceNow.
            ("".into(), all()),
            ("category=network".into(), vec![3, 5, 10]),
            ("category=NETWORK".into(), vec![3, 5, 10]),
            ("category!=network".into(), except(&[3, 5, 10])),
            ("active=TRUE^category=software".into(), vec![8, 11]),
            ("number=inc0010004".into(), vec![4]),
            ("^category=network^^".into(), vec![3, 5, 10]),
            // Contains, prefix, suffix.
            ("short_descriptionLIKEdisk".into(), vec![1, 7, 9]),
            ("short_descriptionLIKEDISK FULL".into(), vec![1, 9]),
            ("short_descriptionNOT LIKEdisk".into(), except(&[1, 7, 9])),
            ("short_descriptionSTARTSWITHdisk".into(), vec![1, 7, 9]),
            ("short_descriptionSTARTSWITHon".into(), vec![]),
            ("short_descriptionENDSWITHDB01".into(), vec![1]),
            ("short_descriptionENDSWITHupgrade".into(), vec![11]),
            ("descriptionLIKEcaf\u{e9} \u{2615}".into(), vec![11]),
            // Lists.
            ("correlation_idIN50%_off,a_b,AM:1".into(), vec![1, 3, 7]),
            ("correlation_idNOT INam:1,am:2".into(), except(&[1, 2])),
            ("impactIN1,3^urgency=1".into(), vec![1, 8, 12]),
            ("impactNOT IN1,2".into(), vec![4, 6, 8, 9]),
            // Empty and anything.
            ("correlation_idISEMPTY".into(), vec![4, 6]),
            ("correlation_idEMPTYSTRING".into(), vec![4, 6]),
            ("correlation_idISNOTEMPTY".into(), except(&[4, 6])),
            ("correlation_idANYTHING".into(), all()),
            ("caller_idISEMPTY".into(), vec![6, 12]),
            ("descriptionISNOTEMPTY".into(), vec![1, 11]),
            ("correlation_id=".into(), vec![4, 6]),
            // Integers compare as numbers ("5" < "10").
            ("priority<3".into(), vec![1, 3, 5, 12]),
            ("priority<=3".into(), vec![1, 2, 3, 5, 8, 10, 11, 12]),
            ("priority>3".into(), vec![4, 6, 7, 9]),
            ("priority>=4".into(), vec![4, 6, 7, 9]),
            ("priority<10".into(), all()),
            ("priority>10".into(), vec![]),
            ("priority=01".into(), vec![1, 12]),
            ("impactBETWEEN1@2".into(), vec![1, 2, 3, 5, 7, 10, 11, 12]),
            ("priorityBETWEEN2@3^impact=1".into(), vec![3, 10]),
            // Not a number: an invalid comparison, dropped like an unknown field.
            ("priority<high^category=hardware".into(), vec![2, 4]),
            // Date-times and other text order as text; empty values never compare.
            (format!("sys_created_on>={}", t(10)), vec![10, 11, 12]),
            (format!("sys_created_on<{}", t(3)), vec![1, 2]),
            (format!("sys_created_onBETWEEN{}@{}", t(3), t(5)), vec![3, 4, 5]),
            ("sys_created_on<2024-05-01 10:19".into(), vec![1, 2, 3]),
            ("resolved_at<2099-01-01 00:00:00".into(), vec![]),
            ("number>INC0010010".into(), vec![11, 12]),
            ("correlation_id<a".into(), vec![3, 10]),
            // ^OR binds to the previous condition only; ^NQ starts an alternative.
            ("category=network^ORcategory=database".into(), vec![1, 3, 5, 7, 10, 12]),
            ("category=network^impact=1".into(), vec![3, 10]),
            ("impact=1^urgency=1^ORurgency=3".into(), vec![1, 10, 12]),
            ("category=network^impact=1^NQcategory=software".into(), vec![3, 8, 10, 11]),
            ("caller_id.user_name=alice^NQpriority=1^ORpriority=5".into(), vec![1, 3, 4, 9, 12]),
            ("category=hardware^NQcategory=hardware".into(), vec![2, 4]),
            // Ordering, anywhere in the query; ties in insertion order.
            ("category=network^ORDERBYDESCnumber".into(), vec![10, 5, 3]),
            ("ORDERBYDESCnumber^category=network".into(), vec![10, 5, 3]),
            ("ORDERBYcategory".into(), vec![1, 7, 12, 2, 4, 6, 9, 3, 5, 10, 8, 11]),
            ("ORDERBYDESCpriority^ORDERBYnumber".into(), vec![4, 9, 6, 7, 2, 8, 10, 11, 3, 5, 1, 12]),
            ("ORDERBYshort_description".into(), vec![11, 2, 12, 9, 1, 7, 10, 8, 3, 6, 4, 5]),
            ("ORDERBYDESCimpact^ORDERBYDESCurgency^impact!=3".into(), vec![7, 2, 11, 5, 10, 3, 1, 12]),
            ("ORDERBYnope^ORDERBYDESCcaller_id.user_name^category=network".into(), vec![3, 5, 10]),
            // GOTO and the end marker.
            ("GOTOnumber=INC0010005".into(), vec![5]),
            ("GOTOshort_descriptionLIKEvpn^EQ".into(), vec![5]),
            // Dot-walking through a reference.
            ("caller_id.user_name=bob".into(), vec![2, 5, 10]),
            ("caller_id.user_name=BOB^ORcaller_id.user_name=carol".into(), vec![2, 4, 5, 8, 10]),
            ("caller_id.user_nameSTARTSWITHdave".into(), vec![7, 11]),
            ("caller_id.emailENDSWITH@example.com".into(), vec![7, 11]),
            ("caller_id.user_name!=alice".into(), vec![2, 4, 5, 7, 8, 10, 11]),
            ("caller_id.user_nameINalice,carol^priority<=2".into(), vec![1, 3]),
            ("caller_id.emailISEMPTY".into(), vec![1, 2, 3, 4, 5, 8, 9, 10]),
            ("caller_id.user_nameANYTHING".into(), all()),
            // Unknown, hidden and journal fields are dropped; the rest applies.
            ("nonsense=1^category=network".into(), vec![3, 5, 10]),
            ("u_bogus=1".into(), all()),
            ("category=network^ORnonsense=1".into(), vec![3, 5, 10]),
            ("nonsense=1^NQcategory=network".into(), all()),
            ("caller_id.nope=1^category=database".into(), vec![1, 7, 12]),
            ("short_description.number=x^category=database".into(), vec![1, 7, 12]),
            ("caller_id.password_hashSTARTSWITH$argon2id".into(), all()),
            ("caller_id.password_hashSTARTSWITHnot-the-hash".into(), all()),
            ("work_notesLIKEx^comments=y".into(), all()),
            ("caller_id.manager.name=x^category=software".into(), vec![8, 11]),
            ("Category=network^123TEXTQUERY321=disk^sys_class_nameINSTANCEOFtask".into(), all()),
            // Values are literal: LIKE wildcards, quotes and backslashes are just characters.
            ("correlation_idLIKE%".into(), vec![3, 10, 12]),
            ("correlation_idLIKE_".into(), vec![3, 7]),
            ("correlation_idSTARTSWITHa%".into(), vec![12]),
            ("correlation_idSTARTSWITHa_".into(), vec![7]),
            ("correlation_idENDSWITH%".into(), vec![10]),
            ("correlation_idLIKE%_".into(), vec![3]),
            ("correlation_id=a_b".into(), vec![7]),
            ("correlation_id=a%b".into(), vec![12]),
            ("correlation_idLIKE\\".into(), vec![8]),
            ("correlation_idLIKEk\\s".into(), vec![8]),
            ("correlation_idLIKE*".into(), vec![]),
            ("correlation_idLIKEo'brien \"QUOTED\"".into(), vec![5]),
            ("correlation_id=O'Brien \"quoted\"".into(), vec![5]),
            ("correlation_idIN100%,a%b".into(), vec![10, 12]),
            ("descriptionLIKE100%".into(), vec![1]),
            ("short_descriptionLIKE100%".into(), vec![10]),
        ];
        assert!(cases.len() >= 40);
        let mut failures = Vec::new();
        for (text, expected) in &cases {
            let got = incidents(store, query::parse(text)).await;
            if &got != expected {
                failures.push(format!("{text:?}: expected {expected:?}, got {got:?}"));
            }
        }
        assert!(failures.is_empty(), "{} of {} queries wrong:\n{}", failures.len(), cases.len(), failures.join("\n"));
    }

    /// sys_ids match whatever their case, directly and through references; keyset paging
    /// (`sys_id>last^ORDERBYsys_id`, which some clients use) visits every record once.
    pub async fn keys_and_keyset_paging<S: Store + ?Sized>(store: &S) {
        let (records, _) = list(store, table(tables::INCIDENT), EncodedQuery::default()).await;
        let id = |n: usize| records[n - 1]["sys_id"].clone();
        let caller = |n: usize| records[n - 1]["caller_id"].clone();
        let cases: Vec<(String, Vec<usize>)> = vec![
            (format!("sys_id={}", id(3).to_uppercase()), vec![3]),
            (format!("sys_idIN{},{}", id(5), id(1).to_uppercase()), vec![1, 5]),
            (format!("sys_id!={}", id(2).to_uppercase()), except(&[2])),
            (format!("caller_id={}", caller(1).to_uppercase()), vec![1, 3, 9]),
            (format!("caller_id.sys_id={}^ORcaller_id={}", caller(2), caller(4).to_uppercase()), vec![2, 4, 5, 8, 10]),
            (format!("number={}^sys_id={}", number(7).to_lowercase(), id(7).to_uppercase()), vec![7]),
        ];
        for (text, expected) in cases {
            assert_eq!(incidents(store, query::parse(&text)).await, expected, "{text}");
        }

        let mut ids: Vec<String> = records.iter().map(|r| r["sys_id"].clone()).collect();
        ids.sort();
        let mut seen = Vec::new();
        let mut last = String::new();
        loop {
            let filter = query::parse(&format!("sys_id>{}^ORDERBYsys_id", last.to_uppercase()));
            let page =
                store.list(table(tables::INCIDENT), ListQuery { filter, limit: 5, offset: 0 }).await.expect("list");
            let Some(end) = page.records.last() else { break };
            last = end["sys_id"].clone();
            seen.extend(page.records.iter().map(|r| r["sys_id"].clone()));
        }
        assert_eq!(seen, ids);
    }

    /// Plain `?field=value` parameters AND into every alternative of the encoded query; paging
    /// follows the query's order and the total ignores it.
    pub async fn parameters_and_paging<S: Store + ?Sized>(store: &S) {
        let mut filter = query::parse("category=network^NQcategory=database^ORDERBYDESCnumber");
        filter.and_equals("impact", "1");
        assert_eq!(incidents(store, filter.clone()).await, vec![12, 10, 3, 1]);

        let incident = table(tables::INCIDENT);
        let page = |limit, offset| ListQuery { filter: query::parse("ORDERBYDESCnumber"), limit, offset };
        let numbers = |records: &[Record]| records.iter().map(|r| r["number"].clone()).collect::<Vec<_>>();
        let p = store.list(incident.clone(), page(3, 2)).await.expect("list");
        assert_eq!((p.total, numbers(&p.records)), (12, vec![number(10), number(9), number(8)]));
        let p = store.list(incident.clone(), page(5, 10)).await.expect("list");
        assert_eq!((p.total, numbers(&p.records)), (12, vec![number(2), number(1)]));
        let p = store.list(incident.clone(), page(u64::MAX, u64::MAX)).await.expect("list");
        assert_eq!((p.total, p.records.len()), (12, 0));

        // Other tables, through their own schema.
        let (users, total) =
            list(store, table(tables::SYS_USER), query::parse("user_nameLIKEa^ORDERBYDESCuser_name")).await;
        let names: Vec<&str> = users.iter().map(|u| u["user_name"].as_str()).collect();
        assert_eq!((names, total), (vec!["dave@example.com", "carol", "alice"], 3));
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile input
// ---------------------------------------------------------------------------------------------

/// Strings that would do harm if they reached SQL text, or that LIKE would misread.
const HOSTILE: &[&str] = &[
    "'; DROP TABLE incident; --",
    "\" OR 1=1 --",
    "' OR '1'='1",
    "x') OR ('1'='1",
    ")) OR 1=1; --",
    "1; DELETE FROM sys_user",
    "%",
    "_",
    "%%",
    "\\",
    "\\%",
    "\0",
    "disk\0",
    "\0%",
    "Disk\0 full",
    "\u{65e5}\u{672c}\u{8a9e}",
    "\u{1f642}",
    "caf\u{c9}",
    "*",
    "NULL",
    "",
];

fn condition(path: &[&str], op: Operator) -> EncodedQuery {
    let field = FieldPath(path.iter().map(|s| (*s).to_owned()).collect());
    EncodedQuery {
        groups: vec![Group { clauses: vec![Clause { any_of: vec![Condition { field, op }] }] }],
        ..Default::default()
    }
}

/// What ServiceNow's (ASCII) case-insensitive text operators mean, computed without SQL.
fn oracle(value: &str, op: &Operator) -> bool {
    let fold = |s: &str| s.to_ascii_lowercase();
    let (v, lower) = (value, fold(value));
    match op {
        Operator::Eq(x) => v.eq_ignore_ascii_case(x),
        Operator::Ne(x) => !v.eq_ignore_ascii_case(x),
        Operator::Like(x) => lower.contains(&fold(x)),
        Operator::NotLike(x) => !lower.contains(&fold(x)),
        Operator::StartsWith(x) => lower.starts_with(&fold(x)),
        Operator::EndsWith(x) => lower.ends_with(&fold(x)),
        Operator::In(xs) => xs.iter().any(|x| v.eq_ignore_ascii_case(x)),
        Operator::NotIn(xs) => !xs.iter().any(|x| v.eq_ignore_ascii_case(x)),
        Operator::IsEmpty | Operator::EmptyString => v.is_empty(),
        Operator::IsNotEmpty => !v.is_empty(),
        Operator::Anything => true,
        Operator::Lt(x) => !v.is_empty() && lower < fold(x),
        Operator::Le(x) => !v.is_empty() && lower <= fold(x),
        Operator::Gt(x) => !v.is_empty() && lower > fold(x),
        Operator::Ge(x) => !v.is_empty() && lower >= fold(x),
        Operator::Between(a, b) => !v.is_empty() && fold(a) <= lower && lower <= fold(b),
    }
}

fn operators(v: &str) -> Vec<Operator> {
    let s = || v.to_owned();
    vec![
        Operator::Eq(s()),
        Operator::Ne(s()),
        Operator::Like(s()),
        Operator::NotLike(s()),
        Operator::StartsWith(s()),
        Operator::EndsWith(s()),
        Operator::In(vec![s(), "no such value".into()]),
        Operator::NotIn(vec![s(), "Printer jam".into()]),
        Operator::Lt(s()),
        Operator::Le(s()),
        Operator::Gt(s()),
        Operator::Ge(s()),
        Operator::Between(s(), format!("{v}zzz")),
    ]
}

mod hostile {
    use super::*;

    async fn snapshot<S: Store + ?Sized>(store: &S) -> Vec<(String, Vec<Record>)> {
        let mut tables = Vec::new();
        for name in [tables::INCIDENT, tables::SYS_USER, tables::SYS_AUDIT, tables::SYS_IMPORT_SET] {
            tables.push((name.to_owned(), list(store, table(name), EncodedQuery::default()).await.0));
        }
        tables
    }

    /// Hostile values in every operator, on a plain field and through a reference: the rows are
    /// exactly those the operator's meaning selects, and nothing in the database changes.
    pub async fn values<S: Store + ?Sized>(store: &S) {
        let before = snapshot(store).await;
        let records = &before[0].1;
        let mut failures = Vec::new();
        for value in HOSTILE {
            for op in operators(value) {
                let expected: Vec<usize> = records
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| oracle(&r["short_description"], &op))
                    .map(|(i, _)| i + 1)
                    .collect();
                let got = incidents(store, condition(&["short_description"], op.clone())).await;
                if got != expected {
                    failures.push(format!("short_description {op:?}: expected {expected:?}, got {got:?}"));
                }
                // Through a reference: the incidents whose caller's user name matches.
                let users = &before[1].1;
                let matching: Vec<&str> =
                    users.iter().filter(|u| oracle(&u["user_name"], &op)).map(|u| u["sys_id"].as_str()).collect();
                let expected: Vec<usize> = records
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| matching.contains(&r["caller_id"].as_str()))
                    .map(|(i, _)| i + 1)
                    .collect();
                let got = incidents(store, condition(&["caller_id", "user_name"], op.clone())).await;
                if got != expected {
                    failures.push(format!("caller_id.user_name {op:?}: expected {expected:?}, got {got:?}"));
                }
            }
            // The same values through the encoded-query text (where `^` cannot occur).
            for text in [format!("short_description={value}"), format!("correlation_idLIKE{value}")] {
                let parsed = query::parse(&text);
                assert!(parsed.ignored.is_empty(), "{text:?} parses: {parsed:?}");
                let got = incidents(store, parsed.clone()).await;
                let op = &parsed.groups[0].clauses[0].any_of[0].op;
                let field = &parsed.groups[0].clauses[0].any_of[0].field.0[0];
                let expected: Vec<usize> = records
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| oracle(&r[field.as_str()], op))
                    .map(|(i, _)| i + 1)
                    .collect();
                if got != expected {
                    failures.push(format!("{text:?}: expected {expected:?}, got {got:?}"));
                }
            }
        }
        assert!(failures.is_empty(), "{} wrong:\n{}", failures.len(), failures.join("\n"));
        assert_eq!(snapshot(store).await, before, "queries changed the database");
    }

    /// Field names carrying SQL never reach SQL: in the query text most do not parse; put
    /// straight into the tree (as a buggy caller might), the store does not know them and drops
    /// them. Hidden fields cannot be filtered or sorted on, so their values cannot be probed.
    pub async fn field_names<S: Store + ?Sized>(store: &S) {
        let before = snapshot(store).await;
        let hostile_names = [
            "number = number OR 1=1 --",
            "number; DROP TABLE incident; --",
            "\"number\"",
            "number\0",
            "NUMBER",
            "rowid",
            "sys_user.password_hash",
            "(SELECT password_hash FROM sys_user)",
            "caller_id) OR 1=1 --",
        ];
        let op = || Operator::Eq("INC0010001".into());
        for name in hostile_names {
            for path in [vec![name], vec!["caller_id", name], vec![name, "user_name"]] {
                assert_eq!(incidents(store, condition(&path, op())).await, all(), "{path:?}");
            }
            let mut filter = EncodedQuery::default();
            filter.and_equals(name, "x");
            assert_eq!(incidents(store, filter).await, all(), "and_equals {name:?}");
            let ordered = EncodedQuery {
                order_by: vec![OrderBy { field: name.to_owned(), descending: true }],
                ..Default::default()
            };
            assert_eq!(incidents(store, ordered).await, all(), "ORDERBY {name:?}");
            for text in [format!("{name}=INC0010001"), format!("ORDERBYDESC{name}"), format!("caller_id.{name}=x")] {
                // Most do not parse; those that do (`rowid`, `sys_user.password_hash`) name no
                // field the store lets clients use.
                assert_eq!(incidents(store, query::parse(&text)).await, all(), "{text:?}");
            }
        }

        // The hidden password hash: filtering or ordering on it is as if it were not there.
        let users = table(tables::SYS_USER);
        let (everyone, _) = list(store, users.clone(), EncodedQuery::default()).await;
        for text in [
            "password_hashSTARTSWITH$argon2id",
            "password_hashSTARTSWITHzzz",
            "password_hashISEMPTY",
            "password_hashISNOTEMPTY",
            "ORDERBYDESCpassword_hash",
        ] {
            assert_eq!(list(store, users.clone(), query::parse(text)).await.0, everyone, "{text}");
        }
        assert_eq!(snapshot(store).await, before, "queries changed the database");
    }

    /// Queries far larger than any client sends still run: thousands of `^OR`s (SQLite limits
    /// expression depth), long IN lists, LIKE values past SQLite's pattern limit.
    pub async fn very_large_queries<S: Store + ?Sized>(store: &S) {
        let many_ors = (0..3_000).map(|n| format!("number=INC{:07}", 20_000 + n)).collect::<Vec<_>>().join("^OR");
        assert_eq!(incidents(store, query::parse(&format!("{many_ors}^ORnumber=INC0010007"))).await, vec![7]);

        let many_ands = (0..3_000).map(|_| "priority<=5").collect::<Vec<_>>().join("^");
        assert_eq!(incidents(store, query::parse(&format!("{many_ands}^category=software"))).await, vec![8, 11]);

        let many_groups = (0..2_000).map(|n| format!("number=INC{:07}", 20_000 + n)).collect::<Vec<_>>().join("^NQ");
        assert_eq!(incidents(store, query::parse(&format!("{many_groups}^NQnumber=INC0010002"))).await, vec![2]);

        let long_list = (0..10_000).map(|n| format!("x{n}")).collect::<Vec<_>>().join(",");
        assert_eq!(incidents(store, query::parse(&format!("correlation_idIN{long_list},AM:1"))).await, vec![1]);

        let long_value = "%".repeat(60_000);
        for text in [
            format!("short_descriptionLIKE{long_value}"),
            format!("short_descriptionSTARTSWITH{long_value}"),
            format!("short_descriptionENDSWITH{long_value}"),
        ] {
            assert_eq!(incidents(store, query::parse(&text)).await, Vec::<usize>::new());
        }
        assert_eq!(incidents(store, query::parse(&format!("short_descriptionNOT LIKE{long_value}"))).await, all());
        let long_suffix = format!("{}{}", "a".repeat(20_000), "Printer jam");
        assert_eq!(
            incidents(store, query::parse(&format!("short_descriptionENDSWITH{long_suffix}"))).await,
            Vec::<usize>::new()
        );
        assert_eq!(incidents(store, query::parse("short_descriptionENDSWITHprinter JAM")).await, vec![4]);
    }
}

// ---------------------------------------------------------------------------------------------
// The backends: each test on a fresh, seeded store
// ---------------------------------------------------------------------------------------------

#[path = "common/mod.rs"]
mod common;

macro_rules! query_tests {
    ($($module:ident :: $name:ident),* $(,)?) => {
        mod sqlite {
            use sluice_store::Store;
            use sluice_store::sqlite::SqliteOptions;

            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().expect("tempdir");
                    let store = sluice_store::SqliteStore::open(dir.path(), SqliteOptions::default())
                        .expect("open the SQLite store");
                    crate::seed(&store).await;
                    crate::$module::$name(&store).await;
                    store.close().await;
                }
            )*
        }
        mod postgres {
            use sluice_store::Store;

            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = crate::common::TestDb::create() else { return };
                    let store = db.open().await;
                    crate::seed(&store).await;
                    crate::$module::$name(&store).await;
                    store.close().await;
                }
            )*
        }
    };
}

query_tests!(
    checks::data_set_is_as_described,
    checks::encoded_queries,
    checks::parameters_and_paging,
    checks::keys_and_keyset_paging,
    hostile::values,
    hostile::field_names,
    hostile::very_large_queries,
);
