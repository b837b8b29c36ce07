//! Hostile input: SQL in field names and values, LIKE wildcards, NUL bytes, backslashes,
//! unicode and very large queries leave the data alone and find exactly what they say.

use super::*;

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
        op => unreachable!("not generated here: {op:?}"),
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
            let parsed = q(&text);
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
        let ordered =
            EncodedQuery { order_by: vec![OrderBy { field: name.to_owned(), descending: true }], ..Default::default() };
        assert_eq!(incidents(store, ordered).await, all(), "ORDERBY {name:?}");
        for text in [format!("{name}=INC0010001"), format!("ORDERBYDESC{name}"), format!("caller_id.{name}=x")] {
            // Most are refused (the name runs into what reads as an operator) or skipped as no
            // field name; those that parse (`rowid`, `sys_user.password_hash`) name no field the
            // store lets clients use.
            match query::parse(&text, now()) {
                Ok(filter) => assert_eq!(incidents(store, filter).await, all(), "{text:?}"),
                Err(e) => assert_eq!(e.term, text, "{text:?}: {e}"),
            }
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
        assert_eq!(list(store, users.clone(), q(text)).await.0, everyone, "{text}");
    }
    assert_eq!(snapshot(store).await, before, "queries changed the database");
}

/// Queries far larger than any client sends still run: thousands of `^OR`s (SQLite limits
/// expression depth), long IN lists, LIKE values past SQLite's pattern limit.
pub async fn very_large_queries<S: Store + ?Sized>(store: &S) {
    let many_ors = (0..3_000).map(|n| format!("number=INC{:07}", 20_000 + n)).collect::<Vec<_>>().join("^OR");
    assert_eq!(incidents(store, q(&format!("{many_ors}^ORnumber=INC0010007"))).await, vec![7]);

    let many_ands = (0..3_000).map(|_| "priority<=5").collect::<Vec<_>>().join("^");
    assert_eq!(incidents(store, q(&format!("{many_ands}^category=software"))).await, vec![8, 11]);

    let many_groups = (0..2_000).map(|n| format!("number=INC{:07}", 20_000 + n)).collect::<Vec<_>>().join("^NQ");
    assert_eq!(incidents(store, q(&format!("{many_groups}^NQnumber=INC0010002"))).await, vec![2]);

    let long_list = (0..10_000).map(|n| format!("x{n}")).collect::<Vec<_>>().join(",");
    assert_eq!(incidents(store, q(&format!("correlation_idIN{long_list},AM:1"))).await, vec![1]);

    let long_value = "%".repeat(60_000);
    for text in [
        format!("short_descriptionLIKE{long_value}"),
        format!("short_descriptionSTARTSWITH{long_value}"),
        format!("short_descriptionENDSWITH{long_value}"),
    ] {
        assert_eq!(incidents(store, q(&text)).await, Vec::<usize>::new());
    }
    assert_eq!(incidents(store, q(&format!("short_descriptionNOT LIKE{long_value}"))).await, all());
    let long_suffix = format!("{}{}", "a".repeat(20_000), "Printer jam");
    assert_eq!(incidents(store, q(&format!("short_descriptionENDSWITH{long_suffix}"))).await, Vec::<usize>::new());
    assert_eq!(incidents(store, q("short_descriptionENDSWITHprinter JAM")).await, vec![4]);
}

/// The new operators and `javascript:` values: injection attempts through the text are refused
/// by the parser (naming the term); hostile values put straight into the tree are bound or
/// dropped, never written into SQL. Nothing changes in the database.
pub async fn relative_values<S: Store + ?Sized>(store: &S) {
    let before = snapshot(store).await;
    for text in [
        "sys_created_on>javascript:gs.daysAgo(1);drop table incident",
        "sys_created_on>javascript:gs.daysAgo(1)); DELETE FROM sys_user; --",
        "sys_created_on>javascript:gs.daysAgo(gs.daysAgo(1))",
        "sys_created_on>javascript:gs.daysAgo(((((((((((1)))))))))))",
        "sys_created_on>javascript:gs.daysAgo(99999999999999999999999)",
        "sys_created_on>javascript:gs.daysAgo(-99999999)",
        "sys_created_on>javascript:gs.dateGenerate('2026-01-01\\' OR 1=1 --','00:00:00')",
        "sys_created_on>javascript:gs.dateGenerate('2026-01-01','00:00:00'' OR ''1''=''1')",
        "sys_created_on>javascript:new Packages.java.lang.Runtime()",
        "sys_created_on>javascript:eval('1')",
        "sys_created_onONToday@javascript:gs.beginningOfToday()@' OR 1=1 --",
        "sys_created_onRELATIVEGT@hour@ago@1; DROP TABLE incident",
        "sys_created_onRELATIVEGT@hour'--@ago@1",
        "sys_created_onRELATIVEGT@year@ago@99999999999",
        "sys_created_onDATEPARTx@javascript:gs.datePart('hour','1 OR 1=1','EE')",
        "sys_created_onDATEPARTx@javascript:gs.datePart('hour','99999999999','EE')",
        "sys_created_onSAMEASnumber; DROP TABLE incident",
        "sys_created_onSAMEAS\"number\"",
        "sys_created_onMORETHANsys_updated_on@hour@after@99999999999",
        "sys_created_onMORETHANsys_updated_on) OR (1=1@hour@after@1",
        "stateVALCHANGES^ORDERBYnumber",
    ] {
        let refused = query::parse(text, now()).expect_err(text);
        assert!(text.starts_with(refused.term.trim_end_matches('…')), "{text:?}: {refused}");
        assert!(!matches!(refused.problem, Problem::UnknownOperator(_)), "{text:?}: {refused}");
    }
    let long = format!("sys_created_on>javascript:gs.daysAgo({})", "(".repeat(100_000));
    assert!(query::parse(&long, now()).is_err());

    // Straight into the tree, as a buggy caller might.
    let date = |op: Operator| condition(&["sys_created_on"], op);
    let mut everything = Vec::new();
    for name in ["number; DROP TABLE incident; --", "\"number\"", "password_hash", "nope", "work_notes", ""] {
        everything.push(date(Operator::Field { sign: query::Sign::Eq, other: name.into(), part: None }));
        everything.push(date(Operator::Apart {
            more: true,
            other: name.into(),
            unit: query::Unit::Hour,
            direction: query::Direction::Either,
            count: 1,
        }));
    }
    everything.push(date(Operator::Apart {
        more: false,
        other: "sys_updated_on".into(),
        unit: query::Unit::Week,
        direction: query::Direction::Before,
        count: i64::MAX,
    }));
    for filter in everything {
        assert_eq!(incidents(store, filter.clone()).await, all(), "{filter:?}");
    }
    for hostile in HOSTILE {
        let op = Operator::NotBetween((*hostile).to_owned(), format!("{hostile}zzz"));
        // Text bounds compare as text: every date-time ("2024-…") lies outside a range of them
        // or inside; the database decides without reading them as SQL.
        let _ = incidents(store, date(op.clone())).await;
        let _ = incidents(store, condition(&["caller_id", "sys_created_on"], op)).await;
    }
    for value in [0, 7, 53, u32::MAX] {
        for part in [query::DatePart::DayOfWeek, query::DatePart::Week, query::DatePart::Year] {
            let op = Operator::DatePart { part, sign: query::Sign::Ne, value };
            let got = incidents(store, date(op)).await;
            let year_2024 = part == query::DatePart::Year && value == 2024;
            assert!(got.is_empty() == year_2024 || value != u32::MAX || got == all(), "{part:?} {value}: {got:?}");
        }
    }
    assert_eq!(snapshot(store).await, before, "queries changed the database");
}
