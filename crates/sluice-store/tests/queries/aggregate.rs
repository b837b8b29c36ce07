//! Aggregate queries ([`Records::aggregate`]) over the data set: each query with exactly the
//! groups, in order, and the values it must answer, the same on every backend; exact sums of
//! the largest integers; fields the query may not name are refused before any SQL is run.

use std::collections::BTreeMap;

use sluice_store::aggregate::{Aggregate, Comparison, GroupOrder, Having};
use sluice_store::{AggregateQuery, AggregateRow, StoreError, TableWrite, WriteOp, WriteResult};

use super::*;

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn query(filter: &str, group_by: &[&str]) -> AggregateQuery {
    AggregateQuery { filter: crate::q(filter), group_by: names(group_by), limit: 10_000, ..Default::default() }
}

async fn aggregate<S: Store + ?Sized>(store: &S, q: AggregateQuery) -> Vec<AggregateRow> {
    store.aggregate(table(tables::INCIDENT), q).await.expect("aggregate")
}

/// Per group: its values and its count.
async fn counts<S: Store + ?Sized>(store: &S, q: AggregateQuery) -> Vec<(Vec<String>, String)> {
    let q = AggregateQuery { count: true, ..q };
    aggregate(store, q).await.into_iter().map(|r| (r.groups, r.count.expect("count asked"))).collect()
}

fn group(values: &[&str], count: &str) -> (Vec<String>, String) {
    (names(values), count.to_owned())
}

/// Without group-by fields, one row over every matching record; averages with four decimals.
pub async fn whole_table_and_filtered<S: Store + ?Sized>(store: &S) {
    let q = AggregateQuery {
        count: true,
        avg: names(&["priority", "impact"]),
        min: names(&["priority", "short_description", "correlation_id", "sys_created_on"]),
        max: names(&["priority", "short_description", "correlation_id"]),
        sum: names(&["priority"]),
        ..query("", &[])
    };
    let rows = aggregate(store, q).await;
    assert_eq!(
        rows,
        [AggregateRow {
            groups: vec![],
            count: Some("12".into()),
            avg: pairs(&[("priority", "3.0000"), ("impact", "2.0000")]),
            // Text compares byte by byte (upper case first) and skips empty values.
            min: pairs(&[
                ("priority", "1"),
                ("short_description", "App crash after upgrade"),
                ("correlation_id", "100%"),
                ("sys_created_on", &created(1).to_string()),
            ]),
            max: pairs(&[
                ("priority", "5"),
                ("short_description", "disk FULL on backup"),
                ("correlation_id", "back\\slash")
            ]),
            sum: pairs(&[("priority", "36")]),
        }]
    );

    // The filter is the Table API's: unknown fields dropped, the rest applies.
    let q = AggregateQuery { count: true, avg: names(&["priority"]), ..query("category=NETWORK^nonsense=1", &[]) };
    let rows = aggregate(store, q).await;
    assert_eq!((rows[0].count.as_deref(), rows[0].avg.clone()), (Some("3"), pairs(&[("priority", "2.3333")])));

    // Nothing matches: a count of 0, aggregates of no values are empty.
    let q = AggregateQuery {
        count: true,
        avg: names(&["priority"]),
        min: names(&["category"]),
        sum: names(&["priority"]),
        ..query("category=nothing", &[])
    };
    let rows = aggregate(store, q).await;
    assert_eq!(
        rows,
        [AggregateRow {
            count: Some("0".into()),
            avg: pairs(&[("priority", "")]),
            min: pairs(&[("category", "")]),
            sum: pairs(&[("priority", "")]),
            ..Default::default()
        }]
    );

    // An integer field that is empty everywhere: no values, one empty group.
    let q = AggregateQuery {
        count: true,
        avg: names(&["hold_reason"]),
        max: names(&["hold_reason"]),
        ..query("", &["hold_reason"])
    };
    let rows = aggregate(store, q).await;
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].groups.clone(), rows[0].count.clone()), (names(&[""]), Some("12".into())));
    assert_eq!(
        (rows[0].avg.clone(), rows[0].max.clone()),
        (pairs(&[("hold_reason", "")]), pairs(&[("hold_reason", "")]))
    );
}

/// Groups in order of their values (text ignoring case, then exact; empty first), each with its
/// aggregates.
pub async fn groups_and_their_aggregates<S: Store + ?Sized>(store: &S) {
    let q = AggregateQuery {
        count: true,
        avg: names(&["priority"]),
        min: names(&["priority"]),
        max: names(&["priority"]),
        sum: names(&["priority"]),
        ..query("", &["category"])
    };
    let rows = aggregate(store, q).await;
    let got: Vec<(String, String, String, String, String, String)> = rows
        .iter()
        .map(|r| {
            let v = |list: &[(String, String)]| list[0].1.clone();
            (r.groups[0].clone(), r.count.clone().unwrap(), v(&r.avg), v(&r.min), v(&r.max), v(&r.sum))
        })
        .collect();
    let expected = [
        ("database", "3", "2.0000", "1", "4", "6"),
        ("hardware", "2", "4.0000", "3", "5", "8"),
        ("inquiry", "2", "4.5000", "4", "5", "9"),
        ("network", "3", "2.3333", "2", "3", "7"),
        ("software", "2", "3.0000", "3", "3", "6"),
    ];
    let expected: Vec<_> = expected
        .iter()
        .map(|(g, c, a, mi, ma, s)| {
            ((*g).to_owned(), (*c).to_owned(), (*a).to_owned(), (*mi).to_owned(), (*ma).to_owned(), (*s).to_owned())
        })
        .collect();
    assert_eq!(got, expected);

    // Exact values are groups of their own ("am:1" and "AM:9"); empty first; case-insensitive order.
    let got = counts(store, query("", &["correlation_id"])).await;
    let expected: Vec<_> = [
        ("", "2"),
        ("100%", "1"),
        ("50%_off", "1"),
        ("a%b", "1"),
        ("a_b", "1"),
        ("ab", "1"),
        ("am:1", "1"),
        ("am:2", "1"),
        ("AM:9", "1"),
        ("back\\slash", "1"),
        ("O'Brien \"quoted\"", "1"),
    ]
    .iter()
    .map(|(v, c)| group(&[v], c))
    .collect();
    assert_eq!(got, expected);

    // Several fields; integers order as numbers.
    assert_eq!(
        counts(store, query("category=network^ORcategory=database", &["category", "impact"])).await,
        [
            group(&["database", "1"], "2"),
            group(&["database", "2"], "1"),
            group(&["network", "1"], "2"),
            group(&["network", "2"], "1")
        ]
    );
    assert_eq!(
        counts(store, query("", &["priority"])).await,
        [group(&["1"], "2"), group(&["2"], "2"), group(&["3"], "4"), group(&["4"], "2"), group(&["5"], "2")]
    );

    // References group by sys_id; no caller is the empty group, first.
    let (users, _) = list(store, table(tables::SYS_USER), crate::q("ORDERBYsys_id")).await;
    let by_caller = counts(store, query("", &["caller_id"])).await;
    let mut expected = vec![group(&[""], "2")];
    let per_user = [("alice", "3"), ("bob", "3"), ("carol", "2"), ("dave@example.com", "2")];
    for u in &users {
        let n = per_user.iter().find(|(name, _)| *name == u["user_name"]).expect("a known caller").1;
        expected.push(group(&[&u["sys_id"]], n));
    }
    assert_eq!(by_caller, expected);

    // No aggregate asked: the groups with no values.
    let rows = aggregate(store, query("category=software", &["category"])).await;
    assert_eq!(rows, [AggregateRow { groups: names(&["software"]), ..Default::default() }]);
}

/// `HAVING` conditions (all must hold), then ordering by fields and aggregates, then the limit.
pub async fn having_order_and_limit<S: Store + ?Sized>(store: &S) {
    let having = |aggregate, field: &str, op, value| Having { aggregate, field: field.to_owned(), op, value };
    let categories = |rows: Vec<(Vec<String>, String)>| rows.into_iter().map(|(g, _)| g[0].clone()).collect::<Vec<_>>();
    let by_category = |h: Vec<Having>, order: Vec<GroupOrder>| AggregateQuery {
        having: h,
        order_by: order,
        ..query("", &["category"])
    };

    let cases: Vec<(AggregateQuery, Vec<&str>)> = vec![
        (
            by_category(vec![having(Aggregate::Count, "category", Comparison::Gt, 2.0)], vec![]),
            vec!["database", "network"],
        ),
        (
            by_category(vec![having(Aggregate::Avg, "priority", Comparison::Ge, 4.0)], vec![]),
            vec!["hardware", "inquiry"],
        ),
        (
            by_category(vec![having(Aggregate::Sum, "priority", Comparison::Lt, 7.0)], vec![]),
            vec!["database", "software"],
        ),
        (
            by_category(vec![having(Aggregate::Min, "priority", Comparison::Eq, 3.0)], vec![]),
            vec!["hardware", "software"],
        ),
        (
            by_category(vec![having(Aggregate::Max, "priority", Comparison::Ne, 5.0)], vec![]),
            vec!["database", "network", "software"],
        ),
        (by_category(vec![having(Aggregate::Avg, "priority", Comparison::Le, 2.3333)], vec![]), vec!["database"]),
        (
            by_category(
                vec![
                    having(Aggregate::Count, "category", Comparison::Ge, 3.0),
                    having(Aggregate::Avg, "priority", Comparison::Gt, 2.1),
                ],
                vec![],
            ),
            vec!["network"],
        ),
        // Ordering: by count (ties in group order), by an average, by the group-by field.
        (
            by_category(
                vec![],
                vec![GroupOrder::Aggregate { aggregate: Aggregate::Count, field: None, descending: true }],
            ),
            vec!["database", "network", "hardware", "inquiry", "software"],
        ),
        (
            by_category(
                vec![],
                vec![GroupOrder::Aggregate {
                    aggregate: Aggregate::Avg,
                    field: Some("priority".into()),
                    descending: true,
                }],
            ),
            vec!["inquiry", "hardware", "software", "network", "database"],
        ),
        (
            by_category(
                vec![],
                vec![GroupOrder::Aggregate {
                    aggregate: Aggregate::Sum,
                    field: Some("impact".into()),
                    descending: false,
                }],
            ),
            // Impact sums: database 4, hardware 5, inquiry 6, network 4, software 5.
            vec!["database", "network", "hardware", "software", "inquiry"],
        ),
        (
            by_category(
                vec![],
                vec![GroupOrder::Aggregate {
                    aggregate: Aggregate::Max,
                    field: Some("short_description".into()),
                    descending: false,
                }],
            ),
            // Byte order: "Disk slow..." < "Mail..." < "Printer jam" < "VPN flapping" < "disk FULL...".
            vec!["database", "software", "hardware", "network", "inquiry"],
        ),
        (by_category(vec![], vec![GroupOrder::Field { name: "category".into(), descending: true }]), {
            vec!["software", "network", "inquiry", "hardware", "database"]
        }),
    ];
    for (q, expected) in cases {
        let text = format!("{:?} {:?}", q.having, q.order_by);
        assert_eq!(categories(counts(store, q).await), expected, "{text}");
    }

    // The filter's ORDERBY orders groups by group-by fields; other fields cannot order groups.
    assert_eq!(
        categories(counts(store, query("ORDERBYDESCcategory", &["category"])).await),
        ["software", "network", "inquiry", "hardware", "database"]
    );
    assert_eq!(
        categories(counts(store, query("ORDERBYDESCnumber^ORDERBYpriority", &["category"])).await),
        ["database", "hardware", "inquiry", "network", "software"]
    );
    // sysparm_order_by first, the filter's order next.
    let q = AggregateQuery {
        order_by: vec![GroupOrder::Aggregate { aggregate: Aggregate::Count, field: None, descending: false }],
        ..query("ORDERBYDESCcategory", &["category"])
    };
    assert_eq!(categories(counts(store, q).await), ["software", "inquiry", "hardware", "network", "database"]);

    let q = AggregateQuery { limit: 2, ..query("", &["category"]) };
    assert_eq!(categories(counts(store, q).await), ["database", "hardware"]);
    let q = AggregateQuery { limit: 0, ..query("", &["category"]) };
    assert!(counts(store, q).await.is_empty());
}

/// Sums and averages of the largest integers are exact on every backend.
pub async fn sums_are_exact<S: Store + ?Sized>(store: &S) {
    let incident = table(tables::INCIDENT);
    let (records, _) = list(store, incident.clone(), EncodedQuery::default()).await;
    let values = [(1, i64::MAX), (2, i64::MAX), (3, i64::MIN), (4, -7)];
    for (n, v) in values {
        let write = TableWrite {
            table: incident.clone(),
            op: WriteOp::Update(records[n - 1]["sys_id"].clone()),
            values: BTreeMap::from([("reassignment_count".to_owned(), v.to_string())]),
            journal: Vec::new(),
            actor: Actor { user_name: "test".into(), sys_id: SysId::generate() },
            now: at(3_600),
            reason: sluice_store::table_write::REASON,
        };
        assert!(matches!(store.write(write).await.expect("write"), WriteResult::Written(_)));
    }
    let stats = |filter: &str| AggregateQuery {
        count: true,
        avg: names(&["reassignment_count"]),
        sum: names(&["reassignment_count"]),
        min: names(&["reassignment_count"]),
        max: names(&["reassignment_count"]),
        ..query(filter, &[])
    };
    let two_max = 2 * i128::from(i64::MAX);
    let rows = aggregate(store, stats(&format!("numberIN{},{}", number(1), number(2)))).await;
    assert_eq!(rows[0].sum, pairs(&[("reassignment_count", &two_max.to_string())]));
    assert_eq!(rows[0].avg, pairs(&[("reassignment_count", &format!("{}.0000", i64::MAX))]));
    let rows =
        aggregate(store, stats(&format!("numberIN{},{},{},{}", number(1), number(2), number(3), number(4)))).await;
    let sum = two_max + i128::from(i64::MIN) - 7;
    assert_eq!(rows[0].sum, pairs(&[("reassignment_count", &sum.to_string())]));
    assert_eq!(rows[0].avg, pairs(&[("reassignment_count", "2305843009213693949.7500")]));
    assert_eq!(rows[0].min, pairs(&[("reassignment_count", &i64::MIN.to_string())]));
    assert_eq!(rows[0].max, pairs(&[("reassignment_count", &i64::MAX.to_string())]));
    // HAVING and ordering compare such sums too (as floating-point numbers).
    let q = AggregateQuery {
        having: vec![Having {
            aggregate: Aggregate::Sum,
            field: "reassignment_count".into(),
            op: Comparison::Gt,
            value: 9e18,
        }],
        ..query("", &["category"])
    };
    assert_eq!(counts(store, q).await, [group(&["database"], "3"), group(&["hardware"], "2")]);
}

/// Fields a query may not name are refused, naming them, before any SQL runs; the data is intact.
pub async fn fields_it_may_not_name<S: Store + ?Sized>(store: &S) {
    let refused = |parameter: &str, field: &str| (parameter.to_owned(), field.to_owned());
    let hostile = "priority) FROM incident; DROP TABLE incident; --";
    let having =
        |aggregate, field: &str| vec![Having { aggregate, field: field.to_owned(), op: Comparison::Gt, value: 0.0 }];
    let cases: Vec<(AggregateQuery, (String, String))> = vec![
        (query("", &[hostile]), refused("sysparm_group_by", hostile)),
        (query("", &["caller_id.name"]), refused("sysparm_group_by", "caller_id.name")),
        (query("", &["work_notes"]), refused("sysparm_group_by", "work_notes")),
        (query("", &["Category"]), refused("sysparm_group_by", "Category")),
        (query("", &[""]), refused("sysparm_group_by", "")),
        (
            AggregateQuery { avg: names(&["short_description"]), ..query("", &[]) },
            refused("sysparm_avg_fields", "short_description"),
        ),
        (AggregateQuery { sum: names(&["opened_at"]), ..query("", &[]) }, refused("sysparm_sum_fields", "opened_at")),
        (AggregateQuery { min: names(&["nonsense"]), ..query("", &[]) }, refused("sysparm_min_fields", "nonsense")),
        (AggregateQuery { max: names(&["count(*)"]), ..query("", &[]) }, refused("sysparm_max_fields", "count(*)")),
        (
            AggregateQuery { having: having(Aggregate::Avg, "category"), ..query("", &["category"]) },
            refused("sysparm_having", "category"),
        ),
        (
            AggregateQuery { having: having(Aggregate::Max, "number"), ..query("", &["category"]) },
            refused("sysparm_having", "number"),
        ),
        (
            AggregateQuery { having: having(Aggregate::Count, hostile), ..query("", &["category"]) },
            refused("sysparm_having", hostile),
        ),
        (
            AggregateQuery {
                order_by: vec![GroupOrder::Field { name: "priority".into(), descending: false }],
                ..query("", &["category"])
            },
            refused("sysparm_order_by", "priority"),
        ),
        (
            AggregateQuery {
                order_by: vec![GroupOrder::Aggregate {
                    aggregate: Aggregate::Avg,
                    field: Some(hostile.into()),
                    descending: false,
                }],
                ..query("", &["category"])
            },
            refused("sysparm_order_by", hostile),
        ),
    ];
    for (q, (parameter, field)) in cases {
        match store.aggregate(table(tables::INCIDENT), q).await {
            Err(StoreError::InvalidAggregate(p)) => {
                assert_eq!((p.parameter, p.field.as_str()), (parameter.as_str(), field.as_str()))
            }
            other => panic!("{parameter} {field:?}: expected a refusal, got {other:?}"),
        }
    }
    // Hidden fields of other tables are not there to aggregate.
    let q = AggregateQuery { max: names(&["password_hash"]), ..query("", &[]) };
    let refusal = store.aggregate(table(tables::SYS_USER), q).await;
    assert!(matches!(refusal, Err(StoreError::InvalidAggregate(ref p)) if p.field == "password_hash"), "{refusal:?}");
    // Hostile values stay values.
    for value in ["'; DROP TABLE incident; --", "%", "\0", "\\"] {
        let mut q = AggregateQuery { count: true, ..query("", &["category"]) };
        q.filter.and_equals("category", value);
        assert!(counts(store, q).await.is_empty(), "{value:?}");
    }
    assert_eq!(counts(store, query("", &[])).await, [group(&[], "12")]);
}
