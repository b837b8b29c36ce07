//! Contract: the payload an integration accepts, published as a JSON Schema (draft 2020-12)
//! generated from its definition, and checked with that schema's compiled validator.
//!
//! The schema describes what a sender posts: each field at its `source` JSON Pointer (nested
//! objects, array positions), `required` at every level on the way, and the field's own rules.
//! It says exactly what [`crate::validate`] does, including its leniencies: values are trimmed
//! (Unicode white space, as `str::trim`), `null` and blank count as missing, numbers and booleans
//! are taken as their text where the field's type allows ([`crate::staging::number_text`]).
//! Unknown keys are allowed, as ServiceNow ignores them.
//!
//! Every field's rules sit in an `allOf` at the field's place, one entry per rule and in the
//! order `validate` applies them (shape, required, length, pattern, value, value map). A failing
//! entry gives the error's code; each field reports its first failing rule, as `validate` does.
//! A container that is missing or not an object gives `field_required` for the required fields
//! beneath it that have no value.
//!
//! What JSON Schema cannot say, sluice still checks ([`verdict`] merges both): the decimal text of
//! a JSON number sent to a field with a `pattern`, or of a non-integral number sent to a field
//! with a `max_length` under 24; the length of a value with white space around it when
//! `max_length` is over 1000; and patterns that themselves match white space at either end. In
//! those cases the schema accepts a little more than sluice does, never less.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Map, Number, Value, json};

use crate::DateTime;
use crate::integration::{Definition, FieldSpec, FieldType, Integration};
use crate::staging::{StagedRow, number_text};
use crate::transform::{self, Plan};
use crate::validate::{self, ErrorCode, FieldError};

/// The dialect of every generated schema.
pub const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// Unicode `White_Space`, the characters `str::trim` removes. Written out because `\s` in a
/// schema means ECMA-262 white space, which differs (U+0085, U+FEFF).
const WS: &str = r"[\t\n\x0B\x0C\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]";

/// Up to this `max_length` a value with white space around it is measured exactly by a pattern;
/// above it the pattern would cost too much to compile, and such values pass the schema's length
/// rule (sluice still measures them).
const EXACT_PADDED_LENGTH: usize = 1000;

/// Largest array position a `source` may name.
pub const MAX_SOURCE_INDEX: usize = 255;

// The rules of one field, in the order `validate` applies them.
const SHAPE: u8 = 0;
const REQUIRED: u8 = 1;
const LENGTH: u8 = 2;
const PATTERN: u8 = 3;
const VALUE: u8 = 4;
const MAPPED: u8 = 5;

/// One rule of one field, at a place in the schema.
#[derive(Debug, Clone, Copy)]
struct Slot {
    field: usize,
    rank: u8,
    code: ErrorCode,
    /// The field map entry whose value map this rule checks.
    map: Option<usize>,
}

/// An integration's payload schema and its compiled validator.
#[derive(Debug)]
pub struct Contract {
    schema: Value,
    validator: jsonschema::Validator,
    /// Each field's JSON Pointer into the payload, in definition order.
    pointers: Vec<String>,
    /// Schema location of each field rule.
    slots: BTreeMap<String, Slot>,
    /// Schema location of each object on the way to a field → the required fields beneath it.
    containers: BTreeMap<String, Vec<usize>>,
}

/// Why a definition has no usable schema: (key, message), located like a definition problem.
pub type SchemaProblem = (String, String);

impl Contract {
    /// Generates the schema of a checked definition and compiles it. `patterns` are the fields'
    /// compiled patterns (see [`crate::integration::compile_pattern`]), used to decide how
    /// `true` and `false` fare against them.
    pub fn build(
        definition: &Definition,
        patterns: &BTreeMap<String, regex::Regex>,
    ) -> Result<Self, Vec<SchemaProblem>> {
        let mut problems = Vec::new();
        let mut root = Node::default();
        let mut pointers = Vec::new();
        for (i, f) in definition.fields.iter().enumerate() {
            let tokens = tokens(f);
            pointers.push(pointer(&tokens));
            let mut node = &mut root;
            for t in &tokens {
                if let Some(index) = array_index(t)
                    && index > MAX_SOURCE_INDEX
                {
                    problems.push((
                        field_key(i, f),
                        format!("source position {index} is too large (at most {MAX_SOURCE_INDEX})"),
                    ));
                }
                node = node.child(t);
            }
            node.fields.push(i);
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut generator = Generator {
            definition,
            patterns,
            mandatory: definition.fields.iter().map(is_mandatory).collect(),
            slots: BTreeMap::new(),
            containers: BTreeMap::new(),
        };
        let mut schema = Map::new();
        schema.insert("$schema".into(), json!(DRAFT_2020_12));
        let title = if definition.description.is_empty() { &definition.name } else { &definition.description };
        schema.insert("title".into(), json!(title));
        schema.insert(
            "description".into(),
            json!(format!(
                "The JSON object a sender posts to /api/now/import/{} (integration {}, version {}). \
                 Keys not described here are ignored. White space around values is ignored; null \
                 and blank values count as missing.",
                definition.staging_table, definition.name, definition.version
            )),
        );
        schema.insert("type".into(), json!("object"));
        if let Value::Object(body) = generator.node(&root, "") {
            for (k, v) in body {
                if k != "type" {
                    schema.insert(k, v);
                }
            }
        }
        schema.insert("additionalProperties".into(), json!(true));
        let schema = Value::Object(schema);
        let validator = jsonschema::draft202012::options()
            .with_pattern_options(jsonschema::PatternOptions::regex())
            .build(&schema)
            .map_err(|e| {
                let at = e.instance_path().as_str();
                vec![(
                    "(payload schema)".to_owned(),
                    format!("the generated JSON Schema does not compile at {at:?}: {e}"),
                )]
            })?;
        Ok(Self { schema, validator, pointers, slots: generator.slots, containers: generator.containers })
    }

    /// The JSON Schema document.
    pub fn schema(&self) -> &Value {
        &self.schema
    }

    /// The JSON Pointer into the payload of the field with this index.
    pub fn pointer(&self, field: usize) -> &str {
        &self.pointers[field]
    }
}

/// Every problem the schema finds in `payload`, at most one per field (its first failing rule),
/// in definition order, each with its JSON Pointer `path`.
pub fn schema_errors(integration: &Integration, payload: &Value) -> Vec<FieldError> {
    ranked_errors(integration, payload).into_values().map(|(_, e)| e).collect()
}

/// The schema's errors by field index, with the rank of the rule that failed.
fn ranked_errors(integration: &Integration, payload: &Value) -> BTreeMap<usize, (u8, FieldError)> {
    let contract = &integration.contract;
    let fields = &integration.definition.fields;
    let mut found: BTreeMap<usize, (u8, FieldError)> = BTreeMap::new();
    let mut note = |field: usize, rank: u8, error: FieldError| {
        if found.get(&field).is_none_or(|(r, _)| rank < *r) {
            found.insert(field, (rank, error));
        }
    };
    if contract.validator.is_valid(payload) {
        return found;
    }
    for error in contract.validator.iter_errors(payload) {
        let location = error.schema_path().as_str();
        if let Some(slot) = slot_for(&contract.slots, location) {
            let spec = &fields[slot.field];
            let text = text_of(error.instance());
            let message = message(integration, spec, slot, &text);
            let path = Some(contract.pointers[slot.field].clone());
            note(slot.field, slot.rank, FieldError { code: slot.code, field: spec.name.clone(), message, path });
            continue;
        }
        let container = ["/type", "/required", "/minItems"]
            .iter()
            .find_map(|k| location.strip_suffix(k))
            .and_then(|at| contract.containers.get(at));
        if let Some(beneath) = container {
            for &field in beneath {
                let pointer = &contract.pointers[field];
                if payload.pointer(pointer).is_none() {
                    let error = FieldError {
                        code: ErrorCode::FieldRequired,
                        field: fields[field].name.clone(),
                        message: "is required".into(),
                        path: Some(pointer.clone()),
                    };
                    note(field, REQUIRED, error);
                }
            }
        }
        // Nothing else in the schema can fail: every keyword in it is a field rule or a container's.
    }
    found
}

/// The slot whose location is `location` or a parent of it.
fn slot_for(slots: &BTreeMap<String, Slot>, location: &str) -> Option<Slot> {
    let mut at = location;
    loop {
        if let Some(slot) = slots.get(at) {
            return Some(*slot);
        }
        at = &at[..at.rfind('/')?];
    }
}

/// One payload through the whole contract: the schema, the typed validation and the field map.
/// Every problem either finds is reported, one per field, with its JSON Pointer `path` (where
/// both find one they agree; the typed message is kept). Without problems, the transform plan.
pub fn verdict(
    integration: &Integration,
    payload: &Map<String, Value>,
    staged: &StagedRow,
) -> Result<Plan, Vec<FieldError>> {
    let schema = ranked_errors(integration, &Value::Object(payload.clone()));
    let (plan, typed) = match validate::validate(integration, staged) {
        Ok(row) => match transform::plan(integration, &row) {
            Ok(plan) => (Some(plan), Vec::new()),
            Err(errors) => (None, errors),
        },
        Err(errors) => (None, errors),
    };
    if let (Some(plan), true) = (plan, schema.is_empty()) {
        return Ok(plan);
    }
    let fields = &integration.definition.fields;
    let mut errors = Vec::new();
    for (i, spec) in fields.iter().enumerate() {
        let typed = typed.iter().find(|e| e.field == spec.name);
        let chosen = match (typed, schema.get(&i)) {
            (Some(t), _) => t.clone(),
            (None, Some((_, s))) => s.clone(),
            (None, None) => continue,
        };
        errors.push(FieldError { path: Some(integration.contract.pointer(i).to_owned()), ..chosen });
    }
    // Problems with no field of their own (none today) are kept as they are.
    errors.extend(typed.into_iter().filter(|e| !fields.iter().any(|f| f.name == e.field)));
    Err(errors)
}

/// A payload that satisfies the contract, for documentation: each field with a value it accepts
/// (its first choice or value map key, a string its pattern matches, a short text), placed at its
/// source. Fields no value could be found for are left out when they are optional; `None` when
/// no valid payload comes out.
pub fn example_payload(integration: &Integration) -> Option<Value> {
    let d = &integration.definition;
    let mut values: Vec<Option<Value>> = d.fields.iter().map(|f| example_value(d, f)).collect();
    let places: Vec<Vec<String>> = d.fields.iter().map(tokens).collect();
    for _ in 0..3 {
        let mut payload = Value::Object(Map::new());
        // Required fields first: where two fields share a place, the first value stays.
        let mut order: Vec<usize> = (0..d.fields.len()).collect();
        order.sort_by_key(|&i| !is_mandatory(&d.fields[i]));
        for i in order {
            if let Some(v) = &values[i] {
                place(&mut payload, &places[i], v.clone());
            }
        }
        let object = payload.as_object()?;
        match verdict(integration, object, &crate::staging::stage(integration, object)) {
            Ok(_) => return Some(payload),
            Err(errors) => {
                // Leave the failing field out, and what lies beneath its place (a field whose
                // place is also another's object cannot hold a value there).
                for e in errors {
                    if let Some(i) = d.fields.iter().position(|f| f.name == e.field) {
                        for (j, p) in places.iter().enumerate() {
                            if p.starts_with(&places[i]) {
                                values[j] = None;
                            }
                        }
                    }
                }
            }
        }
    }
    None
}

fn example_value(d: &Definition, f: &FieldSpec) -> Option<Value> {
    let keys: Vec<&String> =
        d.transform.field_map.iter().filter(|m| m.source == f.name).flat_map(|m| m.value_map.keys()).collect();
    let fits = |text: &str| f.max_length.is_none_or(|m| text.chars().count() <= m);
    let text = match f.kind {
        FieldType::Choice => {
            let usable = |c: &&String| keys.is_empty() || keys.iter().any(|k| k.eq_ignore_ascii_case(c));
            f.choices.iter().find(usable).cloned()?
        }
        _ if !keys.is_empty() => keys[0].clone(),
        _ if f.default.is_some() => f.default.clone()?,
        FieldType::Integer => return Some(json!(1)),
        FieldType::Boolean => return Some(json!(true)),
        FieldType::DateTime => "2024-05-01 10:15:02".into(),
        FieldType::String | FieldType::Reference => match &f.pattern {
            Some(p) => jsonschema_regex::pattern_witness(&format!("^(?:{p})$"))?,
            None => {
                let label = f.label.as_deref().unwrap_or(f.name.trim_start_matches("u_"));
                format!("example {}", label.to_lowercase()).chars().take(f.max_length.unwrap_or(usize::MAX)).collect()
            }
        },
    };
    fits(&text).then(|| json!(text))
}

/// Puts `value` at the place `tokens` name, making objects on the way; a place that already
/// holds something keeps it.
fn place(root: &mut Value, tokens: &[String], value: Value) {
    let Some((last, path)) = tokens.split_last() else { return };
    let mut at = root;
    for t in path {
        let Value::Object(object) = at else { return };
        at = object.entry(t.clone()).or_insert_with(|| json!({}));
    }
    if let Value::Object(object) = at {
        object.entry(last.clone()).or_insert(value);
    }
}

/// Gives errors about this integration's fields the field's JSON Pointer, where they have none
/// (reference lookups report after the commit; older staged rows stored none).
pub fn add_paths(integration: &Integration, errors: &mut [FieldError]) {
    for e in errors.iter_mut().filter(|e| e.path.is_none()) {
        if let Some(i) = integration.definition.fields.iter().position(|f| f.name == e.field) {
            e.path = Some(integration.contract.pointer(i).to_owned());
        }
    }
}

/// Problems with `default`s: a default must pass its own field's rules and, where the field goes
/// through a value map, be one of its keys (otherwise every row without the field would fail).
pub fn default_problems(integration: &Integration) -> Vec<SchemaProblem> {
    let d = &integration.definition;
    let mut problems = Vec::new();
    let typed_errors = match validate::validate(integration, &StagedRow::default()) {
        Ok(_) => Vec::new(),
        Err(errors) => errors,
    };
    for (i, f) in d.fields.iter().enumerate() {
        let Some(default) = &f.default else { continue };
        if let Some(e) = typed_errors.iter().find(|e| e.field == f.name) {
            problems
                .push((field_key(i, f), format!("default {default:?} breaks the field's own rules: {}", e.message)));
            continue;
        }
        let text = db_text(f.kind, default);
        for m in d.transform.field_map.iter().filter(|m| m.source == f.name && !m.value_map.is_empty()) {
            if !m.value_map.keys().any(|k| k.eq_ignore_ascii_case(&text)) {
                problems.push((
                    field_key(i, f),
                    format!("default {default:?} is not a key of the value map towards {}", m.target),
                ));
            }
        }
    }
    problems
}

fn field_key(i: usize, f: &FieldSpec) -> String {
    format!("fields[{i}] ({})", f.name)
}

/// Required and without a default: a missing value is an error.
fn is_mandatory(f: &FieldSpec) -> bool {
    f.required && f.default.is_none()
}

/// The field's place in the payload as unescaped JSON Pointer tokens.
fn tokens(f: &FieldSpec) -> Vec<String> {
    match &f.source {
        Some(p) => p.split('/').skip(1).map(|t| t.replace("~1", "/").replace("~0", "~")).collect(),
        None => vec![f.name.clone()],
    }
}

fn escape_token(t: &str) -> String {
    t.replace('~', "~0").replace('/', "~1")
}

fn pointer(tokens: &[String]) -> String {
    tokens.iter().map(|t| format!("/{}", escape_token(t))).collect()
}

/// A token that also addresses an array element (as `serde_json`'s pointers read them).
fn array_index(t: &str) -> Option<usize> {
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) || (t.len() > 1 && t.starts_with('0')) {
        return None;
    }
    t.parse().ok()
}

/// The payload as a tree of places: fields sit at nodes, containers have children.
#[derive(Default)]
struct Node {
    fields: Vec<usize>,
    children: Vec<(String, Node)>,
}

impl Node {
    fn child(&mut self, token: &str) -> &mut Node {
        let at = match self.children.iter().position(|(t, _)| t == token) {
            Some(at) => at,
            None => {
                self.children.push((token.to_owned(), Node::default()));
                self.children.len() - 1
            }
        };
        &mut self.children[at].1
    }

    /// Required fields at or beneath this node.
    fn mandatory(&self, mandatory: &[bool], out: &mut Vec<usize>) {
        out.extend(self.fields.iter().copied().filter(|&f| mandatory[f]));
        for (_, c) in &self.children {
            c.mandatory(mandatory, out);
        }
    }
}

struct Generator<'a> {
    definition: &'a Definition,
    patterns: &'a BTreeMap<String, regex::Regex>,
    mandatory: Vec<bool>,
    slots: BTreeMap<String, Slot>,
    containers: BTreeMap<String, Vec<usize>>,
}

impl Generator<'_> {
    /// The schema of one place, recording where each rule sits. `at` is its schema location.
    fn node(&mut self, node: &Node, at: &str) -> Value {
        let mut out = Map::new();
        let fields = &self.definition.fields;
        if let [only] = node.fields.as_slice() {
            let f = &fields[*only];
            out.insert("title".into(), json!(f.label.as_deref().unwrap_or(&f.name)));
            out.insert("description".into(), json!(self.describe(f)));
            if let Some(d) = &f.default {
                out.insert("default".into(), json!(d));
            }
        } else if !node.fields.is_empty() {
            let names: Vec<&str> = node.fields.iter().map(|&i| fields[i].name.as_str()).collect();
            out.insert("description".into(), json!(format!("Read by the fields {}.", names.join(", "))));
        }
        if !node.children.is_empty() {
            let mut beneath = Vec::new();
            for (_, c) in &node.children {
                c.mandatory(&self.mandatory, &mut beneath);
            }
            let needed: Vec<&(String, Node)> = node
                .children
                .iter()
                .filter(|(_, c)| {
                    let mut m = Vec::new();
                    c.mandatory(&self.mandatory, &mut m);
                    !m.is_empty()
                })
                .collect();
            if !needed.is_empty() {
                if needed.iter().all(|(t, _)| array_index(t).is_some()) {
                    out.insert("type".into(), json!(["object", "array"]));
                } else {
                    out.insert("type".into(), json!("object"));
                }
            }
            let mut properties = Map::new();
            for (t, c) in &node.children {
                properties.insert(t.clone(), self.node(c, &format!("{at}/properties/{}", escape_token(t))));
            }
            out.insert("properties".into(), Value::Object(properties));
            if !needed.is_empty() {
                out.insert("required".into(), json!(needed.iter().map(|(t, _)| t).collect::<Vec<_>>()));
            }
            let indexed: Vec<(usize, &Node)> =
                node.children.iter().filter_map(|(t, c)| Some((array_index(t)?, c))).collect();
            if let Some(last) = indexed.iter().map(|(i, _)| *i).max() {
                let mut items = vec![json!(true); last + 1];
                for (i, c) in &indexed {
                    items[*i] = self.node(c, &format!("{at}/prefixItems/{i}"));
                }
                out.insert("prefixItems".into(), Value::Array(items));
                let least = needed.iter().filter_map(|(t, _)| array_index(t)).max();
                if let Some(least) = least {
                    out.insert("minItems".into(), json!(least + 1));
                }
            }
            if !beneath.is_empty() {
                self.containers.insert(at.to_owned(), beneath);
            }
        }
        let mut rules = Vec::new();
        for &i in &node.fields {
            for (rank, code, map, rule) in self.rules(i) {
                self.slots.insert(format!("{at}/allOf/{}", rules.len()), Slot { field: i, rank, code, map });
                rules.push(rule);
            }
        }
        if !rules.is_empty() {
            out.insert("allOf".into(), Value::Array(rules));
        }
        Value::Object(out)
    }

    fn describe(&self, f: &FieldSpec) -> String {
        let mut d = format!("Staging column {}", f.name);
        for m in self.definition.transform.field_map.iter().filter(|m| m.source == f.name) {
            let _ = write!(d, ", mapped to {}.{}", self.definition.target_table, m.target);
            if let Some(r) = &m.reference {
                let _ = write!(d, " (a record found by {})", r.match_fields.join(" or "));
            }
        }
        d.push_str(". ");
        d.push_str(match f.kind {
            FieldType::String => "Text",
            FieldType::Reference => "A name or sys_id",
            FieldType::Choice => "One of the listed values",
            FieldType::Integer => "An integer (a JSON number or its text)",
            FieldType::Boolean => "true or false (also 1/0, any case)",
            FieldType::DateTime => "A date-time yyyy-MM-dd HH:mm:ss in UTC (ISO 8601 T and Z accepted)",
        });
        if matches!(f.kind, FieldType::String | FieldType::Reference) {
            d.push_str("; JSON numbers and booleans are taken as their text");
        }
        if let Some(m) = f.max_length {
            let _ = write!(d, "; at most {m} characters");
        }
        if let Some(p) = &f.pattern {
            let _ = write!(d, "; must match {p}");
        }
        match (&f.default, is_mandatory(f)) {
            (Some(v), _) => {
                let _ = write!(d, "; default {v:?}");
            }
            (None, true) => d.push_str("; required"),
            (None, false) => d.push_str("; optional"),
        }
        d.push('.');
        d
    }

    /// The rules of field `i`: (rank, code, value map entry, schema), in `validate`'s order.
    fn rules(&self, i: usize) -> Vec<(u8, ErrorCode, Option<usize>, Value)> {
        let f = &self.definition.fields[i];
        let mut rules = vec![(
            SHAPE,
            ErrorCode::WrongType,
            None,
            json!({"description": "A single value, not an object or array", "type": ["string", "number", "boolean", "null"]}),
        )];
        if self.mandatory[i] {
            rules.push((
                REQUIRED,
                ErrorCode::FieldRequired,
                None,
                json!({"description": "Required: not null, not blank",
                       "not": {"anyOf": [{"type": "null"}, {"type": "string", "pattern": format!("^{WS}*$")}]}}),
            ));
        }
        if let Some(max) = f.max_length {
            rules.push((LENGTH, ErrorCode::FieldTooLong, None, length_rule(max)));
        }
        if let (Some(p), Some(compiled)) = (&f.pattern, self.patterns.get(&f.name)) {
            let mut rule = json!({
                "description": format!("Matches {p} (white space around the value ignored)"),
                "pattern": format!("^{WS}*(?:{})?{WS}*$", strip_anchors(p)),
            });
            let refused: Vec<bool> = [true, false].into_iter().filter(|b| !compiled.is_match(&b.to_string())).collect();
            if !refused.is_empty() {
                rule["not"] = json!({"enum": refused});
            }
            rules.push((PATTERN, ErrorCode::PatternMismatch, None, rule));
        }
        if let Some(rule) = value_rule(f) {
            let code = if f.kind == FieldType::Choice { ErrorCode::InvalidChoice } else { ErrorCode::WrongType };
            rules.push((VALUE, code, None, rule));
        }
        for (k, m) in self.definition.transform.field_map.iter().enumerate() {
            if m.source == f.name && !m.value_map.is_empty() {
                let keys: Vec<&str> = m.value_map.keys().map(String::as_str).collect();
                rules.push((MAPPED, ErrorCode::InvalidChoice, Some(k), mapped_rule(f.kind, &keys)));
            }
        }
        rules
    }
}

/// `max` characters once trimmed; numbers by the length of their text, booleans likewise.
fn length_rule(max: usize) -> Value {
    let padded = if max <= EXACT_PADDED_LENGTH {
        json!([{"maxLength": max}, {"pattern": format!(r"^{WS}*[\s\S]{{0,{max}}}{WS}*$")}])
    } else {
        json!([{"maxLength": max}, {"pattern": format!("^{WS}")}, {"pattern": format!("{WS}$")}])
    };
    let mut rule = json!({
        "description": format!("At most {max} characters, white space around the value not counted"),
        "anyOf": padded,
    });
    // An integer's text: its digits, plus the sign when negative.
    if let Some((keyword, bound)) = digits_bound(max, false) {
        rule[keyword] = bound;
    }
    if let Some((keyword, bound)) = digits_bound(max - 1, true) {
        rule[keyword] = bound;
    }
    let too_long: Vec<bool> = [true, false].into_iter().filter(|b| b.to_string().len() > max).collect();
    if !too_long.is_empty() {
        rule["not"] = json!({"enum": too_long});
    }
    rule
}

/// The bound that keeps numbers to integers of at most `digits` digits (the farthest such
/// integer from zero, above zero or below it): a keyword and a JSON number that compares exactly
/// with any JSON number. `None` when every number qualifies.
fn digits_bound(digits: usize, negative: bool) -> Option<(&'static str, Value)> {
    let (inclusive, exclusive) =
        if negative { ("minimum", "exclusiveMinimum") } else { ("maximum", "exclusiveMaximum") };
    if digits == 0 {
        // No digits at all: only zero (`-0` is staged as `0`).
        return Some((inclusive, json!(0)));
    }
    if digits <= 18 {
        let far = 10i64.pow(digits as u32) - 1;
        return Some((inclusive, json!(if negative { -far } else { far })));
    }
    if digits == 19 && !negative {
        return Some((inclusive, json!(10u64.pow(19) - 1)));
    }
    // Every finite double has at most 309 integer digits.
    if digits >= 309 {
        return None;
    }
    // The double nearest to 10^digits. Below 10^digits it still has `digits` digits and no double
    // lies between it and 10^digits: an inclusive bound. Otherwise no double lies between
    // 10^digits and it: an exclusive bound.
    let b: f64 = format!("1e{digits}").parse().ok()?;
    let keyword = if format!("{b:.0}").len() <= digits { inclusive } else { exclusive };
    Some((keyword, Value::Number(Number::from_f64(if negative { -b } else { b })?)))
}

/// A pattern as the padded branch uses it: a leading `^` and a trailing `$` are implied by the
/// surrounding anchors and would stop white space around the value from matching.
fn strip_anchors(p: &str) -> &str {
    let p = p.strip_prefix('^').unwrap_or(p);
    match p.strip_suffix('$') {
        Some(rest) if !rest.ends_with('\\') => rest,
        _ => p,
    }
}

/// `text` as a pattern that matches it literally (ECMA-262 and Rust read it alike).
fn literal(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if r"\^$.|?*+()[]{}/-".contains(c) {
            out.push('\\');
            out.push(c);
        } else if c.is_control() && (c as u32) < 0x10000 {
            let _ = write!(out, "\\u{:04X}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// `text` as a pattern that ignores ASCII case, as `eq_ignore_ascii_case` does.
fn literal_ignoring_case(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphabetic() {
            let _ = write!(out, "[{}{}]", c.to_ascii_lowercase(), c.to_ascii_uppercase());
        } else {
            out.push_str(&literal(&c.to_string()));
        }
    }
    out
}

/// Strings whose trimmed text is one of `alternatives` (each already a pattern), or blank.
fn trimmed_one_of(alternatives: &[String]) -> Value {
    json!({"type": "string", "pattern": format!("^{WS}*(?:{})?{WS}*$", alternatives.join("|"))})
}

/// A decimal integer string not above `bound` (digits, no sign).
fn not_above(bound: &str) -> String {
    let n = bound.len();
    let mut alternatives = Vec::new();
    if n > 1 {
        alternatives.push(format!("[0-9]{{1,{}}}", n - 1));
    }
    for (i, d) in bound.bytes().enumerate() {
        if d > b'0' {
            let rest = n - i - 1;
            let tail = if rest > 0 { format!("[0-9]{{{rest}}}") } else { String::new() };
            alternatives.push(format!("{}[0-{}]{tail}", &bound[..i], (d - 1) as char));
        }
    }
    alternatives.push(bound.to_owned());
    alternatives.join("|")
}

/// The text `str::parse::<i64>` accepts.
fn i64_text() -> String {
    format!(r"\+?0*(?:{})|-0*(?:{})", not_above("9223372036854775807"), not_above("9223372036854775808"))
}

/// Texts that parse to the integer `k`.
fn integer_text(k: i64) -> String {
    let digits = k.unsigned_abs().to_string();
    match k.signum() {
        0 => "[+-]?0+".into(),
        1 => format!(r"\+?0*{digits}"),
        _ => format!("-0*{digits}"),
    }
}

fn date_time_text() -> String {
    let long = "(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])";
    let short = "(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)";
    let february = "02-(?:0[1-9]|1[0-9]|2[0-8])";
    let leap = "(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29";
    let time = "(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]";
    format!("(?:[0-9]{{4}}-(?:{long}|{short}|{february})|{leap})[ T]{time}Z?")
}

fn boolean_text(value: bool) -> String {
    if value { format!("{}|1", literal_ignoring_case("true")) } else { format!("{}|0", literal_ignoring_case("false")) }
}

/// The JSON numbers whose staged text equals `text` (compared ignoring ASCII case or not).
fn numbers_staged_as(text: &str, ignore_case: bool) -> Option<Number> {
    let same = |n: &Number| {
        let t = number_text(n);
        if ignore_case { t.eq_ignore_ascii_case(text) } else { t == text }
    };
    if let Ok(i) = text.parse::<i64>() {
        return Some(Number::from(i)).filter(same);
    }
    if let Ok(u) = text.parse::<u64>() {
        return Some(Number::from(u)).filter(same);
    }
    let f: f64 = text.to_ascii_lowercase().parse().ok()?;
    Number::from_f64(f).filter(same)
}

/// The field's type: what its value must be once it is there.
fn value_rule(f: &FieldSpec) -> Option<Value> {
    let nothing = json!({"type": "null"});
    let rule = match f.kind {
        FieldType::String | FieldType::Reference => return None,
        FieldType::Choice => {
            // A choice with white space around it can never match a trimmed value.
            let usable: Vec<&String> = f.choices.iter().filter(|c| !c.is_empty() && c.trim() == c.as_str()).collect();
            let mut values: Vec<Value> = usable.iter().map(|c| json!(c)).collect();
            values.extend(usable.iter().filter_map(|c| numbers_staged_as(c, false)).map(Value::Number));
            values.extend(usable.iter().filter_map(|c| c.parse::<bool>().ok()).map(Value::Bool));
            let strings: Vec<String> = usable.iter().map(|c| literal(c)).collect();
            let mut any_of = vec![nothing, trimmed_one_of(&strings)];
            if !values.is_empty() {
                any_of.insert(0, json!({"enum": values}));
            }
            json!({"description": "One of the choices", "anyOf": any_of})
        }
        FieldType::Integer => json!({"description": "An integer", "anyOf": [
            {"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX}, nothing, trimmed_one_of(&[i64_text()])]}),
        FieldType::Boolean => json!({"description": "true or false", "anyOf": [
            {"enum": [true, false, 1, 0]}, nothing, trimmed_one_of(&[boolean_text(true), boolean_text(false)])]}),
        FieldType::DateTime => {
            json!({"description": "A date-time", "anyOf": [nothing, trimmed_one_of(&[date_time_text()])]})
        }
    };
    Some(rule)
}

/// A value map's keys, matched case-insensitively against the value in its typed form.
fn mapped_rule(kind: FieldType, keys: &[&str]) -> Value {
    let mut values: Vec<Value> = Vec::new();
    let mut strings: Vec<String> = Vec::new();
    for key in keys {
        match kind {
            FieldType::String | FieldType::Reference | FieldType::Choice => {
                if !key.is_empty() && key.trim() == *key {
                    strings.push(literal_ignoring_case(key));
                    values.extend(numbers_staged_as(key, true).map(Value::Number));
                    if key.eq_ignore_ascii_case("true") || key.eq_ignore_ascii_case("false") {
                        values.push(json!(key.eq_ignore_ascii_case("true")));
                    }
                }
            }
            FieldType::Integer => {
                if let Ok(k) = key.parse::<i64>()
                    && k.to_string() == *key
                {
                    strings.push(integer_text(k));
                    values.push(json!(k));
                }
            }
            FieldType::Boolean => {
                for b in [true, false] {
                    if key.eq_ignore_ascii_case(&b.to_string()) {
                        strings.push(boolean_text(b));
                        values.extend([json!(b), json!(u8::from(b))]);
                    }
                }
            }
            FieldType::DateTime => {
                if DateTime::parse(key).is_ok_and(|d| d.to_string() == *key) {
                    strings.push(format!("{}[ T]{}Z?", literal(&key[..10]), literal(&key[11..])));
                }
            }
        }
    }
    let mut any_of = vec![json!({"type": "null"}), trimmed_one_of(&strings)];
    if !values.is_empty() {
        any_of.insert(0, json!({"enum": values}));
    }
    json!({"description": format!("A key of the value map: {} (any case)", keys.join(", ")), "anyOf": any_of})
}

/// A value's text as staging keeps it, trimmed as validation reads it.
fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => number_text(n),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The value's stored form once typed (`+05` → `5`, `TRUE` → `true`), as value maps see it.
fn db_text(kind: FieldType, text: &str) -> String {
    match kind {
        FieldType::Integer => text.parse::<i64>().map(|i| i.to_string()).unwrap_or_else(|_| text.to_owned()),
        FieldType::Boolean => match text.to_ascii_lowercase().as_str() {
            "true" | "1" => "true".into(),
            "false" | "0" => "false".into(),
            _ => text.to_owned(),
        },
        FieldType::DateTime => DateTime::parse(text).map(|d| d.to_string()).unwrap_or_else(|_| text.to_owned()),
        _ => text.to_owned(),
    }
}

/// The human message of a failed rule, worded as `validate` and `transform` word it.
fn message(integration: &Integration, f: &FieldSpec, slot: Slot, text: &str) -> String {
    match slot.rank {
        SHAPE => "expected a single value, got a JSON object or array".into(),
        REQUIRED => "is required".into(),
        LENGTH => {
            format!("is {} characters long, at most {} allowed", text.chars().count(), f.max_length.unwrap_or_default())
        }
        PATTERN => format!("{text:?} does not match the pattern {}", f.pattern.as_deref().unwrap_or_default()),
        VALUE => match f.kind {
            FieldType::Choice => format!("{text:?} is not one of {}", f.choices.join(", ")),
            FieldType::Integer => format!("{text:?} is not an integer"),
            FieldType::Boolean => format!("{text:?} is not true or false"),
            _ => format!("{text:?} is not a date-time yyyy-MM-dd HH:mm:ss (UTC)"),
        },
        _ => {
            let map = slot.map.and_then(|k| integration.definition.transform.field_map.get(k));
            let keys: Vec<&str> = map.map(|m| m.value_map.keys().map(String::as_str).collect()).unwrap_or_default();
            format!("{:?} is not one of {}", db_text(f.kind, text), keys.join(", "))
        }
    }
}

#[cfg(test)]
mod tests;
