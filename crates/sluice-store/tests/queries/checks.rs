//! The query table: each `sysparm_query` with exactly the rows, in order, it must return.

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
        // ServiceNow's shorthands: `*` contains, `!*` and `NOTLIKE` do not contain, `%` ends with.
        ("short_description*disk".into(), vec![1, 7, 9]),
        ("short_description!*disk".into(), except(&[1, 7, 9])),
        ("short_descriptionNOTLIKEdisk".into(), except(&[1, 7, 9])),
        ("short_description%DB01".into(), vec![1]),
        ("correlation_id*%".into(), vec![3, 10, 12]),
        ("caller_id.user_name*A^ORcaller_id.user_name%ol".into(), vec![1, 3, 4, 7, 8, 9, 11]),
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
        ("correlation_id!=".into(), except(&[4, 6])),
        ("caller_id=".into(), vec![6, 12]),
        ("caller_id!=".into(), except(&[6, 12])),
        ("resolved_at!=".into(), vec![]),
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
        ("ORDERBYDESCimpact^ORDERBYDESCurgency^impact!=3".into(), vec![7, 11, 2, 5, 10, 3, 12, 1]),
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
        ("Category=network^a.b.c=1".into(), all()),
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
        let got = incidents(store, q(text)).await;
        if &got != expected {
            failures.push(format!("{text:?}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{} of {} queries wrong:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

/// Relative dates, `javascript:` values, `ON`/`NOTON`, `RELATIVE…` and `DATEPART`, evaluated at
/// [`now`] (10:27:32; incident n was created at 10:15:02 + n minutes; 1 and 5 were updated later).
pub async fn relative_dates<S: Store + ?Sized>(store: &S) {
    let today = "Today@javascript:gs.beginningOfToday()@javascript:gs.endOfToday()";
    let yesterday = "Yesterday@javascript:gs.beginningOfYesterday()@javascript:gs.endOfYesterday()";
    let cases: Vec<(String, Vec<usize>)> = vec![
        ("sys_created_on>=javascript:gs.daysAgoStart(1)".into(), all()),
        ("sys_created_on>=javascript:gs.daysAgoStart(0)".into(), all()),
        ("sys_created_on<javascript:gs.daysAgoStart(0)".into(), vec![]),
        ("sys_created_on>=javascript:gs.minutesAgo(3)".into(), vec![10, 11, 12]),
        ("sys_created_on>=javascript:gs.minutesAgoStart(4)".into(), vec![8, 9, 10, 11, 12]),
        ("sys_created_on<=javascript:gs.minutesAgoEnd(10)".into(), vec![1, 2]),
        ("sys_created_on>javascript:gs.hoursAgo(1)".into(), all()),
        ("sys_created_on<javascript:gs.dateGenerate('2024-05-01','10:18:00')".into(), vec![1, 2]),
        ("sys_created_onBETWEENjavascript:gs.minutesAgoStart(9)@javascript:gs.minutesAgoEnd(8)".into(), vec![3, 4]),
        (format!("sys_created_onON{today}"), all()),
        (format!("sys_created_onON{yesterday}"), vec![]),
        (format!("sys_created_onNOTON{today}"), vec![]),
        (format!("sys_created_onNOTON{yesterday}"), all()),
        (format!("resolved_atNOTON{today}"), all()),
        (format!("resolved_atON{today}"), vec![]),
        ("sys_created_onON2024-05-01@2024-05-01 10:20:00@2024-05-01 10:22:59".into(), vec![5, 6, 7]),
        ("sys_created_onNOTON@2024-05-01 10:17:00@2024-05-01 10:26:59".into(), vec![1, 12]),
        ("sys_created_onONThis week@javascript:gs.beginningOfThisWeek()@javascript:gs.endOfThisWeek()".into(), all()),
        (
            "sys_created_onONLast month@javascript:gs.beginningOfLastMonth()@javascript:gs.endOfLastMonth()".into(),
            vec![],
        ),
        ("sys_created_onRELATIVEGT@minute@ago@5".into(), vec![8, 9, 10, 11, 12]),
        ("sys_created_onRELATIVELT@minute@ago@5".into(), vec![1, 2, 3, 4, 5, 6, 7]),
        ("sys_created_onRELATIVEGE@minute@ago@5".into(), vec![8, 9, 10, 11, 12]),
        ("sys_created_onRELATIVELE@hour@ago@1".into(), vec![]),
        ("sys_created_onRELATIVEEE@minute@ago@5".into(), vec![7]),
        ("sys_created_onRELATIVEEE@dayofweek@ago@0".into(), all()),
        ("sys_created_onRELATIVEEE@dayofweek@ahead@1".into(), vec![]),
        ("sys_updated_onRELATIVEGT@minute@ahead@10".into(), vec![1, 5]),
        ("resolved_atRELATIVELT@year@ahead@1".into(), vec![]),
        // 2024-05-01 is a Wednesday in May (Q2), week 18 of 2024 counted from Mondays.
        ("sys_created_onDATEPARTWednesday@javascript:gs.datePart('dayofweek','wednesday','EE')".into(), all()),
        ("sys_created_onDATEPARTMonday@javascript:gs.datePart('dayofweek','monday','EE')".into(), vec![]),
        ("sys_created_onDATEPARTTuesday@javascript:gs.datePart('dayofweek','tuesday','GT')".into(), all()),
        ("sys_created_onDATEPARTSunday@javascript:gs.datePart('dayofweek','sunday','LT')".into(), all()),
        ("sys_created_onDATEPARTMay@javascript:gs.datePart('month','may','EE')".into(), all()),
        ("sys_created_onDATEPARTJune@javascript:gs.datePart('month','jun','GE')".into(), vec![]),
        ("sys_created_onDATEPARTQuarter 2@javascript:gs.datePart('quarter','2','EE')".into(), all()),
        ("sys_created_onDATEPART2024@javascript:gs.datePart('year','2024','EE')".into(), all()),
        ("sys_created_onDATEPART2025@javascript:gs.datePart('year','2025','LT')".into(), all()),
        ("sys_created_onDATEPARTWeek 18@javascript:gs.datePart('week','18','EE')".into(), all()),
        ("sys_created_onDATEPARTWeek 17@javascript:gs.datePart('week','17','LE')".into(), vec![]),
        ("sys_created_onDATEPART10 am hour@javascript:gs.datePart('hour','10','EE')".into(), all()),
        ("sys_updated_onDATEPARTNoon hour@javascript:gs.datePart('hour','12','EE')".into(), vec![1]),
        ("resolved_atDATEPARTMonday@javascript:gs.datePart('dayofweek','monday','LE')".into(), vec![]),
        // Not a date-time field: the condition cannot hold and is dropped, like an unknown field.
        ("short_descriptionDATEPARTMonday@javascript:gs.datePart('dayofweek','monday','EE')".into(), all()),
        (format!("category=network^short_descriptionNOTON{today}"), vec![3, 5, 10]),
        // Through a reference: the callers' records were created at 10:16:02 (alice) and later.
        (format!("caller_id.sys_created_onON{today}"), except(&[6, 12])),
        ("caller_id.sys_created_onDATEPART2023@javascript:gs.datePart('year','2023','EE')".into(), vec![]),
    ];
    let mut failures = Vec::new();
    for (text, expected) in &cases {
        let got = incidents(store, q(text)).await;
        if &got != expected {
            failures.push(format!("{text:?}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{} of {} queries wrong:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

/// Field-to-field comparisons: `SAMEAS`, `NSAMEAS` (also by a date part), `GT_FIELD` and
/// friends, `MORETHAN`/`LESSTHAN`. Incident 1 was updated 7,140 s and incident 5 1,800 s after
/// their creation; the others have equal dates.
pub async fn field_comparisons<S: Store + ?Sized>(store: &S) {
    let cases: Vec<(&str, Vec<usize>)> = vec![
        ("impactSAMEASurgency", vec![1, 2, 4, 9, 11, 12]),
        ("impactNSAMEASurgency", vec![3, 5, 6, 7, 8, 10]),
        ("impactGT_FIELDurgency", vec![5, 6, 8]),
        ("impactGT_OR_EQUALS_FIELDurgency", vec![1, 2, 4, 5, 6, 8, 9, 11, 12]),
        ("impactLT_FIELDurgency", vec![3, 7, 10]),
        ("impactLT_OR_EQUALS_FIELDurgency", vec![1, 2, 3, 4, 7, 9, 10, 11, 12]),
        ("short_descriptionSAMEASdescription", vec![]),
        ("sys_created_onSAMEASopened_at", all()),
        ("sys_created_onSAMEASsys_updated_on", except(&[1, 5])),
        ("sys_created_onNSAMEASsys_updated_on", vec![1, 5]),
        ("sys_updated_onGT_FIELDsys_created_on", vec![1, 5]),
        ("sys_created_onSAMEASsys_updated_on@hour", except(&[1])),
        ("sys_created_onNSAMEASsys_updated_on@hour", vec![1]),
        ("sys_created_onSAMEASsys_updated_on@day", all()),
        ("sys_created_onSAMEASsys_updated_on@week", all()),
        ("sys_created_onSAMEASsys_updated_on@month", all()),
        ("sys_created_onSAMEASsys_updated_on@quarter", all()),
        ("sys_created_onNSAMEASsys_updated_on@year", vec![]),
        // Empty values never compare; nor do fields of different kinds or unknown ones.
        ("sys_created_onSAMEASresolved_at", vec![]),
        ("sys_created_onNSAMEASresolved_at@day", vec![]),
        ("caller_idSAMEASassigned_to", vec![]),
        ("impactSAMEASshort_description^category=database", vec![1, 7, 12]),
        ("impactSAMEASnope^category=database", vec![1, 7, 12]),
        ("short_descriptionSAMEASsys_created_on@day^category=database", vec![1, 7, 12]),
        ("sys_updated_onMORETHANsys_created_on@hour@after@1", vec![1]),
        ("sys_updated_onMORETHANsys_created_on@minute@after@10", vec![1, 5]),
        ("sys_updated_onMORETHANsys_created_on@minute@after@30", vec![1]),
        ("sys_created_onMORETHANsys_updated_on@minute@before@10", vec![1, 5]),
        ("sys_created_onMORETHANsys_updated_on@minute@after@10", vec![]),
        ("sys_updated_onMORETHANsys_created_on@minute@before or after@60", vec![1]),
        ("sys_updated_onMORETHANsys_created_on@day@before or after@1", vec![]),
        ("sys_updated_onLESSTHANsys_created_on@hour@after@1", except(&[1])),
        ("sys_updated_onLESSTHANsys_created_on@hour@before@1", except(&[1, 5])),
        ("sys_created_onLESSTHANsys_updated_on@hour@before@1", except(&[1])),
        ("sys_updated_onLESSTHANsys_created_on@week@before or after@1", all()),
        ("sys_updated_onLESSTHANsys_created_on@minute@before or after@1", except(&[1, 5])),
        ("sys_updated_onMORETHANresolved_at@minute@after@0", vec![]),
        // Through a reference: fields of the referenced record.
        ("caller_id.sys_created_onSAMEASsys_created_on", except(&[6, 12])),
        ("caller_id.sys_created_onNSAMEASsys_created_on", vec![]),
    ];
    let mut failures = Vec::new();
    for (text, expected) in &cases {
        let got = incidents(store, q(text)).await;
        if &got != expected {
            failures.push(format!("{text:?}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{} of {} queries wrong:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

/// A choice field filtered by its label finds the records with that choice's value.
pub async fn choice_labels<S: Store + ?Sized>(store: &S) {
    let cases: Vec<(&str, Vec<usize>)> = vec![
        ("state=New", all()),
        ("state=new", all()),
        ("state=Resolved", vec![]),
        ("state!=New", vec![]),
        ("impact=1 - High", vec![1, 3, 10, 12]),
        ("impact=1", vec![1, 3, 10, 12]),
        ("impact!=1 - High", except(&[1, 3, 10, 12])),
        ("impactIN1 - High,3 - low", vec![1, 3, 4, 6, 8, 9, 10, 12]),
        ("impactNOT IN2 - Medium,3", vec![1, 3, 10, 12]),
        ("priority=1 - Critical", vec![1, 12]),
        ("category=Network", vec![3, 5, 10]),
        ("category=Inquiry / Help", vec![6, 9]),
        // A label that is no choice's stays a value (and matches nothing here).
        ("impact=High", vec![]),
        ("category=Networks", vec![]),
        // Other operators take the value as it is.
        ("impactLIKEHigh", vec![]),
    ];
    for (text, expected) in cases {
        assert_eq!(incidents(store, q(text)).await, expected, "{text}");
    }
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
        assert_eq!(incidents(store, q(&text)).await, expected, "{text}");
    }

    let mut ids: Vec<String> = records.iter().map(|r| r["sys_id"].clone()).collect();
    ids.sort();
    let mut seen = Vec::new();
    let mut last = String::new();
    loop {
        let filter = q(&format!("sys_id>{}^ORDERBYsys_id", last.to_uppercase()));
        let page = store
            .list(table(tables::INCIDENT), ListQuery { filter, limit: 5, offset: 0, count_up_to: None })
            .await
            .expect("list");
        let Some(end) = page.records.last() else { break };
        last = end["sys_id"].clone();
        seen.extend(page.records.iter().map(|r| r["sys_id"].clone()));
    }
    assert_eq!(seen, ids);
}

/// Plain `?field=value` parameters AND into every alternative of the encoded query; paging
/// follows the query's order and the total ignores it.
pub async fn parameters_and_paging<S: Store + ?Sized>(store: &S) {
    let mut filter = q("category=network^NQcategory=database^ORDERBYDESCnumber");
    filter.and_equals("impact", "1");
    assert_eq!(incidents(store, filter.clone()).await, vec![12, 10, 3, 1]);

    let incident = table(tables::INCIDENT);
    let page = |limit, offset| ListQuery { filter: q("ORDERBYDESCnumber"), limit, offset, count_up_to: None };
    let numbers = |records: &[Record]| records.iter().map(|r| r["number"].clone()).collect::<Vec<_>>();
    let p = store.list(incident.clone(), page(3, 2)).await.expect("list");
    assert_eq!((p.total, numbers(&p.records)), (12, vec![number(10), number(9), number(8)]));
    let p = store.list(incident.clone(), page(5, 10)).await.expect("list");
    assert_eq!((p.total, numbers(&p.records)), (12, vec![number(2), number(1)]));
    let p = store.list(incident.clone(), page(u64::MAX, u64::MAX)).await.expect("list");
    assert_eq!((p.total, p.records.len()), (12, 0));

    // Other tables, through their own schema.
    let (users, total) = list(store, table(tables::SYS_USER), q("user_nameLIKEa^ORDERBYDESCuser_name")).await;
    let names: Vec<&str> = users.iter().map(|u| u["user_name"].as_str()).collect();
    assert_eq!((names, total), (vec!["dave@example.com", "carol", "alice"], 3));
}

/// `DATEPART` and `SAMEAS…@part` agree with the calendar on both databases over many dates:
/// every weekday as the first and last day of a year, leap days, each hour. Incidents are written
/// with these creation times (this test's own store), then each part is asked for by its value.
pub async fn date_parts_on_many_dates<S: Store + ?Sized>(store: &S) {
    let incident = table(tables::INCIDENT);
    let mut dates: Vec<DateTime> = (1999..=2031)
        .flat_map(|y| [DateTime::from_date(y, 1, 1), DateTime::from_date(y, 12, 31)])
        .chain((0..40).map(|n| DateTime::from_unix(951_782_400 + n * 3_299_999)))
        .collect();
    dates.push(DateTime::parse("2024-02-29 23:59:59").expect("a date-time"));
    let actor = Actor { user_name: "dates".into(), sys_id: SysId::generate() };
    let mut ids = Vec::new();
    for (n, when) in dates.iter().enumerate() {
        let values = [("short_description".to_owned(), format!("date {n}"))].into_iter().collect();
        let write = TableWrite {
            table: incident.clone(),
            op: WriteOp::Insert,
            values,
            journal: Vec::new(),
            actor: actor.clone(),
            now: *when,
            reason: sluice_store::table_write::REASON,
        };
        let WriteResult::Written(record) = store.write(write).await.expect("write") else { panic!("not written") };
        assert_eq!(record["sys_created_on"], when.to_string());
        ids.push(record["sys_id"].clone());
    }
    let mut failures = Vec::new();
    for (when, id) in dates.iter().zip(&ids) {
        let (y, m, _) = when.date();
        let day_of_year = (when.unix() - DateTime::from_date(y, 1, 1).unix()).div_euclid(86_400);
        let expected = [
            ("dayofweek", i64::from(when.weekday())),
            ("month", i64::from(m)),
            ("quarter", i64::from(m.div_ceil(3))),
            ("year", y),
            // Weeks from Monday: 0 before the year's first Monday.
            ("week", (day_of_year + 7 - i64::from(when.weekday() - 1)) / 7),
            ("hour", when.seconds_of_day() / 3600),
        ];
        for (part, value) in expected {
            for (sign, matches) in [("EE", true), ("GT", false), ("LE", true)] {
                let text =
                    format!("sys_id={id}^sys_created_onDATEPARTx@javascript:gs.datePart('{part}','{value}','{sign}')");
                let (found, _) = list(store, incident.clone(), q(&text)).await;
                if found.len() != usize::from(matches) {
                    failures.push(format!("{when} {part} {sign} {value}: found {}", found.len()));
                }
            }
        }
        let same_day = format!("sys_id={id}^sys_created_onSAMEASsys_updated_on@day^sys_created_onSAMEASopened_at@week");
        if list(store, incident.clone(), q(&same_day)).await.0.len() != 1 {
            failures.push(format!("{when}: not the same day and week as itself"));
        }
    }
    assert!(failures.is_empty(), "{} wrong:\n{}", failures.len(), failures.join("\n"));
}
