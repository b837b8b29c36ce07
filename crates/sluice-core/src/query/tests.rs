use super::Operator::*;
use super::*;

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
fn unreadable_terms_are_skipped_and_recorded() {
    let q = parse("active=true^Bad=1^123TEXTQUERY321=disk^caller_id=javascript:gs.getUserID()^a.b.c=1^x");
    assert_eq!(
        q.groups,
        vec![and(vec![cond("active", Eq(s("true"))), cond("caller_id", Eq(s("javascript:gs.getUserID()")))])]
    );
    assert_eq!(q.ignored, vec![s("Bad=1"), s("123TEXTQUERY321=disk"), s("a.b.c=1"), s("x")]);
    // Unsupported operators, including those whose token begins with a supported one.
    for text in [
        "caller_idSAMEASassigned_to",
        "sys_class_nameINSTANCEOFtask",
        "parentIN_HIERARCHYabc",
        "sla_dueRELATIVEGT@hour@ago@1",
        "assigned_toISEMPTYx",
        "impactBETWEEN1",
        "a*b",
        ".a=1",
        "a.=1",
        "NQ",
        "OR",
    ] {
        let q = parse(text);
        assert_eq!((q.groups.len(), q.ignored.clone()), (0, vec![s(text)]), "{text}");
        assert_eq!(q.to_string(), text);
    }
}

#[test]
fn related_list_queries_are_skipped_whole() {
    let q = parse("active=true^RLQUERYtask_sla.task,>=1^sla=x^ENDRLQUERY^impact=1");
    assert_eq!(q.groups, vec![and(vec![cond("active", Eq(s("true"))), cond("impact", Eq(s("1")))])]);
    assert_eq!(q.ignored, vec![s("RLQUERYtask_sla.task,>=1^sla=x^ENDRLQUERY")]);
    assert_eq!(parse(&q.to_string()), q);
    let open = parse("a=1^RLQUERYx^b=2");
    assert_eq!(open.ignored, vec![s("RLQUERYx^b=2")]);
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
            let q = parse(&text);
            prop_assert_eq!(parse(&q.to_string()), q);
        }

        #[test]
        fn round_trips_on_query_like_text(text in query_soup()) {
            let q = parse(&text);
            let canonical = q.to_string();
            prop_assert_eq!(&parse(&canonical), &q, "canonical form {:?}", canonical);
            prop_assert_eq!(parse(&canonical).to_string(), canonical);
        }

        #[test]
        fn every_tree_reads_back_from_its_text(q in tree()) {
            let text = q.to_string();
            prop_assert_eq!(parse(&text), q, "text {:?}", text);
        }

        #[test]
        fn and_equals_keeps_round_tripping(text in query_soup(), v in "[^^]{0,6}") {
            let mut q = parse(&text);
            q.and_equals("active", &v);
            prop_assert!(q.groups.iter().all(|g| g.clauses.last().map(|c| &c.any_of[0].field.0[0]) == Some(&"active".to_owned())));
            prop_assert_eq!(parse(&q.to_string()), q);
        }
    }
}
