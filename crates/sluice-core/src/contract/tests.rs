use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::staging::stage;
use crate::tables::Catalog;

/// Every kind of field and rule, nested sources, an array position, two fields on one place, a
/// place that is both a value and an object, an escaped key, defaults and value maps.
const CONTRACT: &str = r#"
name = "u_contract_test"
version = "7"
staging_table = "u_contract_test"
target_table = "incident"

[[fields]]
name = "u_summary"
label = "Summary"
type = "string"
required = true
max_length = 5
source = "/a/s"

[[fields]]
name = "u_alias"
type = "reference"
source = "/a/s"

[[fields]]
name = "u_id"
type = "string"
pattern = "AL-[0-9]+"
max_length = 8
source = "/a/b/id"

[[fields]]
name = "u_choice"
type = "choice"
choices = ["1", "2", "3", "true", "x y", "1.5", " pad"]
source = "/c"

[[fields]]
name = "u_level"
type = "choice"
choices = ["1", "2", "3"]
default = "1"
source = "/level"

[[fields]]
name = "u_count"
type = "integer"
max_length = 3
source = "/n/0"

[[fields]]
name = "u_total"
type = "integer"
required = true
source = "/n/1"

[[fields]]
name = "u_flag"
type = "boolean"
source = "/f/on"

[[fields]]
name = "u_node"
type = "string"
source = "/f"

[[fields]]
name = "u_when"
type = "date_time"
source = "/when"

[[fields]]
name = "u_sev"
type = "string"
source = "/sev"

[[fields]]
name = "u_long"
type = "string"
max_length = 1200
source = "/long"

[[fields]]
name = "u_tiny"
type = "string"
max_length = 1

[[fields]]
name = "u_top"
type = "string"
required = true
default = "x"

[[fields]]
name = "u_num"
type = "integer"
source = "/x~1y"

[transform]
name = "Contract test"

[[transform.field_map]]
source = "u_summary"
target = "short_description"

[[transform.field_map]]
source = "u_level"
target = "impact"
value_map = { "1" = "3", "3" = "1" }

[[transform.field_map]]
source = "u_sev"
target = "urgency"
value_map = { critical = "1", Major = "2", "3" = "3", "TRUE" = "3", "1e-7" = "2" }

[[transform.field_map]]
source = "u_num"
target = "severity"
value_map = { "5" = "2", "-7" = "1", "0" = "3" }

[[transform.field_map]]
source = "u_id"
target = "correlation_id"

[[transform.field_map]]
source = "u_long"
target = "description"
"#;

fn contract_test() -> Integration {
    Integration::parse(CONTRACT, "contract.toml", &Catalog::builtin()).unwrap_or_else(|p| panic!("{p:#?}"))
}

/// Compiled once for the property test.
static CONTRACT_TEST: std::sync::LazyLock<Integration> = std::sync::LazyLock::new(contract_test);

fn base() -> Value {
    json!({
        "a": {"s": "abc", "b": {"id": "AL-1"}},
        "c": "2",
        "level": "3",
        "n": [12, 5],
        "f": "node",
        "when": "2024-01-01 00:00:00",
        "sev": "critical",
        "long": "text",
        "u_tiny": "x",
        "u_top": "t",
        "x/y": 5,
        "unknown": {"ignored": true}
    })
}

/// (field, code, path) of each error.
fn summary(errors: &[FieldError]) -> Vec<(String, &'static str, String)> {
    errors.iter().map(|e| (e.field.clone(), e.code.as_str(), e.path.clone().unwrap_or_default())).collect()
}

fn check(i: &Integration, payload: &Value) -> Result<Plan, Vec<FieldError>> {
    let object = payload.as_object().unwrap();
    verdict(i, object, &stage(i, object))
}

#[test]
fn the_schema_is_draft_2020_12_and_valid_against_its_meta_schema() {
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/examples");
    let mut all = Integration::load_dir(std::path::Path::new(examples), &Catalog::builtin()).unwrap();
    all.push(Integration::builtin_default(&Catalog::builtin()));
    all.push(contract_test());
    for i in &all {
        let schema = i.contract.schema();
        assert_eq!(schema["$schema"], DRAFT_2020_12);
        jsonschema::meta::validate(schema).unwrap_or_else(|e| panic!("{}: {e}", i.name()));
        // Any validator reads it: no sluice-specific keywords, no references to fetch.
        jsonschema::draft202012::new(schema).unwrap();
    }
    let schema = contract_test().contract.schema().clone();
    assert_eq!(schema["required"], json!(["a", "n"]));
    assert_eq!(schema["properties"]["a"]["required"], json!(["s"]));
    assert_eq!(schema["properties"]["n"]["type"], json!(["object", "array"]));
    assert_eq!(schema["properties"]["n"]["minItems"], 2);
    assert_eq!(schema["properties"]["a"]["properties"]["s"]["description"], "Read by the fields u_summary, u_alias.");
    assert_eq!(schema["properties"]["level"]["default"], "1");
    assert_eq!(schema["properties"]["x/y"]["title"], "u_num");
    assert_eq!(schema["additionalProperties"], true);
}

#[test]
fn white_space_in_the_schema_is_what_trim_removes() {
    let v = jsonschema::draft202012::options()
        .with_pattern_options(jsonschema::PatternOptions::regex())
        .build(&json!({"pattern": format!("^{WS}$")}))
        .unwrap();
    for c in (0..0x3100).chain([0x180E, 0xFEFF, 0x1_0000]).filter_map(char::from_u32) {
        assert_eq!(v.is_valid(&json!(c.to_string())), c.is_whitespace(), "U+{:04X}", c as u32);
    }
}

#[test]
fn errors_carry_the_path_of_their_value_and_one_code_per_field() {
    let i = contract_test();
    assert!(check(&i, &base()).is_ok());
    type Case = (Value, Vec<(&'static str, &'static str, &'static str)>);
    let cases: Vec<Case> = vec![
        (json!({}), vec![("u_summary", "field_required", "/a/s"), ("u_total", "field_required", "/n/1")]),
        (json!({"a": "flat", "n": {"1": "  7 "}}), vec![("u_summary", "field_required", "/a/s")]),
        (
            json!({"a": {"s": "  abcde \t", "b": {"id": " AL-7 "}}, "n": [null, 2], "x/y": " +06 "}),
            vec![("u_num", "invalid_choice", "/x~1y")],
        ),
        (
            json!({"a": {"s": "abcdef", "b": {"id": "AL-x"}}, "n": [1234, 1.0], "c": 2.0, "f": {"on": "yes"}}),
            vec![
                ("u_summary", "field_too_long", "/a/s"),
                ("u_id", "pattern_mismatch", "/a/b/id"),
                ("u_count", "field_too_long", "/n/0"),
                ("u_flag", "wrong_type", "/f/on"),
                ("u_node", "wrong_type", "/f"),
            ],
        ),
        (
            json!({"a": {"s": null}, "n": [0, "9223372036854775808"], "c": " pad", "when": "2023-02-29 00:00:00",
                   "level": "LOW", "u_tiny": false}),
            vec![
                ("u_summary", "field_required", "/a/s"),
                ("u_choice", "invalid_choice", "/c"),
                ("u_level", "invalid_choice", "/level"),
                ("u_total", "wrong_type", "/n/1"),
                ("u_when", "wrong_type", "/when"),
                ("u_tiny", "field_too_long", "/u_tiny"),
            ],
        ),
        (json!({"a": {"s": "a"}, "n": [1, 2], "sev": "MAJOR ", "level": " 3", "x/y": -7.0, "c": "x y"}), vec![]),
        (json!({"a": {"s": "a"}, "n": [1, 2], "sev": "minor"}), vec![("u_sev", "invalid_choice", "/sev")]),
    ];
    for (payload, expected) in cases {
        let got = match check(&i, &payload) {
            Ok(_) => Vec::new(),
            Err(errors) => summary(&errors),
        };
        let expected: Vec<(String, &str, String)> =
            expected.into_iter().map(|(f, c, p)| (f.to_owned(), c, p.to_owned())).collect();
        assert_eq!(got, expected, "{payload}");
    }
}

#[test]
fn the_schema_takes_numbers_and_booleans_where_the_field_does() {
    let i = contract_test();
    // The fields the schema refuses, checked against what sluice refuses.
    let fails = |patch: Value| -> Vec<String> {
        let mut p = base();
        p.as_object_mut().unwrap().extend(patch.as_object().unwrap().clone());
        let schema = schema_errors(&i, &p);
        let typed = check(&i, &p).err().unwrap_or_default();
        assert_eq!(summary(&schema), summary(&typed), "{p}");
        schema.into_iter().map(|e| e.field).collect()
    };
    let none: Vec<String> = Vec::new();
    assert_eq!(fails(json!({"c": 2})), none);
    assert_eq!(fails(json!({"c": 2.0})), none);
    assert_eq!(fails(json!({"c": 1.5})), none);
    assert_eq!(fails(json!({"c": true})), none);
    assert_eq!(fails(json!({"c": false})), ["u_choice"]);
    assert_eq!(fails(json!({"c": 2.5})), ["u_choice"]);
    assert_eq!(fails(json!({"n": [-99, 1e18]})), none);
    assert_eq!(fails(json!({"n": [-100, 1]})), ["u_count"]);
    assert_eq!(fails(json!({"n": [1, 1e19]})), ["u_total"]);
    assert_eq!(fails(json!({"n": [1, 9223372036854775807.0]})), ["u_total"]);
    assert_eq!(fails(json!({"n": [1, -9223372036854775808i64]})), none);
    // `/f` holds u_node's value and u_flag's object: one of them is always wrong.
    assert_eq!(fails(json!({"f": {"on": 1}})), ["u_node"]);
    assert_eq!(fails(json!({"f": {"on": " False "}})), ["u_node"]);
    assert_eq!(fails(json!({"f": {"on": "falſe"}})), ["u_flag", "u_node"]);
    assert_eq!(fails(json!({"f": {"on": 2}})), ["u_flag", "u_node"]);
    assert_eq!(fails(json!({"f": 12.5})), none);
    assert_eq!(fails(json!({"sev": true})), none);
    assert_eq!(fails(json!({"sev": 1e-7})), none);
    assert_eq!(fails(json!({"u_tiny": 7})), none);
    assert_eq!(fails(json!({"u_tiny": -7})), ["u_tiny"]);
    assert_eq!(fails(json!({"u_tiny": true})), ["u_tiny"]);
    assert_eq!(fails(json!({"when": "2024-02-29T23:59:59Z "})), none);
    assert_eq!(fails(json!({"when": "2100-02-29 00:00:00"})), ["u_when"]);
    assert_eq!(fails(json!({"when": 20240101})), ["u_when"]);
}

#[test]
fn what_json_schema_cannot_say_sluice_still_refuses() {
    let i = contract_test();
    for (patch, field, code) in [
        // A number's decimal text against a pattern.
        (json!({"a": {"s": "abc", "b": {"id": 7}}}), "u_id", "pattern_mismatch"),
        // A fraction's text is longer than its magnitude suggests.
        (json!({"u_tiny": 0.5}), "u_tiny", "field_too_long"),
        // Over 1000 characters, white space around a value is not measured by the schema.
        (json!({"long": format!(" {} ", "x".repeat(1201))}), "u_long", "field_too_long"),
    ] {
        let mut p = base();
        p.as_object_mut().unwrap().extend(patch.as_object().unwrap().clone());
        assert!(schema_errors(&i, &p).is_empty(), "{patch}");
        let errors = check(&i, &p).unwrap_err();
        assert_eq!(summary(&errors)[0].0, field);
        assert_eq!(summary(&errors)[0].1, code);
        assert!(errors[0].path.is_some());
    }
}

#[test]
fn a_default_must_pass_its_own_rules_and_value_map() {
    let bad = CONTRACT.replace("default = \"1\"", "default = \"medium\"");
    let problems = Integration::parse(&bad, "x.toml", &Catalog::builtin()).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].key, "fields[4] (u_level)");
    assert!(problems[0].message.contains("\"medium\" is not one of 1, 2, 3"), "{problems:?}");

    let unmapped = CONTRACT.replace("default = \"1\"", "default = \"2\"");
    let problems = Integration::parse(&unmapped, "x.toml", &Catalog::builtin()).unwrap_err();
    assert!(problems[0].message.contains("not a key of the value map towards impact"), "{problems:?}");
}

#[test]
fn example_payloads_satisfy_their_contract() {
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/examples");
    let mut all = Integration::load_dir(std::path::Path::new(examples), &Catalog::builtin()).unwrap();
    all.push(Integration::builtin_default(&Catalog::builtin()));
    all.push(contract_test());
    for i in &all {
        let payload = example_payload(i).unwrap_or_else(|| panic!("{}", i.name()));
        assert!(check(i, &payload).is_ok(), "{}: {payload}", i.name());
    }
    let payload = example_payload(&contract_test()).unwrap();
    assert_eq!(payload["a"]["b"]["id"], "AL-0");
    assert_eq!(payload["n"], json!({"0": 1, "1": 1}));
}

#[test]
fn array_positions_are_bounded() {
    let far = CONTRACT.replace("source = \"/n/0\"", "source = \"/n/256\"");
    let problems = Integration::parse(&far, "x.toml", &Catalog::builtin()).unwrap_err();
    assert!(problems[0].message.contains("too large"), "{problems:?}");
}

#[test]
fn digit_bounds_are_exact_at_the_edges_of_doubles() {
    for digits in [1usize, 5, 15, 16, 17, 18, 19, 20, 22, 23, 25, 100, 200, 308] {
        for negative in [false, true] {
            let (keyword, bound) = digits_bound(digits, negative).unwrap();
            let v = jsonschema::draft202012::new(&json!({ keyword: bound })).unwrap();
            let b = bound.as_f64().unwrap();
            // The integral doubles around the bound, and the integers next to it.
            let mut around: Vec<Number> =
                [b, b.next_up(), b.next_down(), b.next_up().next_up(), b.next_down().next_down()]
                    .into_iter()
                    .filter(|x| x.fract() == 0.0)
                    .filter_map(Number::from_f64)
                    .collect();
            if let Some(i) = bound.as_i64() {
                around.extend([i - 1, i, i + 1].map(Number::from));
            }
            if let Some(u) = bound.as_u64() {
                around.extend([u - 1, u, u + 1].map(Number::from));
            }
            for n in around {
                let fits = number_text(&n).trim_start_matches('-').len() <= digits;
                assert_eq!(
                    v.is_valid(&Value::Number(n.clone())),
                    fits,
                    "{digits} digits, {keyword} {bound}, value {n}"
                );
            }
        }
    }
}

// ---- The schema and the typed validation agree -------------------------------------------

/// Places a mutation can hit: every field's, every container, the root.
const PLACES: &[&str] = &[
    "/a/s", "/a/b/id", "/c", "/level", "/n/0", "/n/1", "/f/on", "/f", "/when", "/sev", "/long", "/u_tiny", "/u_top",
    "/x~1y", "/a", "/a/b", "/n", "",
];

const CORES: &[&str] = &[
    "",
    "x",
    "ab",
    "abcde",
    "abcdef",
    "AL-1",
    "AL-12345",
    "AL-123456",
    "al-1",
    "low",
    "LOW",
    "high",
    "critical",
    "CRITICAL",
    "major",
    "Major",
    "minor",
    "3",
    "true",
    "TRUE",
    "True",
    "false",
    "1",
    "0",
    "2",
    "-0",
    "+5",
    "007",
    "5",
    "-7",
    "1e-7",
    "1E-7",
    "x y",
    "1.5",
    "pad",
    " pad",
    "2024-02-29 12:00:00",
    "2023-02-29 12:00:00",
    "2000-02-29 00:00:00",
    "1900-02-29 00:00:00",
    "2024-01-01T00:00:00Z",
    "2024-01-01 00:00:00ZZ",
    "2024-13-01 00:00:00",
    "2024-04-31 00:00:00",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "00000000000000000000012",
    "ééééé",
    "éééééé",
    "ſ",
    "falſe",
    "\u{feff}x",
    "a\nb",
];

const SPACES: &[&str] = &["", " ", "\t", "\u{85}", "\u{a0}", "\u{feff}", "  \n", "\u{3000}"];

const NUMBERS: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "-1",
    "5",
    "-7",
    "7",
    "12",
    "123",
    "999",
    "1000",
    "-99",
    "-100",
    "2.0",
    "1.5",
    "-0.0",
    "-0",
    "1e3",
    "1e-7",
    "0.5",
    "12.5",
    "9.3e18",
    "1e300",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551615",
    "1e19",
    "-1e19",
    "99999999999999999999",
    "9223372036854775807.0",
    "1e1",
];

fn leaf() -> impl Strategy<Value = Option<Value>> {
    let text = (0..SPACES.len(), 0..CORES.len(), 0..SPACES.len())
        .prop_map(|(a, c, b)| json!(format!("{}{}{}", SPACES[a], CORES[c], SPACES[b])));
    let long = (1195usize..1206, 0..3usize).prop_map(|(n, pad)| json!(format!("{}{}", " ".repeat(pad), "y".repeat(n))));
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(Value::Null)),
        1 => any::<bool>().prop_map(|b| Some(json!(b))),
        1 => (0..NUMBERS.len()).prop_map(|n| Some(serde_json::from_str(NUMBERS[n]).unwrap())),
        4 => text.prop_map(Some),
        1 => long.prop_map(Some),
        1 => Just(Some(json!({}))),
        1 => Just(Some(json!({"on": true, "s": "x", "1": 2, "b": {"id": "AL-2"}}))),
        1 => Just(Some(json!([]))),
        1 => Just(Some(json!([1]))),
        1 => Just(Some(json!([7, 8, 9]))),
    ]
}

/// Sets (or removes) the value at `pointer`, making objects on the way where needed.
fn put(root: &mut Value, pointer: &str, value: Option<Value>) {
    if pointer.is_empty() {
        if let Some(Value::Object(o)) = value {
            *root = Value::Object(o);
        }
        return;
    }
    let tokens: Vec<String> = pointer.split('/').skip(1).map(|t| t.replace("~1", "/").replace("~0", "~")).collect();
    let mut at = root;
    for t in &tokens[..tokens.len() - 1] {
        let next = match at {
            Value::Array(items) => match t.parse::<usize>() {
                Ok(i) if i < items.len() => &mut items[i],
                _ => return,
            },
            _ => {
                if !at.is_object() {
                    *at = json!({});
                }
                at.as_object_mut().unwrap().entry(t.clone()).or_insert(json!({}))
            }
        };
        at = next;
    }
    let last = tokens.last().unwrap();
    match (at, value) {
        (Value::Object(o), None) => {
            o.remove(last);
        }
        (Value::Object(o), Some(v)) => {
            o.insert(last.clone(), v);
        }
        (Value::Array(items), v) => {
            if let Ok(i) = last.parse::<usize>()
                && i < items.len()
            {
                items[i] = v.unwrap_or(Value::Null);
            }
        }
        (other, Some(v)) => *other = json!({ last.clone(): v }),
        (_, None) => {}
    }
}

/// A case JSON Schema cannot express (module docs): sluice refuses, the schema misses it or sees
/// a later rule fail.
fn documented_corner(f: &FieldSpec, value: Option<&Value>, typed: &FieldError) -> bool {
    match value {
        Some(Value::Number(n)) => {
            (f.pattern.is_some() && typed.code == ErrorCode::PatternMismatch)
                || (typed.code == ErrorCode::FieldTooLong
                    && f.max_length.is_some_and(|m| m <= 23)
                    && n.as_f64().is_some_and(|x| x.fract() != 0.0))
        }
        Some(Value::String(s)) => {
            typed.code == ErrorCode::FieldTooLong && f.max_length.is_some_and(|m| m > 1000) && s.trim() != s
        }
        _ => false,
    }
}

fn first_per_field(errors: Vec<FieldError>) -> BTreeMap<String, FieldError> {
    let mut out = BTreeMap::new();
    for e in errors {
        out.entry(e.field.clone()).or_insert(e);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn schema_and_typed_validation_accept_and_refuse_the_same_payloads(
        mutations in prop::collection::vec((0..PLACES.len(), leaf()), 0..4)
    ) {
        let i = &*CONTRACT_TEST;
        let mut payload = base();
        for (place, value) in mutations {
            put(&mut payload, PLACES[place], value);
        }
        let object = payload.as_object().unwrap();
        let ranked = ranked_errors(i, &payload);
        let (typed, schema): (BTreeMap<String, FieldError>, Vec<(u8, FieldError)>) =
            match validate::validate(i, &stage(i, object)) {
                // Validation failed: value maps did not run; compare the validation rules only.
                Err(errors) => (first_per_field(errors), ranked.into_values().filter(|(r, _)| *r < MAPPED).collect()),
                Ok(row) => (first_per_field(transform::plan(i, &row).err().unwrap_or_default()), ranked.into_values().collect()),
            };
        let schema: BTreeMap<String, FieldError> = schema.into_iter().map(|(_, e)| (e.field.clone(), e)).collect();
        for (field, t) in &typed {
            let spec = i.field(field).unwrap();
            let at = i.definition.fields.iter().position(|f| f.name == *field).unwrap();
            let value = payload.pointer(i.contract.pointer(at));
            match schema.get(field) {
                Some(s) if s.code == t.code => prop_assert_eq!(&s.message, &t.message, "{}", payload),
                _ => prop_assert!(
                    documented_corner(spec, value, t),
                    "{field}: typed {:?}, schema {:?}, payload {}", t, schema.get(field), payload
                ),
            }
        }
        for (field, s) in &schema {
            prop_assert!(typed.contains_key(field), "schema only: {:?}, payload {}", s, payload);
        }
        // What the server answers: the typed errors, each with its path, never fewer.
        let merged = verdict(i, object, &stage(i, object));
        prop_assert_eq!(merged.is_ok(), typed.is_empty());
        if let Err(errors) = merged {
            prop_assert!(errors.iter().all(|e| e.path.is_some()));
        }
    }
}
