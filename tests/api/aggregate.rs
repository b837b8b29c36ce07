//! The Aggregate API (`/api/now/stats/{table}`): ServiceNow's answer shapes, each parameter,
//! display values of groups, errors naming the field at fault, the Table API's read rights, and
//! hostile input in every place a field name or value goes.

use serde_json::{Value, json};

use crate::helpers::*;

/// Six incidents; priority follows impact × urgency. Groups "Network" and "Database".
///
/// | n | category | impact | urgency | priority | group    |
/// |---|----------|--------|---------|----------|----------|
/// | 1 | network  | 1      | 1       | 1        | Network  |
/// | 2 | network  | 2      | 2       | 3        | Network  |
/// | 3 | database | 1      | 2       | 2        | Database |
/// | 4 | hardware | 3      | 3       | 5        |          |
/// | 5 | database | 2      | 1       | 2        | Database |
/// | 6 | network  | 3      | 2       | 4        |          |
async fn seeded() -> (Server, String, String) {
    let s = Server::start();
    let mut groups = Vec::new();
    for name in ["Network", "Database"] {
        let r = s.admin(s.http.post(s.url("/api/now/table/sys_user_group"))).json(&json!({"name": name})).send().await;
        let body: Value = r.unwrap().json().await.unwrap();
        groups.push(body["result"]["sys_id"].as_str().expect("a group").to_owned());
    }
    let (network, database) = (groups[0].clone(), groups[1].clone());
    let rows = [
        ("network", "1", "1", network.as_str()),
        ("network", "2", "2", network.as_str()),
        ("database", "1", "2", database.as_str()),
        ("hardware", "3", "3", ""),
        ("database", "2", "1", database.as_str()),
        ("network", "3", "2", ""),
    ];
    for (n, (category, impact, urgency, group)) in rows.into_iter().enumerate() {
        let body = json!({"short_description": format!("incident {}", n + 1), "category": category,
            "impact": impact, "urgency": urgency, "assignment_group": group});
        let r = s.admin(s.http.post(s.url("/api/now/table/incident"))).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }
    (s, network, database)
}

async fn stats(s: &Server, query: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let r = s.admin(s.http.get(s.url(&format!("/api/now/stats/incident?{query}")))).send().await.unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, headers, r.json().await.unwrap())
}

async fn ok(s: &Server, query: &str) -> Value {
    let (status, _, body) = stats(s, query).await;
    assert_eq!(status, 200, "{query}: {body}");
    body
}

/// The groups of an answer as (values..., count).
fn groups(body: &Value) -> Vec<Vec<String>> {
    body["result"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| {
            let mut out: Vec<String> = g["groupby_fields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["value"].as_str().unwrap().to_owned())
                .collect();
            out.push(g["stats"]["count"].as_str().unwrap_or("-").to_owned());
            out
        })
        .collect()
}

fn expect(rows: &[&[&str]]) -> Vec<Vec<String>> {
    rows.iter().map(|r| r.iter().map(|s| (*s).to_owned()).collect()).collect()
}

#[tokio::test]
async fn stats_of_the_whole_table_and_of_a_query() {
    let (s, _, _) = seeded().await;
    let all = "sysparm_count=true&sysparm_avg_fields=priority,impact&sysparm_min_fields=priority,category\
               &sysparm_max_fields=priority&sysparm_sum_fields=priority";
    let expected = json!({"result": {"stats": {
        "count": "6",
        "avg": {"priority": "2.8333", "impact": "2.0000"},
        "min": {"priority": "1", "category": "database"},
        "max": {"priority": "5"},
        "sum": {"priority": "17"},
    }}});
    for prefix in ["/api/now", "/api/now/v1", "/api/now/v2"] {
        let (status, body) = s.get(&format!("{prefix}/stats/incident?{all}")).await;
        assert_eq!((status, &body), (200, &expected), "{prefix}");
    }
    // The encoded query and plain field=value parameters filter, as in the Table API.
    let body = ok(&s, "sysparm_count=true&sysparm_avg_fields=priority&sysparm_query=priority<=3^ORDERBYnumber").await;
    assert_eq!(body, json!({"result": {"stats": {"count": "4", "avg": {"priority": "2.0000"}}}}));
    let body = ok(&s, "sysparm_count=true&category=network&impact=3").await;
    assert_eq!(body, json!({"result": {"stats": {"count": "1"}}}));
    let body = ok(&s, "sysparm_count=true&sysparm_sum_fields=priority&sysparm_query=category=nothing").await;
    assert_eq!(body, json!({"result": {"stats": {"count": "0", "sum": {"priority": ""}}}}));
    // Nothing asked: nothing computed.
    assert_eq!(ok(&s, "").await, json!({"result": {"stats": {}}}));
    assert_eq!(ok(&s, "sysparm_count=false&sysparm_avg_fields=").await, json!({"result": {"stats": {}}}));
    // Other readable tables.
    let (status, body) = s.get("/api/now/stats/sys_user_group?sysparm_count=true&sysparm_max_fields=name").await;
    assert_eq!((status, body), (200, json!({"result": {"stats": {"count": "2", "max": {"name": "Network"}}}})));
    // The history view and staging tables aggregate like any table.
    let (status, body) = s.get("/api/now/stats/sys_audit?sysparm_count=true&sysparm_group_by=tablename").await;
    assert_eq!(status, 200, "{body}");
    let tables: Vec<String> = groups(&body).into_iter().map(|g| g[0].clone()).collect();
    assert_eq!(tables, ["incident", "sys_user_group"]);
    let (status, _) = s.import(json!({"u_short_description": "Imported", "u_correlation_id": "agg:1"})).await;
    assert_eq!(status, 201);
    let (status, body) =
        s.get(&format!("/api/now/stats/{STAGING}?sysparm_count=true&sysparm_group_by=sys_import_state")).await;
    assert_eq!((status, groups(&body)), (200, expect(&[&["inserted", "1"]])), "{body}");
}

#[tokio::test]
async fn groups_with_stored_and_display_values() {
    let (s, network, database) = seeded().await;
    let body = ok(&s, "sysparm_count=true&sysparm_group_by=category&sysparm_avg_fields=priority").await;
    assert_eq!(
        body,
        json!({"result": [
            {"stats": {"count": "2", "avg": {"priority": "2.0000"}}, "groupby_fields": [{"field": "category", "value": "database"}]},
            {"stats": {"count": "1", "avg": {"priority": "5.0000"}}, "groupby_fields": [{"field": "category", "value": "hardware"}]},
            {"stats": {"count": "3", "avg": {"priority": "2.6667"}}, "groupby_fields": [{"field": "category", "value": "network"}]},
        ]})
    );
    // Several fields; integers in numeric order.
    let body = ok(&s, "sysparm_count=true&sysparm_group_by=category,priority&sysparm_query=category!=hardware").await;
    assert_eq!(
        groups(&body),
        expect(&[&["database", "2", "2"], &["network", "1", "1"], &["network", "3", "1"], &["network", "4", "1"]])
    );

    // References: sys_ids (empty first); display values are the groups' names; `all` gives both.
    let mut ids = [network.clone(), database.clone()];
    ids.sort();
    let name = |id: &str| if id == network { "Network" } else { "Database" };
    let body = ok(&s, "sysparm_count=true&sysparm_group_by=assignment_group").await;
    assert_eq!(groups(&body), expect(&[&["", "2"], &[&ids[0], "2"], &[&ids[1], "2"]]));
    let body = ok(&s, "sysparm_count=true&sysparm_group_by=assignment_group&sysparm_display_value=true").await;
    assert_eq!(groups(&body), expect(&[&["", "2"], &[name(&ids[0]), "2"], &[name(&ids[1]), "2"]]));
    let body = ok(&s, "sysparm_count=true&sysparm_group_by=assignment_group,priority&sysparm_display_value=all&sysparm_query=priority=2").await;
    assert_eq!(
        body["result"],
        json!([{"stats": {"count": "2"}, "groupby_fields": [
            {"field": "assignment_group", "value": database, "display_value": "Database"},
            {"field": "priority", "value": "2", "display_value": "2 - High"},
        ]}])
    );
    // Choice fields answer their labels.
    let body = ok(&s, "sysparm_count=true&sysparm_group_by=category&sysparm_display_value=true").await;
    assert_eq!(groups(&body), expect(&[&["Database", "2"], &["Hardware", "1"], &["Network", "3"]]));
}

#[tokio::test]
async fn having_order_limit_and_xml() {
    let (s, _, _) = seeded().await;
    let by_category = "sysparm_count=true&sysparm_group_by=category";
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("sysparm_having=count^category^>^1", vec!["database", "network"]),
        ("sysparm_having=avg^priority^>=^2.6,count^category^>=^1", vec!["hardware", "network"]),
        ("sysparm_having=sum^priority^<^5", vec!["database"]),
        ("sysparm_having=max^priority^!=^5", vec!["database", "network"]),
        ("sysparm_having=min^impact^=^3", vec!["hardware"]),
        ("sysparm_order_by=COUNT^DESC", vec!["network", "database", "hardware"]),
        ("sysparm_order_by=category^DESC", vec!["network", "hardware", "database"]),
        ("sysparm_orderby=AVG^priority^DESC", vec!["hardware", "network", "database"]),
        ("sysparm_order_by=SUM^impact,COUNT", vec!["hardware", "database", "network"]),
        ("sysparm_query=ORDERBYDESCcategory", vec!["network", "hardware", "database"]),
        ("sysparm_query=ORDERBYDESCnumber", vec!["database", "hardware", "network"]),
        ("sysparm_order_by=COUNT&sysparm_query=ORDERBYDESCcategory", vec!["hardware", "database", "network"]),
        ("sysparm_limit=2", vec!["database", "hardware"]),
    ];
    for (params, expected) in cases {
        let body = ok(&s, &format!("{by_category}&{params}")).await;
        let got: Vec<String> = groups(&body).into_iter().map(|g| g[0].clone()).collect();
        assert_eq!(got, expected, "{params}");
    }
    // A cut answer says so; a whole one does not.
    let (_, headers, body) = stats(&s, &format!("{by_category}&sysparm_limit=2")).await;
    assert_eq!((headers["x-sluice-groups-truncated"].to_str().unwrap(), groups(&body).len()), ("true", 2));
    let (_, headers, _) = stats(&s, &format!("{by_category}&sysparm_limit=3")).await;
    assert!(headers.get("x-sluice-groups-truncated").is_none());
    // HAVING without groups: the one row, or none.
    assert_eq!(
        ok(&s, "sysparm_count=true&sysparm_having=count^number^>^5").await,
        json!({"result": {"stats": {"count": "6"}}})
    );
    assert_eq!(ok(&s, "sysparm_count=true&sysparm_having=count^number^>^6").await, json!({"result": {"stats": {}}}));

    // XML, as for the Table API.
    let r = s
        .admin(s.http.get(s.url(
            "/api/now/stats/incident?sysparm_count=true&sysparm_group_by=category&sysparm_query=category=hardware",
        )))
        .header("Accept", "application/xml")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let xml = r.text().await.unwrap();
    assert!(xml.contains("<result><stats><count>1</count></stats><groupby_fields><field>category</field><value>hardware</value></groupby_fields></result>"), "{xml}");
}

#[tokio::test]
async fn errors_name_the_field_and_rights_are_the_table_apis() {
    let (s, _, _) = seeded().await;
    let (status, _, body) = stats(&s, "sysparm_count=true&sysparm_group_by=nonsense").await;
    assert_eq!(status, 400, "{body}");
    assert_envelope(&body, "invalid_aggregate");
    assert_eq!(body["error"]["detail"], "sysparm_group_by: incident has no field \"nonsense\" that can be aggregated");
    let refused = [
        ("sysparm_avg_fields=short_description", "sysparm_avg_fields: avg(short_description) needs a number field"),
        ("sysparm_sum_fields=category", "sysparm_sum_fields: sum(category) needs a number field"),
        ("sysparm_min_fields=work_notes", "sysparm_min_fields: incident has no field \"work_notes\""),
        ("sysparm_max_fields=caller_id.name", "sysparm_max_fields: incident has no field \"caller_id.name\""),
        (
            "sysparm_group_by=category&sysparm_having=avg^category^>^1",
            "sysparm_having: avg(category) needs a number field",
        ),
        ("sysparm_group_by=category&sysparm_order_by=priority", "sysparm_order_by: groups can be ordered by"),
    ];
    for (params, detail) in refused {
        let (status, _, body) = stats(&s, params).await;
        assert_eq!(status, 400, "{params}: {body}");
        assert_envelope(&body, "invalid_aggregate");
        assert!(body["error"]["detail"].as_str().unwrap().starts_with(detail), "{params}: {body}");
    }
    for params in [
        "sysparm_having=count^priority^>",
        "sysparm_having=count^priority^~^1",
        "sysparm_order_by=AVG",
        "sysparm_limit=-1",
    ] {
        let (status, _, body) = stats(&s, params).await;
        assert_eq!(status, 400, "{params}: {body}");
        assert_envelope(&body, "invalid_parameter");
    }
    // Hidden fields are not there, on any table.
    let (status, body) = s.get("/api/now/stats/sys_user?sysparm_max_fields=password_hash").await;
    assert_eq!(status, 400);
    assert_envelope(&body, "invalid_aggregate");
    let (status, body) = s.get("/api/now/stats/nope?sysparm_count=true").await;
    assert_eq!((status, body["error"]["message"].as_str()), (400, Some("Invalid table nope")));
    assert_envelope(&body, "invalid_table");

    // Rights: the Table API's read rights.
    let itil = s.add_account("helpdesk", &["itil"]);
    let loader = s.add_account("integration.alerts", &["import_set_loader"]);
    let get = |user: &'static str, password: String, table: &str| {
        s.http.get(s.url(&format!("/api/now/stats/{table}?sysparm_count=true"))).basic_auth(user, Some(password)).send()
    };
    let r = get("helpdesk", itil.clone(), "incident").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"result": {"stats": {"count": "6"}}}));
    let r = get("helpdesk", itil, "sys_audit").await.unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_envelope(&body, "forbidden");
    assert_eq!(body["error"]["message"], "Insufficient rights to query records");
    let r = get("integration.alerts", loader, "incident").await.unwrap();
    assert_eq!(r.status(), 403);
    let r = s.http.get(s.url("/api/now/stats/incident?sysparm_count=true")).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn hostile_input_is_refused_or_stays_a_value() {
    let (s, _, _) = seeded().await;
    let enc = |v: &str| {
        v.bytes()
            .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
            .collect::<String>()
    };
    let injections = [
        "category; DROP TABLE incident; --",
        "category) FROM incident; DELETE FROM incident; --",
        "\"category\"",
        "category\0",
        "1",
        "*",
    ];
    for bad in injections {
        for param in ["sysparm_group_by", "sysparm_min_fields", "sysparm_avg_fields"] {
            let (status, _, body) = stats(&s, &format!("sysparm_count=true&{param}={}", enc(bad))).await;
            assert_eq!(status, 400, "{param}={bad:?}: {body}");
            assert_envelope(&body, "invalid_aggregate");
        }
        let having = format!("count^{bad}^>^0");
        let (status, _, body) = stats(&s, &format!("sysparm_group_by=category&sysparm_having={}", enc(&having))).await;
        assert_eq!(status, 400, "{having:?}: {body}");
        let order = format!("AVG^{bad}");
        let (status, _, _) = stats(&s, &format!("sysparm_group_by=category&sysparm_order_by={}", enc(&order))).await;
        assert_eq!(status, 400, "{order:?}");
    }
    // SQL in a HAVING value is not a number; in the query it is a value that matches nothing.
    let (status, _, _) =
        stats(&s, &format!("sysparm_group_by=category&sysparm_having={}", enc("count^category^>^0) OR (1=1"))).await;
    assert_eq!(status, 400);
    let body = ok(&s, &format!("sysparm_count=true&sysparm_query={}", enc("category=x' OR '1'='1"))).await;
    assert_eq!(body, json!({"result": {"stats": {"count": "0"}}}));
    let body = ok(&s, &format!("sysparm_count=true&category={}", enc("network'; DROP TABLE incident; --"))).await;
    assert_eq!(body, json!({"result": {"stats": {"count": "0"}}}));
    // Too many terms.
    let many = (0..30).map(|i| format!("f{i}")).collect::<Vec<_>>().join(",");
    let (status, _, body) = stats(&s, &format!("sysparm_group_by={many}")).await;
    assert_eq!(status, 400);
    assert_envelope(&body, "invalid_parameter");
    // Everything is still there.
    assert_eq!(ok(&s, "sysparm_count=true").await, json!({"result": {"stats": {"count": "6"}}}));
}
