use super::Operator::*;
use super::*;

/// Sunday 2026-12-06 15:42:17 UTC.
fn now() -> DateTime {
    DateTime::parse("2026-12-06 15:42:17").unwrap()
}

fn parse(text: &str) -> EncodedQuery {
    super::parse(text, now()).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn refused(text: &str) -> QueryError {
    super::parse(text, now()).expect_err(text)
}

fn cond(field: &str, op: Operator) -> Condition {
    Condition { field: FieldPath(field.split('.').map(str::to_owned).collect()), op }
}

fn and(conditions: Vec<Condition>) -> Group {
    Group { clauses: conditions.into_iter().map(|c| Clause { any_of: vec![c] }).collect() }
}

fn s(v: &str) -> String {
    v.to_owned()
}

fn only(field: &str, op: Operator) -> EncodedQuery {
    EncodedQuery { groups: vec![and(vec![cond(field, op)])], ..Default::default() }
}

#[test]
fn empty_query_matches_everything() {
    assert_eq!(parse(""), EncodedQuery::default());
    assert_eq!(parse("^^"), EncodedQuery::default());
    assert_eq!(parse("").to_string(), "");
}

#[test]
fn every_operator() {
    let cases = [
        ("impact=1", only("impact", Eq(s("1")))),
        ("short_description!=foo", only("short_description", Ne(s("foo")))),
        ("short_descriptionLIKEsap", only("short_description", Like(s("sap")))),
        ("short_descriptionNOT LIKEsap", only("short_description", NotLike(s("sap")))),
        ("numberSTARTSWITHINC", only("number", StartsWith(s("INC")))),
        ("numberENDSWITH01", only("number", EndsWith(s("01")))),
        ("stateIN1,2,3", only("state", In(vec![s("1"), s("2"), s("3")]))),
        ("stateNOT IN6,7", only("state", NotIn(vec![s("6"), s("7")]))),
        ("assigned_toISEMPTY", only("assigned_to", IsEmpty)),
        ("assigned_toISNOTEMPTY", only("assigned_to", IsNotEmpty)),
        ("descriptionEMPTYSTRING", only("description", EmptyString)),
        ("descriptionANYTHING", only("description", Anything)),
        ("priority<3", only("priority", Lt(s("3")))),
        ("priority<=3", only("priority", Le(s("3")))),
        ("priority>3", only("priority", Gt(s("3")))),
        ("priority>=3", only("priority", Ge(s("3")))),
        ("impactBETWEEN1@2", only("impact", Between(s("1"), s("2")))),
        ("sys_updated_on>2024-01-01 00:00:00", only("sys_updated_on", Gt(s("2024-01-01 00:00:00")))),
        ("caller_id.user_name=bob", only("caller_id.user_name", Eq(s("bob")))),
    ];
    for (text, expected) in cases {
        let parsed = parse(text);
        assert_eq!(parsed, expected, "{text}");
        assert_eq!(parsed.to_string(), text, "canonical form of {text}");
    }
}

#[test]
fn values_are_literal_up_to_the_next_caret() {
    assert_eq!(parse("a=x=y"), only("a", Eq(s("x=y"))));
    assert_eq!(parse("a=="), only("a", Eq(s("="))));
    assert_eq!(parse("a="), only("a", Eq(s(""))));
    assert_eq!(parse("a!==x"), only("a", Ne(s("=x"))));
    assert_eq!(parse("aLIKE50%_off*'\"\\\0"), only("a", Like(s("50%_off*'\"\\\0"))));
    assert_eq!(parse("aIN"), only("a", In(vec![s("")])));
    assert_eq!(parse("aIN1,,2"), only("a", In(vec![s("1"), s(""), s("2")])));
    assert_eq!(parse("aBETWEENx@y@z"), only("a", Between(s("x"), s("y@z"))));
    assert_eq!(parse("a=caf\u{e9} ORb=1"), only("a", Eq(s("caf\u{e9} ORb=1"))));
}

#[test]
fn and_or_and_new_query() {
    let q = parse("a=1^b=2^ORc=3^NQd=4^ORe=5^f=6");
    let expected = EncodedQuery {
        groups: vec![
            Group {
                clauses: vec![
                    Clause { any_of: vec![cond("a", Eq(s("1")))] },
                    Clause { any_of: vec![cond("b", Eq(s("2"))), cond("c", Eq(s("3")))] },
                ],
            },
            Group {
                clauses: vec![
                    Clause { any_of: vec![cond("d", Eq(s("4"))), cond("e", Eq(s("5")))] },
                    Clause { any_of: vec![cond("f", Eq(s("6")))] },
                ],
            },
        ],
        ..Default::default()
    };
    assert_eq!(q, expected);
    assert_eq!(q.to_string(), "a=1^b=2^ORc=3^NQd=4^ORe=5^f=6");
    // `^OR` first: nothing to OR with, so it starts the first clause.
    assert_eq!(parse("ORa=1"), only("a", Eq(s("1"))));
    assert_eq!(parse("NQa=1"), only("a", Eq(s("1"))));
}

#[test]
fn ordering_terms_anywhere() {
    let q = parse("ORDERBYnumber^active=true^ORDERBYDESCcategory^ORDERBYdescription");
    assert_eq!(q.groups, only("active", Eq(s("true"))).groups);
    assert_eq!(
        q.order_by,
        vec![
            OrderBy { field: s("number"), descending: false },
            OrderBy { field: s("category"), descending: true },
            OrderBy { field: s("description"), descending: false },
        ]
    );
    assert_eq!(q.to_string(), "active=true^ORDERBYnumber^ORDERBYDESCcategory^ORDERBYdescription");
    assert_eq!(parse("ORDERBY").ignored, vec![s("ORDERBY")]);
    assert_eq!(parse("ORDERBYDESC").ignored, vec![s("ORDERBYDESC")]);
    assert_eq!(parse("ORDERBYNumber").ignored, vec![s("ORDERBYNumber")]);
}

#[test]
fn goto_prefix_and_end_marker() {
    assert_eq!(parse("GOTOnumber=INC0010001"), only("number", Eq(s("INC0010001"))));
    assert_eq!(parse("GOTOnumber=INC0010001^EQ"), only("number", Eq(s("INC0010001"))));
    assert_eq!(parse("a=1^ORGOTOb=2").groups[0].clauses[0].any_of.len(), 2);
}

#[test]
fn terms_without_a_field_name_are_skipped_and_recorded() {
    let q = parse("active=true^Bad=1^a.b.c=1^.a=1^a.=1^NQ^OR");
    assert_eq!(q.groups, vec![and(vec![cond("active", Eq(s("true")))])]);
    assert_eq!(q.ignored, vec![s("Bad=1"), s("a.b.c=1"), s(".a=1"), s("a.=1"), s("NQ"), s("OR")]);
    assert_eq!(parse(&q.to_string()), q);
}

#[test]
fn shorthands_and_new_operators() {
    let cases = [
        ("short_description*disk", only("short_description", Like(s("disk")))),
        ("short_description!*disk", only("short_description", NotLike(s("disk")))),
        ("short_descriptionNOTLIKEdisk", only("short_description", NotLike(s("disk")))),
        ("number%01", only("number", EndsWith(s("01")))),
        ("correlation_id!=", only("correlation_id", Ne(s("")))),
        (
            "caller_idSAMEASassigned_to",
            only("caller_id", Field { sign: Sign::Eq, other: s("assigned_to"), part: None }),
        ),
        ("activeNSAMEASmade_sla", only("active", Field { sign: Sign::Ne, other: s("made_sla"), part: None })),
        (
            "sys_created_onSAMEASsys_updated_on@day",
            only(
                "sys_created_on",
                Field { sign: Sign::Eq, other: s("sys_updated_on"), part: Some(super::DatePart::DayOfMonth) },
            ),
        ),
        ("impactGT_FIELDurgency", only("impact", Field { sign: Sign::Gt, other: s("urgency"), part: None })),
        ("impactGT_OR_EQUALS_FIELDurgency", only("impact", Field { sign: Sign::Ge, other: s("urgency"), part: None })),
        ("impactLT_FIELDurgency", only("impact", Field { sign: Sign::Lt, other: s("urgency"), part: None })),
        ("impactLT_OR_EQUALS_FIELDurgency", only("impact", Field { sign: Sign::Le, other: s("urgency"), part: None })),
        (
            "sla_dueMORETHANactivity_due@day@before@1",
            only(
                "sla_due",
                Apart { more: true, other: s("activity_due"), unit: Unit::Day, direction: Direction::Before, count: 1 },
            ),
        ),
        (
            "sla_dueLESSTHANactivity_due@hour@before or after@3",
            only(
                "sla_due",
                Apart {
                    more: false,
                    other: s("activity_due"),
                    unit: Unit::Hour,
                    direction: Direction::Either,
                    count: 3,
                },
            ),
        ),
        (
            "sys_created_onDATEPARTMonday@javascript:gs.datePart('dayofweek','monday','EE')",
            only("sys_created_on", Operator::DatePart { part: super::DatePart::DayOfWeek, sign: Sign::Eq, value: 1 }),
        ),
        (
            "opened_atDATEPARTNoon hour@javascript:gs.datePart('hour', '12','GE')",
            only("opened_at", Operator::DatePart { part: super::DatePart::Hour, sign: Sign::Ge, value: 12 }),
        ),
    ];
    for (text, expected) in cases {
        let parsed = parse(text);
        assert_eq!(parsed, expected, "{text}");
        assert_eq!(parse(&parsed.to_string()), parsed, "canonical form of {text}: {parsed}");
    }
}

#[test]
fn relative_dates_become_literal_date_times() {
    let cases = [
        ("sys_created_on>=javascript:gs.daysAgoStart(1)", Ge(s("2026-12-05 00:00:00"))),
        ("sys_created_on<javascript:gs.beginningOfToday()", Lt(s("2026-12-06 00:00:00"))),
        ("sys_created_on=javascript:gs.dateGenerate('2026-01-01','00:00:00')", Eq(s("2026-01-01 00:00:00"))),
        (
            "sys_created_onONToday@javascript:gs.beginningOfToday()@javascript:gs.endOfToday()",
            Between(s("2026-12-06 00:00:00"), s("2026-12-06 23:59:59")),
        ),
        (
            "sys_created_onON2017-05-01@javascript:gs.dateGenerate('2017-05-01','start')@javascript:gs.dateGenerate('2017-05-01','end')",
            Between(s("2017-05-01 00:00:00"), s("2017-05-01 23:59:59")),
        ),
        (
            "sys_created_onNOTONThis week@javascript:gs.beginningOfThisWeek()@javascript:gs.endOfThisWeek()",
            NotBetween(s("2026-11-30 00:00:00"), s("2026-12-06 23:59:59")),
        ),
        (
            "sys_created_onON@2026-12-01 00:00:00@2026-12-02 00:00:00",
            Between(s("2026-12-01 00:00:00"), s("2026-12-02 00:00:00")),
        ),
        (
            "sys_created_onBETWEENjavascript:gs.daysAgoStart(1)@javascript:gs.daysAgoEnd(0)",
            Between(s("2026-12-05 00:00:00"), s("2026-12-06 23:59:59")),
        ),
        ("sys_created_onRELATIVEGT@hour@ago@3", Gt(s("2026-12-06 12:42:17"))),
        ("sys_created_onRELATIVEGE@minute@ahead@60", Ge(s("2026-12-06 16:42:17"))),
        ("sys_created_onRELATIVELT@dayofweek@ago@30", Lt(s("2026-11-06 15:42:17"))),
        ("sys_created_onRELATIVELE@month@ago@1", Le(s("2026-11-06 15:42:17"))),
        ("sys_created_onRELATIVEEE@dayofweek@ago@1", Between(s("2026-12-05 00:00:00"), s("2026-12-05 23:59:59"))),
        ("sys_created_onRELATIVEEE@year@ahead@1", Between(s("2027-01-01 00:00:00"), s("2027-12-31 23:59:59"))),
        ("stateINjavascript:gs.daysAgo(0),2", In(vec![s("2026-12-06 15:42:17"), s("2")])),
    ];
    for (text, op) in cases {
        let parsed = parse(text);
        assert_eq!(parsed.groups[0].clauses[0].any_of[0].op, op, "{text}");
        assert_eq!(parse(&parsed.to_string()), parsed, "canonical form of {text}: {parsed}");
    }
}

#[test]
fn refused_terms_are_named() {
    let cases: &[(&str, Problem)] = &[
        ("caller_idFOObar", Problem::UnknownOperator(s("FOO"))),
        ("active=true^priority~3", Problem::UnknownOperator(s("~"))),
        ("x", Problem::NoOperator),
        ("stateVALCHANGES", Problem::ConditionOnly("VALCHANGES")),
        ("stateCHANGESFROM4^EQ", Problem::ConditionOnly("CHANGESFROM")),
        ("a=1^ORstateCHANGESTO4", Problem::ConditionOnly("CHANGESTO")),
        ("sys_class_nameINSTANCEOFtask", Problem::Unsupported("INSTANCEOF (table hierarchies)")),
        ("parentIN_HIERARCHYabc", Problem::Unsupported("IN_HIERARCHY (hierarchical references)")),
        ("caller_idDYNAMIC90d1921e5f510100a9ad2572f2b477fe", Problem::Unsupported("DYNAMIC (dynamic filter options)")),
        ("123TEXTQUERY321=disk", Problem::Unsupported("keyword search (123TEXTQUERY321)")),
        ("active=true^RLQUERYtask_sla.task,>=1^ENDRLQUERY", Problem::Unsupported("RLQUERY (related-list conditions)")),
        ("caller_id=javascript:gs.getUserID()", Problem::InvalidValue(s("unknown function gs.getUserID"))),
        (
            "sys_created_on>javascript:gs.daysAgo(1);drop table incident",
            Problem::InvalidValue(s("text after the call")),
        ),
        ("assigned_toISEMPTYx", Problem::InvalidValue(s("ISEMPTY takes no value"))),
        ("impactBETWEEN1", Problem::InvalidValue(s("BETWEEN takes low@high"))),
        ("sys_created_onONToday", Problem::InvalidValue(s("ON and NOTON take label@start@end"))),
        ("sys_created_onON@yesterday@today", Problem::InvalidValue(s("\"yesterday\" is not a date-time"))),
        (
            "sla_dueRELATIVEGT@hour@ago",
            Problem::InvalidValue(s("RELATIVE takes <GT|GE|LT|LE|EE>@<unit>@<ago|ahead>@<count>")),
        ),
        (
            "sla_dueRELATIVEGT@fortnight@ago@1",
            Problem::InvalidValue(s(
                "unknown unit \"fortnight\" (RELATIVE takes <GT|GE|LT|LE|EE>@<unit>@<ago|ahead>@<count>)",
            )),
        ),
        ("sla_dueRELATIVEGT@hour@ago@-1", Problem::InvalidValue(s("\"-1\" is not a count from 0 to 100000"))),
        ("sla_dueRELATIVEGT@year@ago@99999", Problem::InvalidValue(s("the date is out of range (years 0001 to 9999)"))),
        ("sla_dueDATEPARTMonday", Problem::InvalidValue(s("DATEPART takes <label>@javascript:gs.datePart(…)"))),
        ("caller_idSAMEASAssigned", Problem::InvalidValue(s("\"Assigned\" is not a field name"))),
        (
            "sla_dueMORETHANdue@month@before@1",
            Problem::InvalidValue(s(
                "MORETHAN and LESSTHAN take <field>@<minute|hour|day|week>@<before|after|before or after>@<count>",
            )),
        ),
    ];
    for (text, problem) in cases {
        let e = refused(text);
        assert_eq!(&e.problem, problem, "{text}");
        assert!(text.contains(e.term.as_str()), "{text}: the error names the term, not {:?}", e.term);
    }
    let long = format!("a~{}", "x".repeat(1000));
    let e = refused(&long);
    assert_eq!(e.term.chars().count(), MAX_TERM_SHOWN + 1, "cut, with an ellipsis");
    assert_eq!(e.to_string(), format!("unknown operator \"~\" in the query term {:?}", e.term));
}

#[test]
fn and_equals_joins_every_group() {
    let mut q = EncodedQuery::default();
    q.and_equals("number", "INC0010001");
    assert_eq!(q, only("number", Eq(s("INC0010001"))));

    let mut q = parse("a=1^NQb=2^ORc=3^ORDERBYa");
    q.and_equals("active", "true");
    assert_eq!(q.to_string(), "a=1^active=true^NQb=2^ORc=3^active=true^ORDERBYa");
    assert_eq!(parse(&q.to_string()), q);
}

#[test]
fn field_paths() {
    assert_eq!(FieldPath::parse("caller_id.user_name").map(|p| p.0.len()), Some(2));
    assert_eq!(FieldPath::parse("u_field_2").map(|p| p.0.len()), Some(1));
    for bad in ["", ".", "a..b", "a.b.c", "A", "a-b", "a b"] {
        assert_eq!(FieldPath::parse(bad), None, "{bad}");
    }
    assert_eq!(FieldPath::field("number").to_string(), "number");
}

mod properties {
    use proptest::prelude::*;

    use super::super::*;

    fn parse(text: &str) -> Result<EncodedQuery, QueryError> {
        super::super::parse(text, super::now())
    }

    /// Strings made of the pieces queries are made of, so the interesting paths are hit often.
    fn query_soup() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("^"),
            Just("^OR"),
            Just("^NQ"),
            Just("ORDERBY"),
            Just("ORDERBYDESC"),
            Just("GOTO"),
            Just("RLQUERY"),
            Just("ENDRLQUERY"),
            Just("EQ"),
            Just("a"),
            Just("caller_id"),
            Just("."),
            Just("_"),
            Just("="),
            Just("!="),
            Just("<"),
            Just("<="),
            Just(">"),
            Just(">="),
            Just("LIKE"),
            Just("NOT LIKE"),
            Just("NOT IN"),
            Just("IN"),
            Just("STARTSWITH"),
            Just("ENDSWITH"),
            Just("ISEMPTY"),
            Just("ISNOTEMPTY"),
            Just("EMPTYSTRING"),
            Just("ANYTHING"),
            Just("BETWEEN"),
            Just("INSTANCEOF"),
            Just("*"),
            Just("!*"),
            Just("NOTLIKE"),
            Just("ON"),
            Just("NOTON"),
            Just("RELATIVEGT@hour@ago@3"),
            Just("RELATIVEEE@month@ahead@1"),
            Just("SAMEAS"),
            Just("NSAMEAS"),
            Just("@day"),
            Just("GT_FIELD"),
            Just("MORETHAN"),
            Just("@hour@after@2"),
            Just("DATEPART"),
            Just("javascript:gs.daysAgoStart(1)"),
            Just("javascript:gs.datePart('hour','3','LT')"),
            Just("javascript:gs.endOfToday()"),
            Just("2026-01-01 00:00:00"),
            Just("@"),
            Just(","),
            Just("%"),
            Just("'"),
            Just("\\"),
            Just("\0"),
            Just("1"),
            Just("X"),
            Just("\u{e9}"),
        ];
        prop::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
    }

    fn name() -> impl Strategy<Value = String> {
        "[a-z0-9_]{1,8}"
    }

    fn path() -> impl Strategy<Value = FieldPath> {
        prop::collection::vec(name(), 1..=MAX_PATH_SEGMENTS).prop_map(FieldPath)
    }

    /// Any text a value can hold: everything but the term separator.
    fn value() -> impl Strategy<Value = String> {
        "[^^]{0,8}"
    }

    fn op() -> impl Strategy<Value = Operator> {
        // An ordering value starting with `=` would read back as the longer operator (`<` +
        // `=x` is `<=x`), and the parser never produces one.
        let ordered = || "([^^=][^^]{0,7})?";
        let item = || "[^^,]{0,6}";
        prop_oneof![
            value().prop_map(Operator::Eq),
            value().prop_map(Operator::Ne),
            value().prop_map(Operator::Like),
            value().prop_map(Operator::NotLike),
            value().prop_map(Operator::StartsWith),
            value().prop_map(Operator::EndsWith),
            prop::collection::vec(item(), 1..4).prop_map(Operator::In),
            prop::collection::vec(item(), 1..4).prop_map(Operator::NotIn),
            Just(Operator::IsEmpty),
            Just(Operator::IsNotEmpty),
            Just(Operator::EmptyString),
            Just(Operator::Anything),
            ordered().prop_map(Operator::Lt),
            ordered().prop_map(Operator::Le),
            ordered().prop_map(Operator::Gt),
            ordered().prop_map(Operator::Ge),
            ("[^^@]{0,6}", value()).prop_map(|(low, high)| Operator::Between(low, high)),
            (0i64..4_000_000_000, 0i64..4_000_000_000).prop_map(|(a, b)| {
                Operator::NotBetween(DateTime::from_unix(a).to_string(), DateTime::from_unix(b).to_string())
            }),
            (
                name(),
                prop::option::of(prop_oneof![Just(DatePart::Hour), Just(DatePart::DayOfMonth), Just(DatePart::Year)])
            )
                .prop_map(|(other, part)| Operator::Field { sign: Sign::Ne, other, part }),
            name().prop_map(|other| Operator::Field { sign: Sign::Le, other, part: None }),
            (0u32..24).prop_map(|value| Operator::DatePart { part: DatePart::Hour, sign: Sign::Gt, value }),
            (1u32..8).prop_map(|value| Operator::DatePart { part: DatePart::DayOfWeek, sign: Sign::Eq, value }),
            (1u32..13).prop_map(|value| Operator::DatePart { part: DatePart::Month, sign: Sign::Le, value }),
            (name(), 0i64..1000).prop_map(|(other, count)| Operator::Apart {
                more: count % 2 == 0,
                other,
                unit: Unit::Week,
                direction: Direction::Either,
                count,
            }),
        ]
    }

    fn tree() -> impl Strategy<Value = EncodedQuery> {
        let condition = (path(), op()).prop_map(|(field, op)| Condition { field, op });
        let clause = prop::collection::vec(condition, 1..3).prop_map(|any_of| Clause { any_of });
        let group = prop::collection::vec(clause, 1..4).prop_map(|clauses| Group { clauses });
        let order = (name(), any::<bool>()).prop_map(|(field, descending)| OrderBy { field, descending });
        (prop::collection::vec(group, 0..3), prop::collection::vec(order, 0..3))
            .prop_map(|(groups, order_by)| EncodedQuery { groups, order_by, ignored: Vec::new() })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn never_panics_and_round_trips_on_any_text(text in any::<String>()) {
            if let Ok(q) = parse(&text) {
                prop_assert_eq!(parse(&q.to_string()), Ok(q));
            }
        }

        #[test]
        fn round_trips_on_query_like_text(text in query_soup()) {
            if let Ok(q) = parse(&text) {
                let canonical = q.to_string();
                prop_assert_eq!(parse(&canonical), Ok(q), "canonical form {:?}", canonical);
                prop_assert_eq!(parse(&canonical).map(|q| q.to_string()), Ok(canonical));
            }
        }

        #[test]
        fn every_tree_reads_back_from_its_text(q in tree()) {
            let text = q.to_string();
            prop_assert_eq!(parse(&text), Ok(q), "text {:?}", text);
        }

        #[test]
        fn and_equals_keeps_round_tripping(text in query_soup(), v in "[^^]{0,6}") {
            if let Ok(mut q) = parse(&text) {
                q.and_equals("active", &v);
                prop_assert!(q.groups.iter().all(|g| g.clauses.last().map(|c| &c.any_of[0].field.0[0]) == Some(&"active".to_owned())));
                prop_assert_eq!(parse(&q.to_string()), Ok(q));
            }
        }
    }
}
