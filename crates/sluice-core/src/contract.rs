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

mod schema;

#[cfg(test)]
use schema::digits_bound;
use schema::{Generator, Node};

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
    verdict_of(integration, &Value::Object(payload.clone()), staged)
}

/// [`verdict`] of a payload held as a JSON value (an object), which the schema checks as it is:
/// the hot paths hold their payloads this way rather than copy each one.
pub fn verdict_of(integration: &Integration, payload: &Value, staged: &StagedRow) -> Result<Plan, Vec<FieldError>> {
    let schema = ranked_errors(integration, payload);
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
